"""`kind: efficiency`: accuracy vs energy per image, for any set of runs (conf/table/efficiency.yaml).

Per row group and setting (runs grouped as the summary groups them: by the
layout's rows, then by everything but the seed) and per energy model, the
table holds one row for the run's ANN (T empty) and one row per simulated T:

    <row keys…> | setting | energy_model | T | acc | energy_mj | qann_bits | qann_acc | qann_energy_mj |
    energy_ratio | ann_acc | ann_energy_mj | n | config_hash

Every column means what results.csv's column of that name means: acc and
energy_mj are the SNN's up to T, the qann_* columns the equal-bit quantised
ANN's at that T, energy_ratio = energy_mj / qann_energy_mj; ann_acc and
ann_energy_mj sit on the ANN row only. Cells are means over seeds (`± std`
where there are several, `n` seeds), printed as the other tables print them:
accuracies with 2 decimals, energies and ratios with 4 significant digits.

Runs whose results.csv predates the QANN columns get SNN and ANN rows with the
qann_* cells empty (and a note); a results.csv without `energy_model` was priced
by the one model snnx had then, horowitz45 (E_AC = 0.9 pJ, E_MAC = 4.6 pJ at
45 nm). Runs priced with different energy models never share a plot axis:
each model gets its own panels, and a note names `energy=`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from snnx.errors import ConfigError
from snnx.tables.layout import LABEL_KEY, Layout
from snnx.tables.pivot import (Cell, Row, TableResult, _latest_replicates, _settings, apply_aliases, filter_results,
                               format_cell, label_results)
from snnx.tables.results import RUN_KEY

ENERGY_MODEL = "energy_model"
# What priced a results.csv written before energy_model existed: the only model snnx had then.
DEFAULT_ENERGY_MODEL = "horowitz45"
# Per-T columns of one SNN row, in the CSV's order; the QANN's come from results.csv where it has them.
SNN_COLUMNS = ("acc", "energy_mj", "qann_bits", "qann_acc", "qann_energy_mj", "energy_ratio")
QANN_COLUMNS = ("qann_bits", "qann_acc", "qann_energy_mj", "energy_ratio")
ANN_COLUMNS = ("ann_acc", "ann_energy_mj")
VALUE_COLUMNS = SNN_COLUMNS + ANN_COLUMNS
# How each column prints (pivot.format_cell's kinds): accuracies with 2 decimals, the rest with 4 significant digits.
_FORMAT = {"acc": "acc", "qann_acc": "acc", "ann_acc": "acc", "qann_bits": "bits"}


@dataclass
class Series:
    """One row group × setting × energy model: its points for the plot (means over seeds)."""

    keys: dict  # the layout's row keys → value
    setting: str
    energy_model: str
    snn: list[tuple[int, float, float]] = field(default_factory=list)  # (T, energy_mj, acc)
    qann: list[tuple[int, float, float, int]] = field(default_factory=list)  # (T, qann_energy_mj, qann_acc, bits)
    ann: tuple[float, float] | None = None  # (ann_energy_mj, ann_acc)
    has_qann: bool = False


def _number(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(math.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce")


def with_energy_columns(results: pd.DataFrame) -> pd.DataFrame:
    """``results`` with energy_model filled in (horowitz45 where a results.csv predates it) and energy_ratio
    derived from energy_mj / qann_energy_mj where results.csv has the QANN's energy but no ratio."""
    if results.empty:
        return results
    model = results[ENERGY_MODEL] if ENERGY_MODEL in results.columns else pd.Series(None, index=results.index)
    model = model.map(lambda v: DEFAULT_ENERGY_MODEL if v is None or (isinstance(v, float) and math.isnan(v))
                      or not str(v).strip() else str(v).strip())
    ratio = _number(results, "energy_ratio")
    qann = _number(results, "qann_energy_mj")
    derived = _number(results, "energy_mj") / qann.where(qann > 0)
    return results.assign(**{ENERGY_MODEL: model, "energy_ratio": ratio.fillna(derived)})


