"""The papers' reported numbers, shipped with snnx as package data (snnx/paper_tables/*.csv).

One tidy CSV per paper: `paper,table,dataset,arch,method,variant,T,metric,value,note`,
one printed table cell per row (see snnx/paper_tables/README.md). Values are
kept as printed text (so "95.50" stays "95.50"); `number` holds them as floats.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

import pandas as pd

from snnx.errors import ConfigError

COLUMNS = ["paper", "table", "dataset", "arch", "method", "variant", "T", "metric", "value", "note"]


def available_papers() -> list[str]:
    root = files("snnx") / "paper_tables"
    return sorted(p.name[:-4] for p in root.iterdir() if p.name.endswith(".csv"))


@lru_cache(maxsize=None)
def _load(paper: str) -> pd.DataFrame:
    resource = files("snnx") / "paper_tables" / f"{paper}.csv"
    with resource.open("r", encoding="utf-8") as handle:
        frame = pd.read_csv(handle, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:  # a packaging error, not a user error
        raise RuntimeError(f"snnx/paper_tables/{paper}.csv lacks columns {missing}")
    frame = frame[COLUMNS].copy()
    for col in COLUMNS:
        frame[col] = frame[col].astype(str).str.strip()
    frame["model"] = frame["arch"]
    frame["number"] = pd.to_numeric(frame["value"], errors="coerce")
    frame["order"] = range(len(frame))
    return frame


def load_paper(paper: str, tables: list[str] | None = None) -> pd.DataFrame:
    """The reported cells of ``paper`` (optionally only some of its tables), in printed order."""
    papers = available_papers()
    if paper not in papers:
        raise ConfigError(f"no reported numbers for paper {paper!r}.", key="table.paper",
                          fix=f"Use one of: {', '.join(papers)} (or leave table.paper empty for snnx rows only).")
    frame = _load(paper)
    if tables:
        known = list(dict.fromkeys(frame["table"]))
        unknown = [t for t in tables if t not in known]
        if unknown:
            raise ConfigError(f"paper {paper!r} has no {', '.join(repr(t) for t in unknown)}.", key="table.paper_tables",
                              fix=f"Its tables are: {', '.join(known)}.")
        frame = frame[frame["table"].isin(tables)]
    return frame.copy()
