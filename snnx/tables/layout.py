"""Table layouts: what a `conf/table/*.yaml` file says, checked and typed.

A layout names the rows and columns of one output table, which paper table
the reported numbers come from, and how snnx runs map onto the paper's row
labels. `Layout.from_dict` turns the plain dict of the composed `table`
config into a `Layout` and fails with a `ConfigError` naming the key.

    name: csqcfs_table1               # output: ${paths.root}/tables/<name>.csv and .png
    paper: csqcfs                     # reported rows from snnx/paper_tables/<paper>.csv (omit: snnx only)
    paper_tables: [Table 1]           # …from these of its tables, as printed
    title: "CS-QCFS Table 1 — CIFAR-10 accuracy (%) vs T"
    kind: accuracy                    # accuracy | layers (layers.csv statistic per layer, see below)
                                      #   | efficiency (accuracy vs energy per image, see below)
    layout: wide                      # wide: one column per T | long: T is a row key (Deng & Gu Table 1)
    rows: [dataset, model, method]    # `method` holds the row labels below
    columns: [ANN, T, SNN best]       # wide: ANN, T (expands to T=…), SNN best, loss, final acc, final T,
                                      #   MaxDiff, AvgDiff, epoch time (s) (the ANN's mean s/epoch, its train.csv);
                                      #   long: ANN and results.csv metrics (acc, conversion_loss, sops, macs,
                                      #   energy_mj…), acs_m / macs_m (SOPs / MACs per image in millions) and
                                      #   conversion_loss_relu (ANN − SNN against the same net's ReLU ANN)
    T: [1, 2, 4, 8, ">=64", 400-600]  # exact T; ">=N": a run's largest T ≥ N; "A-B": mean over a run's T in [A, B]
    value: acc                        # the results.csv metric in the T columns
    filters: {dataset: cifar10, model: [vgg16, resnet20]}   # on runs; dataset/model also pick the paper's rows
    methods:                          # the rows, in order; first match wins for a run
      - {label: QCFS, paper: {method: QCFS}, snnx: {act: qcfs, convert: qcfs}}
      - {label: SRP, paper: {method: SRP}}                      # not in snnx: reported only
      - {label: CS-QCFS (ours), paper: {method: Ours}, snnx: {act: csqcfs, convert: [cos, qcfs]}}
      - {label: extra ablation, snnx: {act: csqcfs, train.two_stage: false}}   # snnx only
      - {label: ANN, paper: {method: ANN}, snnx: {act: [qcfs, csqcfs]}, ann: true}  # the runs' ANN (no T)
    reported_rest: true               # paper rows no entry claims become reported-only rows ("method (variant)")
    embedded: false                   # true: snnx rows from embedded_filters' datasets, labelled as what they are
    embedded_filters: {dataset: [digits, mnist5k]}
    aliases: {model: {vgg16_rathi: vgg16}}   # snnx rows of a run's value sit in the paper's group (setting: model=…)
    panels: null                      # row keys that split the figure into panels (default: rows but `method`)
    layer_metric: sin_ratio           # kind=layers: sin_ratio | sin_share | firing_rate | clip_error | floor_error | ann_error
    layer_axis: T                     # kind=layers: T (one line per layer) | layer (one line per T)
    strict: false                     # true: an unusable results.csv or a sweep job without one is an error
                                      #   (exit 2, no table written); false: a note each, the good runs tabulated

Values in `filters`, `embedded_filters` and the `snnx` match of a row are a
scalar or a list (any of); keys are results.csv columns (`dataset`, `model`,
`act`, `L`, `convert`, `seed`, …) or dotted keys of the run's composed config
(`act.k`, `convert.variant`, `train.two_stage`, …, read from
`.hydra/config.yaml` beside the results.csv). A null filter value drops that
filter (`table.filters.dataset=null`). Where a row's `snnx` match lists
several values for a key, the row's `setting` column says which one a run had.
The `paper` match uses the paper CSV's columns (method, variant, table, …).
A row with `ann: true` also claims runs other rows claim, and shows their
ANN: acc = ann_acc, no SOPs/ACs, MACs = ann_macs, energy = ann_energy_mj (in a
long layout once per run, with T empty). Reported cells without a T land in a
long layout's row with T empty (Yang et al. 2025, Table 7 states none).
Without `methods` or `paper` (the `summary` layout) rows are raw results.csv
columns; renamed (`table.name=msat_sweep`) with the summary's title left as it
is, the table takes its name as its title. A wide layout's ANN column holds the
ANN's value of `value`: its accuracy for acc and the losses, ann_energy_mj for
energy_mj, ann_macs for macs; a spikes or SOPs table has none (an ANN neither
spikes nor accumulates).

`kind: efficiency` (conf/table/efficiency.yaml; snnx/tables/efficiency.py) puts
accuracy against energy per image: per row group and setting (as the summary
groups runs) the SNN at each T, its ANN once, and the equal-bit quantised ANN
at each T where results.csv has the qann_* columns. It takes name, title, rows,
T (exact time steps only; empty: every T a run has), filters, methods (row
labels; no `ann: true` rows), aliases, panels (default: dataset; runs priced with
different energy models always get their own panels) and plot; columns, value,
layout and paper are fixed by the kind, and setting one of them is an error
naming it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from snnx.config import embedded_datasets
from snnx.errors import ConfigError

KINDS = ("accuracy", "layers", "efficiency")
LAYOUTS = ("wide", "long")
LAYER_METRICS = ("sin_ratio", "sin_share", "firing_rate", "clip_error", "floor_error", "ann_error")
LAYER_AXES = ("T", "layer")
# Columns that summarise a whole run (one value per run, not per T): the
# paper's metric, and how snnx computes it from one run (see pivot.py).
SUMMARY_COLUMNS = {
    "ANN": "acc_ann",
    "SNN best": "snn_best",
    "loss": "conversion_loss",
    "final acc": "acc_snn",
    "final T": "final_timestep",
    "MaxDiff": "maxdiff",
    "AvgDiff": "avgdiff",
    # Mean seconds per epoch of the run's ANN training (its train.csv in the ANN cache; Yang et al. 2025, Table 6).
    "epoch time (s)": "epoch_time_s",
}
# results.csv metric → the paper CSV's metric name for the same quantity at a given T.
PAPER_METRIC = {"acc": "acc_snn", "conversion_loss": "conversion_loss", "conversion_loss_relu": "conversion_loss",
                "energy_mj": "energy_mj", "acs_m": "acs_m", "macs_m": "macs_m"}
# Per-T metrics derived from a results.csv column: name → (column, factor). Yang et al. 2025, Table 7 prints
# operations per image in millions; its ACs (accumulates) are snnx's SOPs.
DERIVED_METRICS = {"acs_m": ("sops", 1e-6), "macs_m": ("macs", 1e-6)}
# A row with `ann: true` shows the matched runs' ANN: no ACs, its MACs and their energy (Yang et al. 2025,
# Table 7's ANN row). Metric → the results.csv column that holds the ANN's value (None: 0).
ANN_METRICS = {"sops": None, "acs_m": None, "macs": "ann_macs", "macs_m": "ann_macs", "energy_mj": "ann_energy_mj"}
# ANN − SNN with the ANN a regular-ReLU one of the same net (Deng & Gu 2021, Table 1's "a%" before the
# brackets): the act=relu run with the same dataset/model/train config and seed gives that ANN (results.py).
RELU_LOSS = "conversion_loss_relu"
# The paper CSV's variant for those cells; a layout with a conversion_loss_relu column puts them there.
RELU_LOSS_VARIANT = "vs regular ReLU ANN"
# What a wide layout's ANN column holds for each `value` (the T columns' metric): the results.csv column and a
# factor. The loss columns are measured from the ANN's accuracy, so they keep it; an ANN neither spikes nor
# accumulates, so a spikes or SOPs/ACs table has no ANN column at all.
ANN_COLUMN = {"acc": ("ann_acc", 1.0), "conversion_loss": ("ann_acc", 1.0), "conversion_loss_relu": ("ann_acc", 1.0),
              "energy_mj": ("ann_energy_mj", 1.0), "macs": ("ann_macs", 1.0), "macs_m": ("ann_macs", 1e-6)}
PER_T_METRICS = ("acc", "conversion_loss", RELU_LOSS, "spikes_per_neuron", "negative_spikes_per_neuron", "sops",
                 "macs", "energy_mj", *DERIVED_METRICS)
PAPER_KEYS = ("dataset", "model", "arch", "method", "variant", "table", "T", "metric", "note")
LABEL_KEY = "method"  # the row key that holds a layout row's label (the paper's "Method" column)
# The summary layout's title: a table renamed with table.name=… (and no title of its own) is titled by its name.
DEFAULT_NAME, DEFAULT_TITLE = "summary", "snnx results"
def default_embedded_filters() -> dict:
    """The filter that picks embedded-scale runs: the datasets that ship inside installed packages."""
    return {"dataset": embedded_datasets()}

_T_RANGE = re.compile(r"^(\d+)\s*-\s*(\d+)$")
_T_GE = re.compile(r"^>=\s*(\d+)$")


@dataclass(frozen=True)
class TSpec:
    """One T column: an exact T, ``>=N`` (converged: the largest T ≥ N a run has)
    or ``A-B`` (the mean over a run's T in [A, B], as Deng & Gu report 400-600)."""

    text: str  # normalised, as the paper CSV prints it: "32", ">=64", "400-600"
    lo: int
    hi: int | None  # None: open-ended (>=N)
    exact: bool

    @property
    def label(self) -> str:
        return f"T{self.text}" if self.text.startswith(">=") else f"T={self.text}"

    @property
    def x(self) -> float:
        """Where the column sits on the plot's T axis."""
        if self.exact or self.hi is None:
            return float(self.lo)
        return (self.lo + self.hi) / 2

    @classmethod
    def parse(cls, value: Any, key: str = "table.T") -> "TSpec":
        if isinstance(value, bool):
            raise ConfigError(f"{value!r} is not a time step.", key=key, fix="Use integers, '>=N' or 'A-B', e.g. [1, 2, 4, '>=64'].")
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            value = int(value)
            if value < 1:
                raise ConfigError(f"time steps are ≥ 1, got {value}.", key=key, fix="Use e.g. T: [1, 2, 4, 8].")
            return cls(str(value), value, value, True)
        text = str(value).strip().replace(" ", "").replace("≥", ">=")
        if text.isdigit() and int(text) >= 1:
            return cls(str(int(text)), int(text), int(text), True)
        m = _T_GE.match(text)
        if m:
            return cls(f">={int(m.group(1))}", int(m.group(1)), None, False)
        m = _T_RANGE.match(text)
        if m and int(m.group(1)) <= int(m.group(2)):
            return cls(f"{int(m.group(1))}-{int(m.group(2))}", int(m.group(1)), int(m.group(2)), False)
        raise ConfigError(f"cannot read {value!r} as a time step.", key=key,
                          fix="Use an integer, '>=N' (converged, the largest T ≥ N) or 'A-B' (mean over that range).")

    @classmethod
    def try_parse(cls, value: Any) -> "TSpec | None":
        try:
            return cls.parse(value)
        except ConfigError:
            return None


@dataclass
class RowSpec:
    """One row label of a paper layout and what it collects from each source."""

    label: str
    paper: dict | None  # match on the paper CSV (method, variant, …); None: snnx only
    snnx: dict | None  # match on results.csv / run config; None: reported only
    note: str = ""
    ann: bool = False  # the row shows the matched runs' ANN (ANN_METRICS), once per run, at no T


@dataclass
class Layout:
    name: str
    title: str
    paper: str | None = None
    paper_tables: list[str] = field(default_factory=list)
    kind: str = "accuracy"
    layout: str = "wide"
    rows: list[str] = field(default_factory=lambda: ["dataset", "model", "act", "convert"])
    columns: list[str] = field(default_factory=lambda: ["ANN", "T"])
    T: list[TSpec] = field(default_factory=list)
    value: str = "acc"
    filters: dict = field(default_factory=dict)
    methods: list[RowSpec] = field(default_factory=list)
    reported_rest: bool = True
    embedded: bool = False
    embedded_filters: dict = field(default_factory=default_embedded_filters)
    aliases: dict = field(default_factory=dict)  # row key → {run value (normalised): the paper's value}
    panels: list[str] | None = None
    layer_metric: str = "sin_ratio"
    layer_axis: str = "T"
    plot: bool = True
    strict: bool = False  # a results.csv that cannot be used, or a sweep job without one, is an error

    # -- derived -----------------------------------------------------------------
    @property
    def mapped(self) -> bool:
        """Rows come from a label mapping (paper layout) rather than raw results columns."""
        return bool(self.methods) or self.paper is not None

    @property
    def row_keys(self) -> list[str]:
        return list(self.rows) + (["T"] if self.layout == "long" and "T" not in self.rows else [])

    @property
    def ann_source(self) -> tuple[str, float] | None:
        """(results.csv column, factor) behind the ANN column; None: this table has no ANN column. A long
        layout's ANN column is the ANN's accuracy, whatever it plots."""
        return ANN_COLUMN.get(self.value) if self.layout == "wide" else ("ann_acc", 1.0)

    @property
    def panel_keys(self) -> list[str]:
        if self.panels is not None:
            return list(self.panels)
        if self.kind == "efficiency":  # accuracy vs energy: the nets of one dataset side by side
            return [k for k in ("dataset",) if k in self.rows]
        if self.mapped:
            return [k for k in self.rows if k != LABEL_KEY]
        return [k for k in ("dataset", "model") if k in self.rows]

    def snnx_filters(self) -> dict:
        """Filters on snnx runs: in embedded mode the paper's dataset/model give way to embedded_filters."""
        if not self.embedded:
            return dict(self.filters)
        kept = {k: v for k, v in self.filters.items() if k not in ("dataset", "model")}
        kept.update(self.embedded_filters)
        return kept

    def paper_filters(self) -> dict:
        """Filters on the paper CSV: dataset and model (the CSV's `arch`) from `filters`."""
        return {k: v for k, v in self.filters.items() if k in ("dataset", "model")}

    # -- parsing -----------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "Layout":
        raw = dict(raw)
        name = str(raw.get("name") or "").strip()
        if not name or not re.match(r"^[A-Za-z0-9_.\-]+$", name):
            raise ConfigError(f"the table needs a file-name-safe name, got {name!r}.", key="table.name",
                              fix="Use letters, digits, '-', '_' or '.', e.g. table.name=csqcfs_table1.")
        kind = _choice(raw.get("kind", "accuracy"), KINDS, "table.kind")
        layout = _choice(raw.get("layout", "wide"), LAYOUTS, "table.layout")
        paper = raw.get("paper")
        paper = str(paper).strip() if paper else None
        if kind == "efficiency" and paper:
            raise ConfigError(f"kind=efficiency tabulates snnx runs only; it takes no paper (got {paper!r}).",
                              key="table.paper", fix="Drop table.paper (table.paper=null).")
        rows = _str_list(raw.get("rows") or ["dataset", "model", "act", "convert"], "table.rows")
        methods = [_row_spec(i, m) for i, m in enumerate(raw.get("methods") or [])]
        labels = [m.label for m in methods]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ConfigError(f"row labels must be unique; repeated: {', '.join(dupes)}.", key="table.methods",
                              fix="Give each row its own label.")
        if (methods or paper) and LABEL_KEY not in rows:
            raise ConfigError(f"a paper layout needs '{LABEL_KEY}' among its rows (it holds the row labels), got {rows}.",
                              key="table.rows", fix=f"Use e.g. rows: [dataset, model, {LABEL_KEY}].")
        value = str(raw.get("value") or "acc")
        if value not in PER_T_METRICS:
            raise ConfigError(f"unknown value {value!r}.", key="table.value", fix=f"Use one of: {', '.join(PER_T_METRICS)}.")
        columns = _str_list(raw.get("columns") or (["ANN", "T"] if layout == "wide" else ["acc"]), "table.columns")
        allowed = (set(SUMMARY_COLUMNS) | {"T"}) if layout == "wide" else ({"ANN"} | set(PER_T_METRICS))
        for col in columns:
            if col not in allowed:
                raise ConfigError(f"unknown column {col!r} for layout={layout}.", key="table.columns",
                                  fix=f"Use some of: {', '.join(sorted(allowed))}.")
        if kind == "accuracy" and len(set(columns)) != len(columns):
            raise ConfigError(f"columns repeat: {columns}.", key="table.columns", fix="List each column once.")
        time_steps = [TSpec.parse(t) for t in (raw.get("T") or [])]
        texts = [t.text for t in time_steps]
        if len(set(texts)) != len(texts):
            raise ConfigError(f"time steps repeat: {texts}.", key="table.T", fix="List each T once.")
        # In filters a null value means "no filter on this key" (so table.filters.dataset=null drops one).
        filters = _match_dict(raw.get("filters"), "table.filters", drop_null=True)
        embedded_filters = _match_dict(raw.get("embedded_filters") or default_embedded_filters(), "table.embedded_filters",
                                       drop_null=True)
        aliases = _aliases(raw.get("aliases"), rows)
        panels = raw.get("panels")
        panels = None if panels is None else _str_list(panels, "table.panels", allow_empty=True)
        if panels is not None:
            unknown = [p for p in panels if p not in rows]
            if unknown:
                raise ConfigError(f"panel keys {unknown} are not row keys {rows}.", key="table.panels",
                                  fix="Panels group rows, so pick them from table.rows (or leave table.panels empty).")
        if kind == "efficiency":
            _check_efficiency(raw, layout, value, columns, time_steps, methods)
        title = str(raw.get("title") or name)
        if title == DEFAULT_TITLE and name != DEFAULT_NAME:
            title = name
        return cls(
            name=name, title=title, paper=paper,
            paper_tables=_str_list(raw.get("paper_tables") or [], "table.paper_tables", allow_empty=True),
            kind=kind, layout=layout, rows=rows, columns=columns, T=time_steps, value=value, filters=filters,
            methods=methods, reported_rest=bool(raw.get("reported_rest", True)), embedded=bool(raw.get("embedded", False)),
            embedded_filters=embedded_filters, aliases=aliases, panels=panels,
            layer_metric=_choice(raw.get("layer_metric", "sin_ratio"), LAYER_METRICS, "table.layer_metric"),
            layer_axis=_choice(raw.get("layer_axis", "T"), LAYER_AXES, "table.layer_axis"),
            plot=bool(raw.get("plot", True)), strict=bool(raw.get("strict", False)),
        )


# What a composed `table` config holds for the keys kind=efficiency fixes (TableConfig's defaults, snnx/config.py).
_EFFICIENCY_FIXED = {"columns": ["ANN", "T"], "value": "acc", "layout": "wide"}


def _check_efficiency(raw: Mapping[str, Any], layout: str, value: str, columns: list[str],
                      time_steps: list["TSpec"], methods: list["RowSpec"]) -> None:
    """kind=efficiency lays out its own columns (snnx/tables/efficiency.py): the keys that would pick other ones
    are errors naming them rather than being ignored (table.paper is checked where it is read)."""
    given = {"layout": layout, "value": value, "columns": columns}
    for key, fixed in _EFFICIENCY_FIXED.items():
        if raw.get(key) is not None and given[key] != fixed:
            raise ConfigError(f"kind=efficiency fixes its {key} (accuracy and energy per image of the SNN at each T, "
                              f"its ANN and equal-bit QANN); got {given[key]!r}.", key=f"table.{key}",
                              fix=f"Leave table.{key} out (its default, {fixed!r}).")
    inexact = [t.text for t in time_steps if not t.exact]
    if inexact:
        raise ConfigError(f"kind=efficiency plots the time steps a run simulated; {inexact} is no one time step.",
                          key="table.T", fix="List exact time steps, e.g. table.T=[1,2,4,8], or leave it empty for all.")
    for i, spec in enumerate(methods):
        if spec.ann:
            raise ConfigError(f"row {spec.label!r}: kind=efficiency shows every run's ANN itself (one marker per run).",
                              key=f"table.methods[{i}].ann", fix="Drop ann: true from the row.")


def _choice(value: Any, allowed: tuple[str, ...], key: str) -> str:
    if value not in allowed:
        raise ConfigError(f"unknown value {value!r}.", key=key, fix=f"Use one of: {', '.join(allowed)}.")
    return str(value)


def _str_list(value: Any, key: str, allow_empty: bool = False) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or (not value and not allow_empty):
        raise ConfigError(f"must be a list of names, got {value!r}.", key=key, fix="Write it as a YAML list, e.g. [dataset, model].")
    return [str(v) for v in value]


def _match_dict(value: Any, key: str, drop_null: bool = False) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"must be a mapping of key → value (or list of values), got {value!r}.", key=key,
                          fix="E.g. {dataset: cifar10, model: [vgg16, resnet20], act.L: 4}.")
    out = {}
    for k, v in value.items():
        if v is None and drop_null:
            continue
        if isinstance(v, Mapping):
            raise ConfigError(f"the value of {k!r} is a mapping; it must be a value or a list of values.", key=f"{key}.{k}",
                              fix="Use dotted keys for nested config values, e.g. convert.variant: TS.")
        out[str(k)] = list(v) if isinstance(v, (list, tuple)) else v
    return out