def _cell(values: list[float], column: str, n_row: int) -> Cell | None:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return None
    mean = float(np.mean(values))
    std = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
    kind = _FORMAT.get(column, column)
    if kind == "bits":  # an integer; seeds of one setting share it
        same = len(set(values)) == 1
        text = f"{mean:.0f}" if same and mean.is_integer() else format_cell(mean, std, len(values), "energy_mj", n_row)
        if same and n_row and len(values) != n_row:
            text += f" (n={len(values)})"
        return Cell(mean, std, len(values), text)
    return Cell(mean, std, len(values), format_cell(mean, std, len(values), kind, n_row))


def _seed_values(run: pd.DataFrame, wanted: set[int] | None) -> tuple[dict[int, dict[str, float]], dict[str, float]]:
    """One seed's values: T → {SNN column → number}, and the ANN's {column → number}."""
    steps = pd.to_numeric(run["T"], errors="coerce")
    per_t: dict[int, dict[str, float]] = {}
    for T in sorted(int(t) for t in steps.dropna().unique()):
        if wanted is not None and T not in wanted:
            continue
        at = run[steps == T]
        per_t[T] = {c: float(_number(at, c).mean()) for c in SNN_COLUMNS}
    ann = {c: float(_number(run, c).dropna().mean()) if _number(run, c).notna().any() else math.nan
           for c in ANN_COLUMNS}
    return per_t, ann


def _bits(value: float) -> int | None:
    return None if math.isnan(value) else int(round(value))


def efficiency_rows(labelled: pd.DataFrame, layout: Layout) -> tuple[list[Row], list[Series]]:
    """The table's rows (one for the ANN, one per T, per row group × setting × energy model) and the plot's series."""
    if labelled.empty:
        return [], []
    frame = _latest_replicates(labelled.copy(), ["T", ENERGY_MODEL, *([LABEL_KEY] if layout.mapped else [])])
    group_keys = [k for k in layout.rows if k != "T"] + ([ENERGY_MODEL] if ENERGY_MODEL not in layout.rows else [])
    for key in group_keys:
        if key not in frame.columns:
            raise ConfigError(f"row key {key!r} is no results.csv column or run config key.", key="table.rows",
                              fix="Use results.csv columns (dataset, model, act, L, convert, …) or dotted config keys.")
    wanted = {t.lo for t in layout.T} if layout.T else None
    rows: list[Row] = []
    series: list[Series] = []
    for base, setting, by_setting, hashes in _settings(frame, group_keys, sort=True):
        seeds = [_seed_values(rep, wanted) for _, rep in by_setting.groupby("_seed", sort=True)]
        n_row = len(seeds)
        keys = {k: v for k, v in base.items() if k != ENERGY_MODEL}
        model = str(base.get(ENERGY_MODEL) or DEFAULT_ENERGY_MODEL)
        line = Series(keys=keys, setting=setting, energy_model=model)
        ann_cells = {c: _cell([ann[c] for _, ann in seeds], c, n_row) for c in ANN_COLUMNS}
        ann_cells = {c: cell for c, cell in ann_cells.items() if cell is not None}
        if ann_cells:
            rows.append(Row(keys={**base, "T": ""}, source="snnx", setting=setting, cells=ann_cells, n=n_row,
                            hashes=hashes))
            if "ann_acc" in ann_cells and "ann_energy_mj" in ann_cells:
                line.ann = (ann_cells["ann_energy_mj"].mean, ann_cells["ann_acc"].mean)
        steps = sorted({T for per_t, _ in seeds for T in per_t})
        for T in steps:
            cells = {c: _cell([per_t[T][c] for per_t, _ in seeds if T in per_t], c, n_row) for c in SNN_COLUMNS}
            cells = {c: cell for c, cell in cells.items() if cell is not None}
            if not cells:
                continue
            n_t = sum(T in per_t for per_t, _ in seeds)
            rows.append(Row(keys={**base, "T": str(T)}, source="snnx", setting=setting, cells=cells, n=n_t,
                            hashes=hashes))
            if "acc" in cells and "energy_mj" in cells:
                line.snn.append((T, cells["energy_mj"].mean, cells["acc"].mean))
            if "qann_acc" in cells and "qann_energy_mj" in cells:
                line.has_qann = True
                bits = _bits(cells["qann_bits"].mean) if "qann_bits" in cells else None
                line.qann.append((T, cells["qann_energy_mj"].mean, cells["qann_acc"].mean, bits))
        series.append(line)
    return rows, series


