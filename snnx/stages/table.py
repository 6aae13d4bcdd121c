"""Stage `table`: lay snnx's results.csv files out like a paper's table, beside the paper's numbers.

Reads every results.csv under `table.sweep_dir` (default `paths.root`), keeps
the runs the layout (`conf/table/<name>.yaml`) asks for, and writes
`${paths.root}/tables/<name>.csv` and `<name>.png`; prints the table too. The
layout format and the CSV's columns are described in `snnx/tables/`.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.markup import escape

from snnx.artifacts import write_csv
from snnx.console import console, log
from snnx.tables import Layout, load_table
from snnx.tables.plot import plot_table
from snnx.tables.render import rich_table


def run(cfg: DictConfig) -> dict:
    layout = Layout.from_dict(OmegaConf.to_container(cfg.table, resolve=True))
    root = Path(cfg.table.sweep_dir or cfg.paths.root)
    result = load_table(layout, root)
    out_dir = Path(cfg.paths.root) / "tables"
    csv_path = out_dir / f"{layout.name}.csv"
    write_csv(result.frame, csv_path)
    view, width = rich_table(result)
    # A table wider than the terminal is printed at its own width (the terminal wraps lines) rather than
    # with every cell squeezed to "9…".
    Console(width=max(console.width, width), highlight=False, file=console.file,
            force_terminal=console.is_terminal).print(view)
    for note in result.notes:
        log(f"[yellow]note:[/yellow] {escape(note)}")  # a path may hold [ ], which is not markup
    png_path = plot_table(result, out_dir / f"{layout.name}.png") if layout.plot else None
    log(f"table → {csv_path}" + (f"\nplot  → {png_path}" if png_path else ""))
    return {"table": result.frame, "path": str(csv_path), "png": str(png_path) if png_path else None,
            "result": result}