def _aliases(value: Any, rows: list[str]) -> dict:
    if not value:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"must map a row key to {{run value: paper value}}, got {value!r}.", key="table.aliases",
                          fix="E.g. aliases: {model: {vgg16_rathi: vgg16, resnet20_sengupta: resnet20}}.")
    out = {}
    for key, mapping in value.items():
        if key not in rows or key in (LABEL_KEY, "T"):
            raise ConfigError(f"{key!r} is not one of the row keys {[r for r in rows if r != LABEL_KEY]}.",
                              key=f"table.aliases.{key}", fix="Alias the values of a row key such as model.")
        if not isinstance(mapping, Mapping) or any(isinstance(v, (Mapping, list, tuple)) for v in mapping.values()):
            raise ConfigError(f"must map each run value to one paper value, got {mapping!r}.", key=f"table.aliases.{key}",
                              fix="E.g. aliases: {model: {vgg16_rathi: vgg16}}.")
        out[str(key)] = {norm(k): norm(v) for k, v in mapping.items()}
    return out


def _row_spec(index: int, raw: Any) -> RowSpec:
    key = f"table.methods[{index}]"
    if isinstance(raw, str):
        raw = {"label": raw, "paper": {"method": raw}}
    if not isinstance(raw, Mapping) or not raw.get("label"):
        raise ConfigError(f"each row needs a label, got {raw!r}.", key=key,
                          fix="Write rows as {label: QCFS, paper: {method: QCFS}, snnx: {act: qcfs, convert: qcfs}}.")
    unknown = set(raw) - {"label", "paper", "snnx", "note", "ann"}
    if unknown:
        raise ConfigError(f"unknown keys {sorted(unknown)} in row {raw.get('label')!r}.", key=key,
                          fix="A row has label, paper (match on the paper CSV), snnx (match on runs), note and ann.")
    ann = raw.get("ann", False)
    if not isinstance(ann, bool) or (ann and raw.get("snnx") is None):
        raise ConfigError(f"ann must be true or false, and a true one needs an snnx match; got {ann!r} in row "
                          f"{raw.get('label')!r}.", key=f"{key}.ann",
                          fix="Write e.g. {label: ANN, paper: {method: ANN}, snnx: {act: qcfs}, ann: true}.")
    paper = None if raw.get("paper") is None else _match_dict(raw.get("paper"), f"{key}.paper")
    if paper:
        bad = [k for k in paper if k not in PAPER_KEYS]
        if bad:
            raise ConfigError(f"paper match keys {bad} are not paper CSV columns.", key=f"{key}.paper",
                              fix=f"Use some of: {', '.join(PAPER_KEYS)}.")
    snnx = None if raw.get("snnx") is None else _match_dict(raw.get("snnx"), f"{key}.snnx")
    if paper is None and snnx is None:
        raise ConfigError(f"row {raw['label']!r} matches nothing (neither paper nor snnx).", key=key,
                          fix="Give it a paper: {method: ...} match, an snnx: {...} match, or both.")
    return RowSpec(label=str(raw["label"]), paper=paper or None, snnx=snnx, note=str(raw.get("note") or ""), ann=ann)


