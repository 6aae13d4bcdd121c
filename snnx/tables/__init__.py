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
from snnx.tables.results import find_results, no_results_error, read_layers, read_results


def load_table(layout: Layout, root: str | Path) -> TableResult:
    """Collect every results.csv under ``root`` and lay them out (with the paper's reported rows)."""
    root = Path(root)
    files = find_results(root) if root.is_dir() else []
    reported = load_paper(layout.paper, layout.paper_tables) if layout.paper and layout.kind == "accuracy" else None
    if not files and reported is None:
        raise no_results_error(root)
    results = read_results(files)
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
           "load_paper", "load_table", "read_results"]
