"""Paper-style tables from snnx results and the papers' reported numbers.

`layout` (what a conf/table/*.yaml says), `results` (reading results.csv and
what lies beside it), `reported` (the papers' numbers shipped in
snnx/paper_tables/), `pivot` (cells → table), `plot` (PNG figures), `render`
(terminal table), `efficiency` (kind=efficiency: accuracy vs energy per image).
No Hydra here: the `table` stage hands in a plain dict.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from snnx.errors import SnnxError
from snnx.tables.efficiency import build_efficiency_table
from snnx.tables.layout import Layout, TSpec
from snnx.tables.pivot import TableResult, build_layer_table, build_table
from snnx.tables.reported import available_papers, load_paper
from snnx.tables.results import (PendingJobs, SkippedFile, find_results, no_results_error, pending_jobs, read_layers,
                                 read_results, strict_error)


def load_table(layout: Layout, root: str | Path) -> TableResult:
    """Collect every results.csv under ``root`` and lay them out (with the paper's reported rows).

    A results.csv that cannot be used, and each multirun sweep's jobs without one yet, become the first notes
    (or, with ``layout.strict``, a DataError naming them all, before anything is written).
    """
    root = Path(root)
    files = find_results(root) if root.is_dir() else []
    pending = pending_jobs(root)
    reported = load_paper(layout.paper, layout.paper_tables) if layout.paper and layout.kind == "accuracy" else None
    if not files and reported is None:
        if layout.strict and pending:
            raise strict_error(root, [], pending)
        raise no_results_error(root, pending)
    skipped: list[SkippedFile] = []
    results = read_results(files, skipped)
    if layout.strict and (skipped or pending):
        raise strict_error(root, skipped, pending)
    left_out = [s.note for s in skipped] + [p.note for p in pending]
    try:
        result = _lay_out(layout, root, files, results, reported)
    except SnnxError as exc:
        if not skipped:
            raise
        # The table came out empty: say which results.csv files were left out, as they may be why.
        raise type(exc)(f"{exc.problem} {len(skipped)} results.csv file(s) were skipped as unusable: "
                        + "; ".join(f"{s.path}: {s.reason}" for s in skipped) + ".",
                        key=exc.key, fix=exc.fix) from None
    result.notes[:0] = left_out
    return result


def _lay_out(layout: Layout, root: Path, files: list[Path], results: pd.DataFrame,
             reported: pd.DataFrame | None) -> TableResult:
    if layout.kind == "efficiency":
        result = build_efficiency_table(layout, results)
        if not result.rows:
            raise SnnxError(f"the table is empty: none of the {len(files)} run(s) under {str(root)!r} passes the filters "
                            f"{layout.snnx_filters()}" + (" and matches a row of the layout" if layout.mapped else "")
                            + ".", key="table.filters",
                            fix="Loosen table.filters (e.g. table.filters={}), or point table.sweep_dir at other runs.")
        return result
    if layout.kind == "layers":
        result = build_layer_table(layout, results, read_layers)
        if not result.rows:
            raise SnnxError(f"none of the {len(files)} run(s) under {str(root)!r} that pass the filters has a layers.csv "
                            f"with {layout.layer_metric!r}.", key="table.layer_metric",
                            fix="Simulate with sim.record_layers=true (the default), or loosen table.filters.")
        return result

    result = build_table(layout, results, reported if reported is not None else pd.DataFrame())
    if not files:
        result.notes.insert(0, f"no results.csv under {str(root)!r}: only the paper's reported rows are shown")
    if not result.rows:
        raise SnnxError(f"the table is empty: none of the {len(files)} run(s) under {str(root)!r} passes the filters "
                        f"{layout.snnx_filters()} and matches a row of the layout.", key="table.filters",
                        fix="Loosen table.filters (e.g. table.filters={}), or run the configurations this table lists.")
    return result


__all__ = ["Layout", "TSpec", "TableResult", "available_papers", "build_efficiency_table", "build_layer_table",
           "build_table", "find_results",
           "PendingJobs", "SkippedFile", "load_paper", "load_table", "pending_jobs", "read_results"]
