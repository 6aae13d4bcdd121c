"""Build a paper-style table from snnx runs and the paper's reported cells.

Output layout (one CSV row per table row and source):

    <row keys…> | setting | source | <value columns…> | n | config_hash | reference

* `source` is `reported` (the paper's printed number, as printed) or `snnx`
  (measured here). A label the paper has and snnx measures gets two rows,
  reported first; methods snnx does not implement are reported-only rows;
  snnx-only rows (e.g. an extra ablation) have no reported twin.
* snnx cells are the mean over seeds, written `mean ± std` when a cell holds
  several seeds; `n` is the row's number of seeds, and a cell with fewer seeds
  than its row says so: `95.10 (n=2)`. `config_hash` lists the runs' config
  hashes, `reference` the paper table (and citation) of reported rows.
* `setting` tells apart snnx runs that land in one row but differ in
  something other than the seed (e.g. `act.L=2` vs `act.L=8`); such runs are
  never averaged together.
* A cell nobody measured or reported is empty, never 0.

Wide layouts have one column per T (`T=4`, `T>=64`, `T=400-600`) plus
run-level columns (`ANN`, `SNN best`, `loss`, `final acc`, `final T`,
`MaxDiff`, `AvgDiff`); long layouts have T as a row key and per-T metrics as
columns (Deng & Gu Table 1). Accuracies and losses print with 2 decimals,
other metrics with 4 significant digits; a setting's numbers are rounded for
reading (`convert.alpha=0.03`, not 0.030000000000000002).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Iterator, Mapping
import numpy as np
import pandas as pd

from snnx.errors import ConfigError
from snnx.tables.layout import (ANN_METRICS, DERIVED_METRICS, LABEL_KEY, PAPER_METRIC, PER_T_METRICS, RELU_LOSS,
                                RELU_LOSS_VARIANT, SUMMARY_COLUMNS, Layout, TSpec, display, matches, norm)
from snnx.tables.results import IDENTITY_KEY, RUN_KEY, add_relu_loss, epoch_seconds, threshold_spread

SOURCES = ("reported", "snnx")
SPEC_SETTING = "_spec_setting"
ANN_ROW = "_ann_row"  # marks the copies of runs that an `ann: true` row shows as their ANN
_PAPER_TO_SUMMARY = {metric: col for col, metric in SUMMARY_COLUMNS.items()}
_TWO_DECIMALS = {"acc", "conversion_loss", RELU_LOSS, "ANN", "SNN best", "loss", "final acc", "MaxDiff", "AvgDiff"}


@dataclass
class Column:
    label: str
    kind: str  # "T" (a per-T value in a wide layout), a summary column name, or a per-T metric (long)
    spec: TSpec | None = None

    @property
    def x(self) -> float | None:
        return None if self.spec is None else self.spec.x


@dataclass
class Cell:
    mean: float
    std: float = math.nan
    n: int = 1
    text: str = ""


@dataclass
class Row:
    keys: dict  # row key → value (label under LABEL_KEY for paper layouts)
    source: str
    setting: str = ""
    cells: dict = field(default_factory=dict)  # column label → Cell
    n: int = 0
    hashes: list = field(default_factory=list)
    reference: str = ""
    order: tuple = ()


@dataclass
class TableResult:
    layout: Layout
    frame: pd.DataFrame
    rows: list[Row]
    columns: list[Column]
    title: str
    notes: list[str] = field(default_factory=list)
    runs: list = field(default_factory=list)  # kind=efficiency: one efficiency.Series per row group and setting


# -- snnx side ------------------------------------------------------------------
def _null_ok(wanted) -> bool:
    """A match that accepts null also accepts a run whose config lacks the key (e.g. convert.shift_T: null)."""
    return any(norm(w) is None for w in (wanted if isinstance(wanted, list) else [wanted]))


def _apply_match(frame: pd.DataFrame, match: dict) -> pd.Series:
    keep = pd.Series(True, index=frame.index)
    for key, wanted in match.items():
        if key not in frame.columns:
            if _null_ok(wanted):
                continue
            return pd.Series(False, index=frame.index)
        keep &= frame[key].map(lambda v, w=wanted: matches(v, w))
    return keep


def filter_results(results: pd.DataFrame, filters: dict, key: str = "table.filters") -> pd.DataFrame:
    if results.empty or not filters:
        return results
    unknown = [k for k in filters if k not in results.columns]
    if unknown:
        known = sorted(c for c in results.columns if not c.startswith("_"))
        raise ConfigError(f"no results.csv column or run config key named {', '.join(map(repr, unknown))}.",
                          key=f"{key}.{unknown[0]}",
                          fix=f"Filter on one of: {', '.join(known[:40])}{' …' if len(known) > 40 else ''}.")
    return results[_apply_match(results, filters)]


def label_results(results: pd.DataFrame, layout: Layout, notes: list[str]) -> pd.DataFrame:
    """Attach each run's row label (first matching row spec wins); runs no row claims are left out.

    Where a row accepts several values of a key (``convert: [cos, qcfs]``), the run's value is
    written into its setting (``convert=cos``), so the row says which one it measured.
    """
    if results.empty:
        return results
    labels = pd.Series(None, index=results.index, dtype=object)
    spec_setting = pd.Series("", index=results.index, dtype=object)
    for spec in layout.methods:
        if spec.snnx is None or spec.ann:  # an ANN row claims copies (below), not the runs themselves
            continue
        missing = [k for k, v in spec.snnx.items() if k not in results.columns and not _null_ok(v)]
        if missing:
            notes.append(f"row {spec.label!r}: {', '.join(missing)} is in no results.csv nor run config, so no run "
                         f"matches it")
            continue
        hit = _apply_match(results, spec.snnx) & labels.isna()
        labels[hit] = spec.label
        listed = [k for k, v in spec.snnx.items() if isinstance(v, list) and len(v) > 1]
        if listed and hit.any():
            spec_setting[hit] = [", ".join(f"{k}={display(results.at[i, k])}" for k in listed) for i in results.index[hit]]
    out = results.assign(**{LABEL_KEY: labels, SPEC_SETTING: spec_setting})
    copies = [_ann_copies(results, spec) for spec in layout.methods if spec.ann]
    shown = set().union(*(set(c[RUN_KEY]) for c in copies))
    unclaimed = out[out[LABEL_KEY].isna() & ~out[RUN_KEY].isin(shown)][RUN_KEY].nunique()
    if unclaimed:
        notes.append(f"{unclaimed} run(s) passed the filters but match no row of this layout; left out")
    out = out[out[LABEL_KEY].notna()]
    return pd.concat([out, *copies], ignore_index=True) if any(len(c) for c in copies) else out


def _ann_copies(results: pd.DataFrame, spec) -> pd.DataFrame:
    """The runs an ``ann: true`` row matches, as their ANN: per-T metrics replaced by the ANN's (ANN_METRICS;
    the others empty). Every matching run is copied, whichever other row also claims it."""
    if any(k not in results.columns and not _null_ok(v) for k, v in spec.snnx.items()):
        return results.iloc[:0]
    hit = _apply_match(results, spec.snnx)
    copies = results[hit].copy()
    for metric in PER_T_METRICS:
        if metric in copies.columns or metric in ANN_METRICS:
            source = ANN_METRICS.get(metric, "")
            scale = DERIVED_METRICS.get(metric, ("", 1.0))[1]
            copies[metric] = (0.0 if source is None else
                              pd.to_numeric(copies[source], errors="coerce") * scale if source in copies.columns
                              else math.nan)
    listed = [k for k, v in spec.snnx.items() if isinstance(v, list) and len(v) > 1]
    copies[SPEC_SETTING] = [", ".join(f"{k}={display(copies.at[i, k])}" for k in listed) for i in copies.index]
    copies[LABEL_KEY] = spec.label
    copies[ANN_ROW] = True
    return copies


def add_derived(results: pd.DataFrame) -> pd.DataFrame:
    """``results`` with the DERIVED_METRICS columns (ACs and MACs per image in millions)."""
    if results.empty:
        return results
    derived = {name: pd.to_numeric(results[column], errors="coerce") * factor
               for name, (column, factor) in DERIVED_METRICS.items() if column in results.columns}
    return results.assign(**derived)


def apply_aliases(results: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """Rename row-key values by ``layout.aliases`` (a run's vgg16_rathi joins the paper's vgg16 group); the run's
    own value is appended to its setting, so the row still says what ran."""
    if results.empty or not layout.aliases:
        return results
    results = results.copy()
    if SPEC_SETTING not in results.columns:
        results[SPEC_SETTING] = ""
    for key, alias in layout.aliases.items():
        if key not in results.columns:
            continue
        own = results[key].map(norm)
        renamed = own.map(lambda v, a=alias: a.get(v, v))
        moved = (renamed != own) & own.notna()
        results.loc[moved, SPEC_SETTING] = [", ".join(x for x in (s, f"{key}={display(v)}") if x)
                                            for s, v in zip(results.loc[moved, SPEC_SETTING], own[moved])]
        results[key] = renamed.where(moved, results[key])
    return results


def _tspec_value(run: pd.DataFrame, spec: TSpec, metric: str) -> float:
    steps = run["T"]
    if spec.exact:
        sel = run[steps == spec.lo]
    elif spec.hi is None:
        above = run[steps >= spec.lo]
        sel = above[above["T"] == above["T"].max()] if not above.empty else above
    else:
        sel = run[(steps >= spec.lo) & (steps <= spec.hi)]
    values = pd.to_numeric(sel[metric], errors="coerce").dropna()
    return float(values.mean()) if not values.empty else math.nan


def final_time_step(accuracy: Mapping) -> int | None:
    """All-int's "final time step": the first T of the sweep after which accuracy no longer changes.

    ``accuracy`` maps T → accuracy (a percentage, or a count of correct images) for every simulated T;
    the answer is the smallest T whose value equals that of every larger T (so it can only be trusted
    below the sweep's largest T); None for an empty sweep. Values within 1e-9 count as equal: a
    percentage re-read from a CSV or averaged over rows may differ from its twin in the last bit,
    while two different counts (or percentages of one test set) are always further apart.
    """
    steps = sorted(accuracy)
    if not steps:
        return None
    last = accuracy[steps[-1]]
    final = steps[-1]
    for T in reversed(steps[:-1]):
        if not abs(accuracy[T] - last) < 1e-9:
            break
        final = T
    return final


def _final_step(run: pd.DataFrame) -> tuple[float, float]:
    """One run's final time step and its accuracy (NaN, NaN for a run with no T)."""
    series = run.groupby("T")["acc"].mean()
    step = final_time_step(series.to_dict())
    if step is None:
        return math.nan, math.nan
    return float(step), float(series[step])


def _replicate_values(run: pd.DataFrame, layout: Layout, columns: list[Column]) -> dict:
    """One seed's values: column label → number (wide) or (T text) → {column label → number} (long)."""
    run = run.sort_values("T")
    out: dict = {}
    ann = pd.to_numeric(run.get("ann_acc"), errors="coerce").dropna() if "ann_acc" in run else pd.Series(dtype=float)
    if layout.layout == "long" and ANN_ROW in run.columns and run[ANN_ROW].fillna(False).astype(bool).any():
        # The ANN runs no time steps: one row, at no T (its values are the same at every T).
        first = run.iloc[0]
        cells = {col.label: (float(ann.mean()) if not ann.empty else math.nan) if col.kind == "ANN"
                 else float(pd.to_numeric(pd.Series([first.get(col.kind)]), errors="coerce").iloc[0])
                 for col in columns}
        return {"": cells} if any(not math.isnan(v) for v in cells.values()) else {}
    if layout.layout == "long":
        present = sorted(run["T"].unique())
        specs = layout.T or [TSpec.parse(int(t)) for t in present]
        for spec in specs:
            cells = {}
            for col in columns:
                if col.kind == "ANN":
                    cells[col.label] = float(ann.mean()) if not ann.empty else math.nan
                else:
                    cells[col.label] = _tspec_value(run, spec, col.kind)
            if any(not math.isnan(v) for k, v in cells.items() if k != "ANN"):
                out[spec.text] = cells
        return out
    spread = None
    for col in columns:
        if col.kind == "T":
            out[col.label] = _tspec_value(run, col.spec, layout.value)
        elif col.kind == "ANN":
            column, factor = layout.ann_source
            own = ann if column == "ann_acc" else \
                pd.to_numeric(run.get(column), errors="coerce").dropna() * factor if column in run else pd.Series(dtype=float)
            out[col.label] = float(own.mean()) if not own.empty else math.nan
        elif col.kind == "SNN best":
            out[col.label] = float(pd.to_numeric(run["acc"], errors="coerce").max())
        elif col.kind == "loss":
            last = run[run["T"] == run["T"].max()]
            out[col.label] = float((pd.to_numeric(last["ann_acc"], errors="coerce")
                                    - pd.to_numeric(last["acc"], errors="coerce")).mean())
        elif col.kind in ("final acc", "final T"):
            step, acc = _final_step(run)
            out[col.label] = step if col.kind == "final T" else acc
        elif col.kind in ("MaxDiff", "AvgDiff"):
            if spread is None:
                spread = {}
                for run_dir in reversed(list(dict.fromkeys(run[RUN_KEY]))):
                    spread = threshold_spread(run_dir)
                    if spread:
                        break
            out[col.label] = spread.get(col.kind.lower(), math.nan)
        elif col.kind == "epoch time (s)":
            first = run.iloc[-1]
            root, key = first.get("paths.root"), first.get("ann_key")
            out[col.label] = epoch_seconds(root, key) if norm(root) and norm(key) else math.nan
    return out


def _setting_texts(identities: list[str]) -> dict[str, str]:
    """For runs that share a row but not a setting: the keys that tell them apart, values rounded for reading
    (:func:`display`) unless that would make two settings read alike."""
    if len(identities) < 2:
        return {i: "" for i in identities}
    parsed = {i: json.loads(i) for i in identities}
    keys = sorted(set().union(*parsed.values()))
    differing = [k for k in keys if len({json.dumps(p.get(k), default=str) for p in parsed.values()}) > 1]
    # A key only some runs have belongs to their option of its group (convert.presim is convert=cos's): when the
    # option's name already tells the runs apart, the key adds nothing.
    differing = [k for k in differing if not (any(k not in p for p in parsed.values()) and "." in k
                                              and f"{k.rpartition('.')[0]}.name" in differing)]
    def text(payload: dict, show) -> str:
        parts = [f"{k}={'—' if show(payload.get(k)) is None else show(payload.get(k))}" for k in differing]
        return ", ".join(parts[:4]) + (f", … (+{len(parts) - 4})" if len(parts) > 4 else "")

    texts = {ident: text(payload, display) for ident, payload in parsed.items()}
    if len(set(texts.values())) < len(texts):
        texts = {ident: text(payload, norm) for ident, payload in parsed.items()}
    return texts


def _latest_replicates(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``frame`` (modified) with ``seed``/``_seed``/spec-setting columns filled in and one row per setting, seed
    and ``keys``: a re-run of the same thing replaces the older one (newest ``created`` kept)."""
    frame["seed"] = frame["seed"] if "seed" in frame.columns else 0
    frame["_seed"] = frame["seed"].map(norm).fillna("")
    if SPEC_SETTING not in frame.columns:
        frame[SPEC_SETTING] = ""
    if "created" in frame.columns:
        frame = frame.sort_values("created", kind="stable")
    return frame.drop_duplicates(subset=[IDENTITY_KEY, "_seed", *keys], keep="last")


def _settings(frame: pd.DataFrame, group_keys: list[str], *, sort: bool) -> Iterator[tuple[dict, str, pd.DataFrame, list[str]]]:
    """(row keys, setting text, the setting's rows, their config hashes) per row group × spec setting × setting."""
    for keyvals, group in frame.groupby(group_keys, dropna=False, sort=sort):
        keyvals = keyvals if isinstance(keyvals, tuple) else (keyvals,)
        base = {k: ("" if norm(v) is None else norm(v)) for k, v in zip(group_keys, keyvals)}
        for spec_setting, sub in group.groupby(SPEC_SETTING, sort=True):
            settings = _setting_texts(list(dict.fromkeys(sub[IDENTITY_KEY])))
            for ident, by_setting in sub.groupby(IDENTITY_KEY, sort=False):
                setting = ", ".join(x for x in (spec_setting, settings[ident]) if x)
                hashes = sorted(set(by_setting["config_hash"].astype(str))) if "config_hash" in by_setting else []
                yield base, setting, by_setting, hashes


def snnx_rows(labelled: pd.DataFrame, layout: Layout, columns: list[Column]) -> list[Row]:
    if labelled.empty:
        return []
    # One value per setting, seed and T: a re-run of the same thing replaces the older one.
    # The label is part of it: an `ann: true` row's copies share their runs' identity, seed and T.
    frame = _latest_replicates(labelled.copy(), ["T", LABEL_KEY])
    group_keys = [k for k in layout.rows if k != "T"]
    for key in group_keys:
        if key not in frame.columns:
            raise ConfigError(f"row key {key!r} is no results.csv column or run config key.", key="table.rows",
                              fix="Use results.csv columns (dataset, model, act, L, convert, …), dotted config keys, "
                                  f"or '{LABEL_KEY}' for the layout's row labels.")
    rows: list[Row] = []
    for base, setting, by_setting, hashes in _settings(frame, group_keys, sort=False):
        per_seed = [_replicate_values(rep, layout, columns) for _, rep in by_setting.groupby("_seed", sort=True)]
        if layout.layout == "long":
            steps = list(dict.fromkeys(t for vals in per_seed for t in vals))
            for t in steps:
                at_t = [vals[t] for vals in per_seed if t in vals]
                cells = _aggregate(at_t, columns, len(at_t), layout.value)
                if cells:
                    rows.append(Row(keys={**base, "T": t}, source="snnx", setting=setting, cells=cells,
                                    n=len(at_t), hashes=hashes))
        else:
            source = layout.ann_source
            cells = _aggregate(per_seed, columns, len(per_seed), layout.value,
                               ann_kind="ANN" if source is None or source[0] == "ann_acc" else layout.value)
            if cells:
                rows.append(Row(keys=dict(base), source="snnx", setting=setting, cells=cells,
                                n=len(per_seed), hashes=hashes))
    return rows


def _aggregate(per_seed: list[dict], columns: list[Column], n_row: int, value: str = "acc", ann_kind: str = "ANN") -> dict:
    """Mean (± std over seeds) cells; ``value`` and ``ann_kind`` are what the T and ANN columns hold (their format)."""
    cells = {}
    for col in columns:
        kind = value if col.kind == "T" else ann_kind if col.kind == "ANN" else col.kind
        values = [v[col.label] for v in per_seed if not math.isnan(v.get(col.label, math.nan))]
        if not values:
            continue
        mean = float(np.mean(values))
        std = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
        cells[col.label] = Cell(mean, std, len(values), format_cell(mean, std, len(values), kind, n_row))
    return cells


def format_number(value: float, kind: str) -> str:
    if kind == "final T":
        return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
    if kind in _TWO_DECIMALS:
        return f"{value:.2f}"
    return f"{value:.4g}"


def format_cell(mean: float, std: float, n: int, kind: str, n_row: int) -> str:
    text = format_number(mean, kind)
    if n > 1:
        text += f" ± {format_number(std, kind if kind != 'final T' else 'ANN')}"
    if n_row and n != n_row:
        text += f" (n={n})"
    return text


# -- reported side ------------------------------------------------------------------
def _paper_row_labels(reported: pd.DataFrame, layout: Layout) -> pd.Series:
    labels = pd.Series(None, index=reported.index, dtype=object)
    for spec in layout.methods:
        if not spec.paper:
            continue
        hit = _apply_match(reported, {("model" if k == "arch" else k): v for k, v in spec.paper.items()})
        labels[hit & labels.isna()] = spec.label
    if layout.reported_rest:
        rest = labels.isna()
        labels[rest] = [m if not v else f"{m} ({v})" for m, v in zip(reported.loc[rest, "method"], reported.loc[rest, "variant"])]
    return labels


def reported_rows(reported: pd.DataFrame, layout: Layout, columns: list[Column], notes: list[str]) -> list[Row]:
    if reported.empty:
        return []
    reported = reported.copy()
    paper_filters = {("model" if k == "arch" else k): v for k, v in layout.paper_filters().items()}
    reported = reported[_apply_match(reported, paper_filters)] if paper_filters else reported
    reported[LABEL_KEY] = _paper_row_labels(reported, layout)
    reported = reported[reported[LABEL_KEY].notna()]
    by_label: dict[tuple, Row] = {}
    seen: set = set()
    metric_value = PAPER_METRIC.get(layout.value)
    wide_t = {c.spec.text: c for c in columns if c.kind == "T"}
    summary = {c.kind: c for c in columns if c.kind in SUMMARY_COLUMNS}
    if "ANN" in summary and layout.ann_source != ("ann_acc", 1.0):
        summary.pop("ANN")  # the column holds the ANN's energy or MACs, not the accuracy the paper prints
    long_cols = {PAPER_METRIC.get(c.kind): c for c in columns if c.kind in PAPER_METRIC and c.kind != RELU_LOSS}
    # Loss cells printed against a regular-ReLU ANN go to that column where the layout has one.
    relu_col = next((c for c in columns if c.kind == RELU_LOSS), None) if layout.layout == "long" else None
    ann_cells: dict[tuple, tuple] = {}
    for rec in reported.itertuples(index=False):
        t_text = TSpec.try_parse(rec.T).text if rec.T and TSpec.try_parse(rec.T) else rec.T
        column = None
        if layout.layout == "wide":
            if rec.T and rec.metric == metric_value:
                column = wide_t.get(t_text)
            elif not rec.T:
                column = summary.get(_PAPER_TO_SUMMARY.get(rec.metric, ""))
        else:
            if rec.T and relu_col is not None and rec.metric == PAPER_METRIC[RELU_LOSS] \
                    and rec.variant == RELU_LOSS_VARIANT:
                column = relu_col
            elif rec.metric in long_cols:  # printed T kept as printed (RMP at 1536, TSC at 2048, …); none: no T
                column = long_cols[rec.metric]
            elif not rec.T and rec.metric == "acc_ann" and "ANN" in summary:
                ann_cells[(rec.dataset, rec.model, getattr(rec, LABEL_KEY))] = (rec, summary["ANN"])
                continue
        if column is None or math.isnan(rec.number):
            continue
        keys = {k: "" for k in layout.rows}
        keys.update({k: getattr(rec, k) for k in ("dataset", "model") if k in keys})
        keys[LABEL_KEY] = getattr(rec, LABEL_KEY)
        if layout.layout == "long":
            keys["T"] = t_text
        row_id = tuple(keys.items())
        row = by_label.setdefault(row_id, Row(keys=keys, source="reported", order=(rec.order,)))
        if column.label in row.cells:
            dup = (row_id, column.label)
            if dup not in seen:
                seen.add(dup)
                notes.append(f"reported: two values for {keys[LABEL_KEY]!r} {column.label} "
                             f"({row.cells[column.label].text} and {rec.value}); kept the first")
            continue
        row.cells[column.label] = Cell(float(rec.number), text=rec.value)
        ref = f"{rec.paper} {rec.table}" + (f" ({rec.variant})" if rec.variant else "")
        if ref not in row.reference.split("; "):
            row.reference = f"{row.reference}; {ref}" if row.reference else ref
    for (dataset, model, label), (rec, column) in ann_cells.items():  # long layouts: the ANN on every T row
        for row in by_label.values():
            if (row.keys.get("dataset", dataset), row.keys.get("model", model), row.keys[LABEL_KEY]) == (dataset, model, label):
                row.cells.setdefault(column.label, Cell(float(rec.number), text=rec.value))
    return list(by_label.values())


# -- putting it together -------------------------------------------------------------
def table_columns(layout: Layout, results: pd.DataFrame, reported: pd.DataFrame) -> list[Column]:
    if layout.layout == "long":
        return [Column("ANN" if c == "ANN" else c, c) for c in layout.columns]
    columns: list[Column] = []
    for kind in layout.columns:
        if kind == "ANN" and layout.ann_source is None:
            continue  # an ANN neither spikes nor accumulates: nothing to show beside the table's value
        if kind != "T":
            columns.append(Column(kind, kind))
            continue
        specs = list(layout.T)
        if not specs:
            found = {}
            if not results.empty:
                for t in pd.to_numeric(results["T"], errors="coerce").dropna().unique():
                    spec = TSpec.parse(int(t))
                    found[spec.text] = spec
            if not reported.empty:
                metric = PAPER_METRIC.get(layout.value)
                for t in reported.loc[(reported["metric"] == metric) & (reported["T"] != ""), "T"].unique():
                    spec = TSpec.try_parse(t)
                    if spec:
                        found[spec.text] = spec
            specs = sorted(found.values(), key=lambda s: (s.x, s.text))
        columns += [Column(spec.label, "T", spec) for spec in specs]
    return columns


def order_rows(rows: list[Row], layout: Layout) -> list[Row]:
    group_keys = [k for k in layout.rows if k not in (LABEL_KEY, "T")]
    label_rank = {spec.label: i for i, spec in enumerate(layout.methods)}
    groups: dict[tuple, tuple] = {}
    for row in sorted((r for r in rows if r.source == "reported"), key=lambda r: r.order):
        groups.setdefault(tuple(row.keys.get(k, "") for k in group_keys), (0, len(groups)))
    for row in sorted((r for r in rows if r.source == "snnx"), key=lambda r: tuple(str(r.keys.get(k, "")) for k in group_keys)):
        groups.setdefault(tuple(row.keys.get(k, "") for k in group_keys), (1, len(groups)))
    first_seen: dict[str, int] = {}
    for row in sorted((r for r in rows if r.source == "reported"), key=lambda r: r.order):
        first_seen.setdefault(row.keys.get(LABEL_KEY, ""), len(first_seen))

    def label_key(row: Row):
        label = row.keys.get(LABEL_KEY, "")
        if not layout.mapped:
            return (0, 0, tuple(str(row.keys.get(k, "")) for k in layout.rows))
        if label in label_rank:
            return (0, label_rank[label], ())
        return (1, first_seen.get(label, 10**6), (label,))

    def t_key(row: Row):
        spec = TSpec.try_parse(row.keys.get("T", "")) if layout.layout == "long" else None
        return (spec.x, spec.text) if spec else (0.0, "")

    return sorted(rows, key=lambda r: (groups[tuple(r.keys.get(k, "") for k in group_keys)], label_key(r), t_key(r),
                                       SOURCES.index(r.source), r.setting))


def to_frame(rows: list[Row], columns: list[Column], layout: Layout) -> pd.DataFrame:
    keys = layout.row_keys
    labels = [c.label for c in columns]
    records = []
    for row in rows:
        rec = {k: row.keys.get(k, "") for k in keys}
        rec["setting"] = row.setting
        rec["source"] = row.source
        for label in labels:
            cell = row.cells.get(label)
            rec[label] = cell.text if cell else ""
        rec["n"] = str(row.n) if row.source == "snnx" else ""
        rec["config_hash"] = " ".join(row.hashes)
        rec["reference"] = row.reference
        records.append(rec)
    return pd.DataFrame(records, columns=keys + ["setting", "source"] + labels + ["n", "config_hash", "reference"], dtype=object)


def build_table(layout: Layout, results: pd.DataFrame, reported: pd.DataFrame) -> TableResult:
    """The table for ``layout`` from snnx's results (all runs found) and the paper's reported cells."""
    notes: list[str] = []
    if RELU_LOSS in layout.columns or layout.value == RELU_LOSS:
        # Before the filters: the ReLU run it needs may be one that no row of this layout claims.
        results = add_relu_loss(results, RELU_LOSS)
    results = add_derived(results)
    selected = filter_results(results, layout.snnx_filters())
    if not results.empty and selected.empty:
        notes.append(f"no run passes the filters {layout.snnx_filters()} ({results[RUN_KEY].nunique()} run(s) found)"
                     + ("" if layout.embedded or not layout.mapped else
                        "; for embedded-scale runs add table.embedded=true"))
    labelled = label_results(selected, layout, notes) if layout.mapped else selected
    labelled = apply_aliases(labelled, layout)
    columns = table_columns(layout, labelled, reported)
    rows = snnx_rows(labelled, layout, columns)
    rows += reported_rows(reported, layout, columns, notes)
    rows = order_rows(rows, layout)
    title = layout.title
    if layout.embedded:
        measured = sorted({f"{r.keys.get('dataset', '?')}/{r.keys.get('model', '?')}" for r in rows if r.source == "snnx"})
        title += f" — embedded scale: snnx rows on {', '.join(measured) if measured else '(none yet)'}"
    return TableResult(layout, to_frame(rows, columns, layout), rows, columns, title, notes)


def build_layer_table(layout: Layout, results: pd.DataFrame, read_layers) -> TableResult:
    """Per-layer statistics (layers.csv) of the selected runs: rows = setting × layer, columns = T."""
    notes: list[str] = []
    selected = filter_results(results, layout.snnx_filters())
    labelled = label_results(selected, layout, notes) if layout.mapped else selected
    metric = layout.layer_metric
    frames = []
    for run_dir, run in labelled.groupby(RUN_KEY, sort=False):
        layers = read_layers(run_dir)
        if layers is None or metric not in layers.columns:
            continue
        first = run.iloc[0]
        layers = layers.assign(**{k: first[k] for k in [*layout.rows, IDENTITY_KEY, SPEC_SETTING, "config_hash", "seed",
                                                        "created"] if k in run.columns and k not in ("T", "layer")})
        layers["_layer_index"] = layers["layer"].map({name: i for i, name in enumerate(dict.fromkeys(layers["layer"]))})
        frames.append(layers)
    if not frames:
        return TableResult(layout, pd.DataFrame(), [], [], layout.title, notes)
    data = _latest_replicates(pd.concat(frames, ignore_index=True), ["T", "layer"])
    specs = layout.T or [TSpec.parse(int(t)) for t in sorted(data["T"].unique())]
    columns = [Column(s.label, "T", s) for s in specs]
    group_keys = [k for k in layout.rows if k not in ("T", "layer")]
    rows: list[Row] = []
    for base, setting, by_setting, hashes in _settings(data, group_keys, sort=True):
        n_seeds = by_setting["_seed"].nunique()
        for (index, layer), by_layer in by_setting.groupby(["_layer_index", "layer"], sort=True):
            per_seed = [{c.label: _tspec_value(rep, c.spec, metric) for c in columns}
                        for _, rep in by_layer.groupby("_seed")]
            cells = _aggregate(per_seed, [Column(c.label, metric, c.spec) for c in columns], n_seeds)
            if cells:
                rows.append(Row(keys={**base, "layer": layer}, source="snnx", setting=setting, cells=cells,
                                n=n_seeds, hashes=hashes, order=(int(index),)))
    frame_layout = Layout(**{**layout.__dict__, "rows": [*group_keys, "layer"], "layout": "wide"})
    what = {"sin_ratio": "SIN ratio"}.get(metric, metric.replace("_", " "))
    title = layout.title if what.lower() in layout.title.lower() else f"{layout.title} — {what} per layer"
    return TableResult(frame_layout, to_frame(rows, columns, frame_layout), rows, columns, title, notes)
