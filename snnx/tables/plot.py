"""Figures for a table: accuracy (or the table's value) vs T, per-layer statistics, bars, or accuracy vs energy.

Matplotlib's object API with the Agg canvas only (no pyplot, no global backend
switch), written to a temp file and renamed into place.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from snnx.tables.layout import LABEL_KEY, PER_T_METRICS, TSpec, ann_line_shown
from snnx.tables.pivot import Row, TableResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

YLABELS = {
    "acc": "accuracy (%)",
    "conversion_loss": "conversion loss, ANN − SNN (% points)",
    "spikes_per_neuron": "spikes per neuron",
    "negative_spikes_per_neuron": "negative spikes per neuron",
    "sops": "synaptic operations per image",
    "macs": "MACs per image",
    "energy_mj": "energy per image (mJ)",
    "sin_ratio": "SIN ratio (spiking inactivated neurons)",
    "sin_share": "SIN share (of all the layer's neurons)",
    "firing_rate": "firing rate (spikes / neuron / step)",
    "clip_error": "clipping error",
    "floor_error": "flooring error",
    "ann_error": "error vs ANN activation",
}
# The dashed ANN line's legend entry, per table value that has one (layout.ann_line_shown).
_ANN_LINE = {"acc": "accuracy", "energy_mj": "energy", "macs": "MACs", "macs_m": "MACs"}
_STYLE = {"snnx": dict(linestyle="-", marker="o", markersize=4.5, linewidth=1.8),
          "reported": dict(linestyle=":", marker="s", markersize=5, linewidth=1.6, markerfacecolor="white")}


def _figure(n_panels: int, *, width: float = 5.0, height: float = 3.7, max_cols: int = 3, extra: float = 1.0,
            min_width: float = 0.0):
    # matplotlib is slow to import: only a figure being drawn (table.plot) loads it
    from matplotlib.figure import Figure

    cols = max(1, min(max_cols, n_panels))
    rows = max(1, math.ceil(n_panels / cols))
    fig = Figure(figsize=(max(width * cols, min_width), height * rows + extra), dpi=110)
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(n_panels)]
    return fig, axes, cols


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format="png")
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; a figure is for sharing
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _colors(n: int):
    # matplotlib is slow to import: only a figure being drawn (table.plot) loads it
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _panel_key(row: Row, keys: list[str]) -> tuple:
    return tuple(str(row.keys.get(k, "")) for k in keys)


def _base_label(row: Row, result: TableResult) -> str:
    layout = result.layout
    if layout.mapped:
        return str(row.keys.get(LABEL_KEY, ""))
    parts = [str(row.keys.get(k, "")) for k in layout.rows if k not in layout.panel_keys and k != "T"]
    return " / ".join(p for p in parts if p) or "snnx"


def _line_label(row: Row, result: TableResult) -> str:
    label = _base_label(row, result)
    return f"{label} [{row.setting}]" if row.setting else label


_MARKERS = ["o", "^", "D", "v", "P", "X", "<", ">"]


def _line_styles(rows: list[Row], result: TableResult) -> dict[str, tuple]:
    """line label → (colour, marker): one colour per line, so each setting (act.L=2, convert.alpha=0.03 …)
    and its dashed ANN line can be told apart; the paper's row shares the colour of snnx's row of its label
    when snnx measured one setting there. One marker per snnx setting within a label, too."""
    lines: dict[str, dict[str, Row]] = {}
    for r in rows:
        lines.setdefault(_base_label(r, result), {}).setdefault(_line_label(r, result), r)
    owner: dict[str, str] = {}  # line label → the label whose colour it takes
    for members in lines.values():
        measured = [label for label, r in members.items() if r.source == "snnx"]
        for label, r in members.items():
            owner[label] = measured[0] if r.source == "reported" and len(measured) == 1 else label
    keys = list(dict.fromkeys(owner.values()))
    colours = dict(zip(keys, _colors(len(keys))))
    styles: dict[str, tuple] = {}
    for members in lines.values():
        settings = sorted({r.setting for r in members.values()})
        for label, r in members.items():
            styles[label] = (colours[owner[label]], _MARKERS[settings.index(r.setting) % len(_MARKERS)])
    return styles


def _panel_title(key: tuple, rows: list[Row], result: TableResult) -> str:
    text = " / ".join(k for k in key if k) or "all runs"
    if result.layout.embedded and rows and all(r.source == "snnx" for r in rows):
        text += "  (snnx, embedded scale)"
    elif rows and all(r.source == "reported" for r in rows):
        text += "  (reported only)"
    return text


def _finish(fig, handles, labels, title: str, *, sources: set, ann: str | None) -> None:
    # matplotlib is slow to import: only a figure being drawn (table.plot) loads it
    from matplotlib.lines import Line2D

    style, style_labels = [], []
    if "snnx" in sources:
        style.append(Line2D([], [], color="black", **_STYLE["snnx"]))
        style_labels.append("snnx (measured; band = ±1 std over seeds)")
    if "reported" in sources:
        style.append(Line2D([], [], color="black", **_STYLE["reported"]))
        style_labels.append("reported (paper)")
    if ann:
        style.append(Line2D([], [], color="gray", linestyle="--", linewidth=1.2))
        style_labels.append(f"ANN {ann} (line colour)")
    ncol = _legend_columns(labels, fig.get_figwidth())
    fig_h = fig.get_figheight()
    # Row labels first (one colour each), then a row explaining the line styles.
    leg_rows = math.ceil(len(labels) / ncol)
    style_h = 0.28 / fig_h
    rows_h = (0.24 * leg_rows + 0.1) / fig_h
    legend = fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8.5, frameon=False,
                        bbox_to_anchor=(0.5, style_h))
    fig.add_artist(legend)
    if style:
        fig.legend(style, style_labels, loc="lower center", ncol=len(style), fontsize=8, frameon=False,
                   bbox_to_anchor=(0.5, 0.0))
    fig.suptitle(title, fontsize=11.5)
    fig.tight_layout(rect=(0, min(0.5, style_h + rows_h), 1, 1 - 0.45 / fig_h))


def _legend_column_width(labels: list[str], fontsize: float = 8.5) -> float:
    """Inches one legend column needs: ~0.55 em per character of the longest label, plus the line sample."""
    widest = max((len(label) for label in labels), default=10)
    return widest * fontsize * 0.0075 + 0.6


def _legend_columns(labels: list[str], fig_width: float, fontsize: float = 8.5) -> int:
    """As many legend columns as the longest label lets fit across the figure."""
    return max(1, min(len(labels), int(fig_width * 0.95 // _legend_column_width(labels, fontsize))))


def _series(result: TableResult) -> list[tuple[Row, list[float], list[float], list[float], float | None]]:
    """(row, xs, means, stds, ann) per plotted line."""
    layout = result.layout
    out = []
    if layout.layout == "long":
        value_col = next((c.label for c in result.columns if c.kind == layout.value),
                         next((c.label for c in result.columns if c.kind in PER_T_METRICS), None))
        if value_col is None:
            return []
        lines: dict[tuple, list[Row]] = {}
        for row in result.rows:
            key = (tuple((k, v) for k, v in row.keys.items() if k != "T"), row.source, row.setting)
            lines.setdefault(key, []).append(row)
        for members in lines.values():
            pts = []
            for row in members:
                spec = TSpec.try_parse(row.keys.get("T", ""))
                cell = row.cells.get(value_col)
                if spec and cell:
                    pts.append((spec.x, cell.mean, cell.std))
            pts.sort()
            ann = members[0].cells.get("ANN")
            if pts:
                out.append((members[0], [p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts],
                            ann.mean if ann else None))
        return out
    t_cols = [c for c in result.columns if c.kind == "T"]
    for row in result.rows:
        pts = [(c.x, row.cells[c.label].mean, row.cells[c.label].std) for c in t_cols if c.label in row.cells]
        ann = row.cells.get("ANN")
        if pts:
            out.append((row, [p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts], ann.mean if ann else None))
    return out


def _thin_ticks(xs: list[float], min_gap: float = 0.5) -> list[float]:
    """The panel's own T values as ticks, powers of two first, dropping any closer than ``min_gap``
    (in log2) to one already kept, so printed lengths such as 400-600 and 512 do not overprint."""
    values = sorted({x for x in xs if x > 0})
    power = [x for x in values if float(x).is_integer() and int(x) & (int(x) - 1) == 0]
    kept: list[float] = []
    for x in power + [x for x in values if x not in power]:
        if all(abs(math.log2(x) - math.log2(k)) >= min_gap for k in kept):
            kept.append(x)
    return sorted(kept)


def _ann_lines(ax, lines: list[tuple[float, tuple]]) -> None:
    """Dashed ANN lines, (value, colour) each. Settings that share one ANN (an MSAT α/τ sweep converts the
    same net) would draw on top of each other and show only the last colour: such lines take turns along
    one dash pattern instead, so every colour stays visible."""
    at: dict[float, list] = {}
    for value, colour in lines:
        at.setdefault(round(value, 2), []).append((value, colour))
    for group in at.values():
        n = len(group)
        for i, (value, colour) in enumerate(group):
            dashes = "--" if n == 1 else (4.0 * i, (4.0, 4.0 * (n - 1)))
            ax.axhline(value, color=colour, linestyle=dashes, linewidth=1.0 if n == 1 else 1.4, alpha=0.8)


def draw_lines(result: TableResult) -> Figure | None:
    layout = result.layout
    series = _series(result)
    if not series:
        return None
    panel_keys = layout.panel_keys
    panels: dict[tuple, list] = {}
    for item in series:
        panels.setdefault(_panel_key(item[0], panel_keys), []).append(item)
    line_labels = list(dict.fromkeys(_line_label(item[0], result) for item in series))
    styles = _line_styles([item[0] for item in series], result)
    cols_guess = max(1, min(3, len(panels)))
    min_width = min(16.0, _legend_column_width(line_labels) / 0.95 + 0.2)
    legend_rows = math.ceil(len(line_labels) / _legend_columns(line_labels, max(5.0 * cols_guess, min_width)))
    fig, axes, _ = _figure(len(panels), extra=0.9 + 0.24 * legend_rows + 0.3, min_width=min_width)
    ticks: dict[float, str] = {}
    if layout.layout == "long":
        for row in result.rows:
            spec = TSpec.try_parse(row.keys.get("T", ""))
            if spec:
                ticks[spec.x] = spec.text.replace(">=", "≥")
    else:
        ticks = {c.x: c.spec.text.replace(">=", "≥") for c in result.columns if c.kind == "T"}
    show_ann = ann_line_shown(layout)
    for ax, (key, items) in zip(axes, panels.items()):
        drawn_ann, ann_lines = set(), []
        for row, xs, ys, stds, ann in items:
            label = _line_label(row, result)
            c, marker = styles[label]
            style = dict(_STYLE[row.source])
            if row.source == "snnx":
                style["marker"] = marker
            ax.plot(xs, ys, color=c, **style)
            if row.source == "snnx" and any(not math.isnan(s) for s in stds):
                lo = [y - (0 if math.isnan(s) else s) for y, s in zip(ys, stds)]
                hi = [y + (0 if math.isnan(s) else s) for y, s in zip(ys, stds)]
                ax.fill_between(xs, lo, hi, color=c, alpha=0.15, linewidth=0)
            if show_ann and ann is not None and (label, round(ann, 2)) not in drawn_ann:
                drawn_ann.add((label, round(ann, 2)))
                ann_lines.append((ann, c))
        _ann_lines(ax, ann_lines)
        xs_all = sorted({x for _, xs, *_ in items for x in xs})
        ax.set_xscale("log", base=2)
        shown = _thin_ticks(xs_all)
        ax.set_xticks(shown)
        ax.set_xticklabels([ticks.get(x, f"{x:g}") for x in shown], fontsize=8.5)
        ax.minorticks_off()
        if len(shown) == 1:
            ax.set_xlim(shown[0] / 1.6, shown[0] * 1.6)
        ax.set_xlabel("time steps T (log scale)", fontsize=9)
        ax.set_ylabel(YLABELS.get(layout.value, layout.value), fontsize=9)
        ax.set_title(_panel_title(key, [i[0] for i in items], result), fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=8.5)
    # matplotlib is slow to import: only a figure being drawn (table.plot) loads it
    from matplotlib.lines import Line2D

    with_setting = {_line_label(i[0], result) for i in series if i[0].setting}
    handles = [Line2D([], [], color=styles[label][0], linewidth=2.2,
                      marker=styles[label][1] if label in with_setting else None, markersize=5) for label in line_labels]
    has_ann = show_ann and any(i[4] is not None for i in series)
    _finish(fig, handles, line_labels, result.title, sources={i[0].source for i in series},
            ann=_ANN_LINE.get(layout.value, layout.value) if has_ann else None)
    return fig


def draw_bars(result: TableResult) -> Figure | None:
    """Tables without T columns (all-int Tables 1/3, CS-QCFS Table 5): one bar panel per group and column."""
    layout = result.layout
    value_cols = [c for c in result.columns if c.kind != "ANN"] or list(result.columns)
    groups: dict[tuple, list[Row]] = {}
    for row in result.rows:
        groups.setdefault(_panel_key(row, layout.panel_keys), []).append(row)
    panels = [(key, col, [r for r in rows if col.label in r.cells]) for key, rows in groups.items() for col in value_cols]
    panels = [p for p in panels if p[2]]
    if not panels:
        return None
    styles = _line_styles([r for _, _, rows in panels for r in rows], result)
    n_bars = max(len(rows) for *_, rows in panels)
    fig, axes, _ = _figure(len(panels), width=5.6, height=max(2.6, 0.32 * n_bars + 1.2), max_cols=2)
    for ax, (key, col, rows) in zip(axes, panels):
        names = [f"{_line_label(r, result)} ({'snnx' if r.source == 'snnx' else 'rep.'})" for r in rows]
        means = [r.cells[col.label].mean for r in rows]
        errs = [0 if math.isnan(r.cells[col.label].std) else r.cells[col.label].std for r in rows]
        ys = list(range(len(rows)))[::-1]
        for y, r, m, e in zip(ys, rows, means, errs):
            c = styles[_line_label(r, result)][0]
            ax.barh(y, m, xerr=e or None, color=c if r.source == "snnx" else "white", edgecolor=c,
                    hatch=None if r.source == "snnx" else "///", linewidth=1.2)
            ax.text(m, y, f" {r.cells[col.label].text}", va="center", fontsize=7.5)
        ax.set_yticks(ys)
        ax.set_yticklabels(names, fontsize=7.5)
        finite = [m for m in means if not math.isnan(m)]
        if finite and col.kind in ("ANN", "final acc", "SNN best") and min(finite) > 50:
            ax.set_xlim(min(finite) - 2, min(100.0, max(finite) + 1.0) if max(finite) <= 100 else max(finite) + 1.0)
        else:
            ax.set_xlim(0, (max(finite) if finite else 1) * 1.25)
        ax.set_xlabel(col.label, fontsize=9)
        ax.set_title(_panel_title(key, rows, result), fontsize=10)
        ax.grid(True, axis="x", alpha=0.3)
    # matplotlib is slow to import: only a figure being drawn (table.plot) loads it
    from matplotlib.patches import Patch

    handles = [Patch(facecolor="lightgray", edgecolor="gray"), Patch(facecolor="white", edgecolor="gray", hatch="///")]
    fig.legend(handles, ["snnx (measured)", "reported (paper)"], loc="lower center", ncol=2, fontsize=8.5, frameon=False)
    fig.suptitle(result.title, fontsize=11.5)
    fig_h = fig.get_figheight()
    fig.tight_layout(rect=(0, 0.45 / fig_h, 1, 1 - 0.5 / fig_h))
    return fig


def draw_layers(result: TableResult) -> Figure | None:
    """Per-layer statistic: one panel per setting; lines per layer vs T, or per T across layers."""
    # matplotlib is slow to import: only a figure being drawn (table.plot) loads it
    from matplotlib import colormaps

    layout = result.layout
    metric = layout.layer_metric
    panels: dict[tuple, list[Row]] = {}
    for row in result.rows:
        key = tuple(str(row.keys.get(k, "")) for k in layout.rows if k != "layer") + ((row.setting,) if row.setting else ())
        panels.setdefault(key, []).append(row)
    if not panels:
        return None
    fig, axes, _ = _figure(len(panels), width=5.4, height=3.9, extra=0.4)
    cmap = colormaps["viridis"]
    for ax, (key, rows) in zip(axes, panels.items()):
        rows = sorted(rows, key=lambda r: r.order)
        if layout.layer_axis == "T":
            for i, row in enumerate(rows):
                pts = [(c.x, row.cells[c.label].mean) for c in result.columns if c.label in row.cells]
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3.5, linewidth=1.5,
                        color=cmap(i / max(1, len(rows) - 1) * 0.9), label=str(row.keys.get("layer")))
            ax.set_xscale("log", base=2)
            xs = sorted({c.x for c in result.columns})
            ax.set_xticks(xs)
            ax.set_xticklabels([f"{x:g}" for x in xs], fontsize=8.5)
            ax.minorticks_off()
            ax.set_xlabel("time steps T (log scale)", fontsize=9)
        else:
            cols_t = [c for c in result.columns]
            for j, col in enumerate(cols_t):
                pts = [(i, r.cells[col.label].mean) for i, r in enumerate(rows) if col.label in r.cells]
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3.5, linewidth=1.5,
                            color=cmap(j / max(1, len(cols_t) - 1) * 0.9), label=col.label)
            ax.set_xticks(range(len(rows)))
            ax.set_xticklabels([str(r.keys.get("layer")) for r in rows], rotation=45, ha="right", fontsize=7.5)
            ax.set_xlabel("layer", fontsize=9)
        ax.set_ylabel(YLABELS.get(metric, metric), fontsize=9)
        ax.set_title(" / ".join(k for k in key if k), fontsize=10)
        ax.grid(True, alpha=0.3)
        n_entries = len(ax.get_lines())
        ax.legend(fontsize=7 if n_entries <= 8 else 6.5, ncol=2 if n_entries > 8 else 1, loc="best",
                  framealpha=0.75, edgecolor="none")
    fig.suptitle(result.title, fontsize=11.5)
    fig_h = fig.get_figheight()
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / fig_h))
    return fig


def _point_labels(steps: list[int], limit: int = 6) -> set[int]:
    """Which points of an SNN line carry their T: all of up to ``limit``; else the ends and the powers of two
    spread out along the line (at most ``limit`` in all), so labels of a dense T sweep do not overprint."""
    if len(steps) <= limit:
        return set(steps)
    kept = {steps[0], steps[-1]}
    inner = [t for t in _thin_ticks([float(t) for t in steps[1:-1]], min_gap=1.0)
             if abs(math.log2(t) - math.log2(steps[0])) >= 1.0 and abs(math.log2(t) - math.log2(steps[-1])) >= 1.0]
    step = max(1, math.ceil(len(inner) / max(1, limit - 2)))
    return kept | {int(t) for t in inner[::step]}


def _energy_ticks(ax, energies: list[float]) -> None:
    """Plain-number ticks on the log energy axis: each decade's 1, 2 and 5 when the panel spans two decades or
    less (matplotlib would label the minor ticks, overprinting), the decades alone beyond that."""
    # matplotlib is slow to import: only a figure being drawn (table.plot) loads it
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    energies = [e for e in energies if e > 0]
    if not energies:
        return
    decades = math.log10(max(energies)) - math.log10(min(energies))
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if decades <= 2 else (1.0,)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _repeat_scale(drawn: dict, kind: str, points) -> float:
    """Runs that convert one ANN share its ANN and QANN points: each repeat is drawn smaller, on top, so the
    points show as concentric markers in every run's colour instead of the last run's alone."""
    keys = [(kind, round(math.log10(p[0]), 3), round(p[1], 2)) for p in points]
    repeat = max(drawn.get(k, 0) for k in keys)
    for k in keys:
        drawn[k] = drawn.get(k, 0) + 1
    return max(0.35, 1.0 - 0.22 * repeat)


def _place_labels(ax, wanted: list[tuple], style: dict) -> None:
    """Point labels, line ends first, leaving out any that would sit on one already placed (closer than about
    a label's size, measured in the panel's log-x / linear-y data span)."""
    if not wanted:
        return
    xs = [math.log10(w[1]) for w in wanted]
    ys = [w[2] for w in wanted]
    x_span = max(max(xs) - min(xs), 0.3)
    y_span = max(max(ys) - min(ys), 1.0)
    placed: list[tuple[float, float, tuple]] = []
    for priority, e, a, label, offset, colour in sorted(wanted, key=lambda w: w[0]):
        x, y = math.log10(e), a
        if any(abs(x - px) < 0.06 * x_span and abs(y - py) < 0.035 * y_span and offset == po for px, py, po in placed):
            continue
        placed.append((x, y, offset))
        ax.annotate(label, (e, a), xytext=offset, color=colour, **style)


def _efficiency_label(series, panel_keys: list[str]) -> str:
    parts = [str(v) for k, v in series.keys.items() if k not in panel_keys and v not in ("", None)]
    label = " / ".join(parts) or "snnx"
    return f"{label} [{series.setting}]" if series.setting else label


def draw_efficiency(result: TableResult) -> Figure | None:
    """kind=efficiency: accuracy (%) vs energy per image (mJ, log scale), one colour per run: its SNN as a line
    through its T points (labelled with T), its ANN as a star, its equal-bit QANN points as hollow squares
    joined by a dashed line (labelled with their bits). One panel per energy model × panel key."""
    # matplotlib is slow to import: only a figure being drawn (table.plot) loads it
    from matplotlib.lines import Line2D

    layout = result.layout
    panel_keys = [k for k in layout.panel_keys if k not in ("energy_model", "T")]
    runs = [s for s in result.runs if any(e > 0 for _, e, _ in s.snn) or (s.ann and s.ann[0] > 0)]
    if not runs:
        return None
    models = sorted({s.energy_model for s in runs})
    panels: dict[tuple, list] = {}
    for s in sorted(runs, key=lambda s: models.index(s.energy_model)):
        panels.setdefault((s.energy_model, *(str(s.keys.get(k, "")) for k in panel_keys)), []).append(s)
    labels = list(dict.fromkeys(_efficiency_label(s, panel_keys) for s in runs))
    colours = dict(zip(labels, _colors(len(labels))))
    n_cols = max(1, min(2, len(panels)))
    min_width = min(16.0, _legend_column_width(labels) / 0.95 + 0.2)
    legend_rows = math.ceil(len(labels) / _legend_columns(labels, max(6.4 * n_cols, min_width)))
    fig, axes, _ = _figure(len(panels), width=6.4, height=4.8, max_cols=2, extra=0.9 + 0.24 * legend_rows + 0.3,
                           min_width=min_width)
    text = dict(fontsize=7, textcoords="offset points", clip_on=True)
    for ax, (key, members) in zip(axes, panels.items()):
        model, *rest = key
        labels_wanted = []  # (priority, energy, accuracy, text, offset, colour): placed after every line is drawn
        drawn: dict = {}  # ANN / QANN points already drawn in this panel → how many times
        for s in members:
            c = colours[_efficiency_label(s, panel_keys)]
            snn = [(T, e, a) for T, e, a in s.snn if e > 0]
            if snn:
                ax.plot([e for _, e, _ in snn], [a for *_, a in snn], color=c, **_EFF_STYLE["SNN"])
                shown = _point_labels([T for T, *_ in snn])
                for i, (T, e, a) in enumerate(snn):
                    if T in shown:
                        labels_wanted.append((0 if i in (0, len(snn) - 1) else 1, e, a, f"T={T}", (4, -9), c))
            qann: dict = {}
            for T, e, a, bits in s.qann:  # T that share a bit width share a QANN: one point each
                if e > 0:
                    qann.setdefault((bits, round(e, 12), round(a, 4)), (e, a, bits))
            if qann:
                points = sorted(qann.values(), key=lambda p: p[0])
                size = _EFF_STYLE["QANN"]["markersize"] * _repeat_scale(drawn, "QANN", points)
                ax.plot([p[0] for p in points], [p[1] for p in points], color=c, **{**_EFF_STYLE["QANN"], "markersize": size})
                for i, (e, a, bits) in enumerate(points):
                    if bits is not None:
                        labels_wanted.append((0 if i in (0, len(points) - 1) else 1, e, a, f"{bits}b", (4, 4), c))
            if s.ann and s.ann[0] > 0:
                size = _EFF_STYLE["ANN"]["markersize"] * _repeat_scale(drawn, "ANN", [s.ann])
                ax.plot([s.ann[0]], [s.ann[1]], color=c, **{**_EFF_STYLE["ANN"], "markersize": size})
        _place_labels(ax, labels_wanted, text)
        ax.set_xscale("log")
        _energy_ticks(ax, [w[1] for w in labels_wanted] + [s.ann[0] for s in members if s.ann and s.ann[0] > 0]
                      + [e for s in members for _, e, _ in s.snn if e > 0])
        ax.set_xlabel(f"energy per image (mJ, log scale), energy={model}", fontsize=9)
        ax.set_ylabel("accuracy (%)", fontsize=9)
        title = " / ".join(k for k in rest if k) or "all runs"
        ax.set_title(f"{title}  (energy={model})" if len(models) > 1 else title, fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        ax.grid(True, which="minor", alpha=0.1)
        ax.tick_params(labelsize=8.5)
        ax.margins(x=0.08, y=0.06)
    handles = [Line2D([], [], color=colours[label], linewidth=2.2) for label in labels]
    styles = [Line2D([], [], color="black", **_EFF_STYLE["SNN"]), Line2D([], [], color="black", **_EFF_STYLE["ANN"])]
    style_labels = ["SNN (points: T)", "ANN"]
    if any(s.qann for s in runs):
        styles.append(Line2D([], [], color="black", **_EFF_STYLE["QANN"]))
        style_labels.append("equal-bit QANN (points: activation bits)")
    ncol = _legend_columns(labels, fig.get_figwidth())
    fig_h = fig.get_figheight()
    style_h = 0.28 / fig_h
    rows_h = (0.24 * math.ceil(len(labels) / ncol) + 0.1) / fig_h
    fig.add_artist(fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8.5, frameon=False,
                              bbox_to_anchor=(0.5, style_h)))
    fig.legend(styles, style_labels, loc="lower center", ncol=len(styles), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    fig.suptitle(result.title, fontsize=11.5)
    fig.tight_layout(rect=(0, min(0.5, style_h + rows_h), 1, 1 - 0.45 / fig_h))
    return fig


_EFF_STYLE = {"SNN": dict(linestyle="-", marker="o", markersize=4.5, linewidth=1.8),
              "QANN": dict(linestyle="--", marker="s", markersize=6, linewidth=1.2, markerfacecolor="white",
                           markeredgewidth=1.4),
              "ANN": dict(linestyle="none", marker="*", markersize=14, markeredgecolor="black", markeredgewidth=0.6)}


def draw_table(result: TableResult) -> Figure | None:
    """The matplotlib Figure that fits the table's kind; None when there is nothing to draw."""
    if result.layout.kind == "efficiency":
        return draw_efficiency(result)
    if result.layout.kind == "layers":
        return draw_layers(result)
    has_t = result.layout.layout == "long" or any(c.kind == "T" for c in result.columns)
    return draw_lines(result) if has_t else draw_bars(result)


def plot_table(result: TableResult, path: Path) -> Path | None:
    """The table's figure (draw_table) as a PNG at ``path``; None when there is nothing to draw."""
    fig = draw_table(result)
    return None if fig is None else _save(fig, path)