def to_frame(rows: list[Row], layout: Layout) -> pd.DataFrame:
    keys = [k for k in layout.rows if k != "T"]
    columns = keys + ["setting", ENERGY_MODEL, "T", *VALUE_COLUMNS, "n", "config_hash"]
    records = []
    for row in rows:
        rec = {k: row.keys.get(k, "") for k in keys}
        rec.update(setting=row.setting, energy_model=row.keys.get(ENERGY_MODEL, ""), T=row.keys.get("T", ""))
        for column in VALUE_COLUMNS:
            cell = row.cells.get(column)
            rec[column] = cell.text if cell else ""
        rec["n"] = str(row.n)
        rec["config_hash"] = " ".join(row.hashes)
        records.append(rec)
    return pd.DataFrame(records, columns=columns, dtype=object)


def build_efficiency_table(layout: Layout, results: pd.DataFrame) -> TableResult:
    """Accuracy vs energy per image of the runs in ``results`` that pass the layout's filters."""
    notes: list[str] = []
    results = with_energy_columns(results)
    selected = filter_results(results, layout.snnx_filters())
    if not results.empty and selected.empty:
        notes.append(f"no run passes the filters {layout.snnx_filters()} ({results[RUN_KEY].nunique()} run(s) found)")
    labelled = label_results(selected, layout, notes) if layout.mapped else selected
    labelled = apply_aliases(labelled, layout)
    rows, series = efficiency_rows(labelled, layout)
    if not labelled.empty:
        runs = labelled.drop_duplicates(RUN_KEY)
        models = runs[ENERGY_MODEL].value_counts(sort=False)
        if len(models) > 1:
            counted = ", ".join(f"{m}: {c} run(s)" for m, c in sorted(models.items()))
            notes.append(f"the runs were priced with {len(models)} energy models ({counted}); their energies are not "
                         f"comparable, so each model has its own panels. To compare them on one axis, simulate them "
                         f"all with one energy=… (or pick one with table.filters.energy_model=…)")
        by_run = labelled[RUN_KEY]
        priced = _number(labelled, "qann_energy_mj").notna().groupby(by_run).any()
        measured = (_number(labelled, "qann_acc").notna() & _number(labelled, "qann_energy_mj").notna()) \
            .groupby(by_run).any()
        if (~priced).sum():
            notes.append(f"{int((~priced).sum())} run(s) have no qann_energy_mj in their results.csv (simulated "
                         f"before snnx priced the equal-bit QANN): their SNN and ANN are shown, no QANN points")
        if (priced & ~measured).sum():
            notes.append(f"{int((priced & ~measured).sum())} run(s) have the QANN's energy but no qann_acc (its "
                         f"accuracy was not measured for that net): the CSV has the energy, the plot no QANN points")
        unplottable = sum(1 for s in series for _, energy, _ in s.snn if not energy > 0)
        if unplottable:
            notes.append(f"{unplottable} point(s) have no positive energy_mj and are left off the log-scale plot")
    frame_layout = Layout(**{**layout.__dict__, "rows": [k for k in layout.rows if k != "T"] + [ENERGY_MODEL, "T"]})
    return TableResult(frame_layout, to_frame(rows, layout), rows, [], layout.title, notes, runs=series)