def norm(value: Any) -> str | None:
    """One comparable text form for config/CSV values: 4 == 4.0 == '4', True == 'true', NaN == None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != value:  # NaN
            return None
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, int):
        return str(value)
    text = str(value).strip()
    if text.lower() in ("true", "false"):
        return text.lower()
    if text.lower() in ("", "nan"):
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return norm(number)


def display(value: Any) -> str | None:
    """:func:`norm` for people: a fractional number to 6 significant digits (0.030000000000000002 → 0.03)."""
    text = norm(value)
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return text if number.is_integer() or not math.isfinite(number) else f"{number:.6g}"


# Percentages (accuracy, and losses in % points) as the papers print them: 2 decimals.
PERCENT_METRICS = ("acc", "ann_acc", "conversion_loss", RELU_LOSS)


def rounded(value: float, metric: str) -> float:
    """``value`` of ``metric`` at the precision it is read at (a sweep's objective, say): percentages to
    2 decimals, other metrics to 6 significant digits; floating-point noise (37.39999999999999) goes."""
    value = float(value)
    if not math.isfinite(value):
        return value
    return round(value, 2) if metric in PERCENT_METRICS else float(f"{value:.6g}")


def ann_line_shown(layout: "Layout") -> bool:
    """Whether the figure draws the ANN's value as a line: only where it is the quantity on the y axis."""
    source = layout.ann_source
    return source is not None and (layout.value == "acc" or source[0] != "ann_acc")


def matches(value: Any, wanted: Any) -> bool:
    options = wanted if isinstance(wanted, list) else [wanted]
    return norm(value) in {norm(o) for o in options}
