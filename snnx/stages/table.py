"""Stage `table`: aggregate results.csv files into a table (summary layout for now)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from omegaconf import DictConfig
from rich.table import Table

from snnx.artifacts import write_csv
from snnx.console import console, log
from snnx.errors import SnnxError


def collect_results(root: Path) -> pd.DataFrame:
    files = sorted(root.rglob("results.csv"))
    frames = [pd.read_csv(f) for f in files]
    if not frames:
        raise SnnxError(f"no results.csv under {str(root)!r}.", key="paths.root",
                        fix="Run `snnx run` (or a multirun) first, or point table.sweep_dir / paths.root at its outputs.")
    return pd.concat(frames, ignore_index=True)


def summary(results: pd.DataFrame, rows: list[str], value: str, time_steps: list[int]) -> pd.DataFrame:
    if time_steps:
        results = results[results["T"].isin(time_steps)]
    keys = rows + ["T"]
    grouped = results.groupby(keys, dropna=False)[value].agg(["mean", "std", "count"]).reset_index()
    grouped["cell"] = [f"{m:.2f}" if c == 1 else f"{m:.2f} ± {s:.2f}"
                       for m, s, c in zip(grouped["mean"], grouped["std"], grouped["count"])]
    wide = grouped.pivot_table(index=rows, columns="T", values="cell", aggfunc="first").reset_index()
    wide.columns = [c if isinstance(c, str) else f"T={c}" for c in wide.columns]
    ann = results.groupby(rows, dropna=False)["ann_acc"].mean().reset_index().rename(columns={"ann_acc": "ANN"})
    return ann.merge(wide, on=rows)


def run(cfg: DictConfig) -> dict:
    table_cfg = cfg.table
    root = Path(table_cfg.sweep_dir or cfg.paths.root)
    results = collect_results(root)
    frame = summary(results, list(table_cfg.rows), table_cfg.value, list(table_cfg.T))
    out = Path(cfg.paths.root) / "tables" / f"{table_cfg.name}.csv"
    write_csv(frame, out)
    rich_table = Table(title=table_cfg.title)
    for col in frame.columns:
        rich_table.add_column(str(col))
    for row in frame.itertuples(index=False):
        rich_table.add_row(*[f"{v:.2f}" if isinstance(v, float) else str(v) for v in row])
    console.print(rich_table)
    log(f"table → {out}")
    return {"table": frame, "path": str(out)}
