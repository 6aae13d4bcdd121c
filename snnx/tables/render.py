"""The terminal (rich) view of a table: the CSV's cells, with reported rows dimmed."""

from __future__ import annotations

from rich.table import Table

from snnx.tables.pivot import TableResult


def rich_table(result: TableResult) -> tuple[Table, int]:
    """The table and the width it needs to print without folding cells."""
    frame = result.frame
    table = Table(title=result.title, title_style="bold", show_lines=False, header_style="bold")
    hidden = {"reference"}
    shown = [c for c in frame.columns if c not in hidden and not (c == "setting" and not frame[c].astype(bool).any())]
    if result.layout.kind == "efficiency":  # runs from before the QANN columns: no empty qann_* columns on screen
        shown = [c for c in shown if frame[c].astype(str).str.len().gt(0).any()]
    keys = set(result.layout.row_keys) | {"layer"}
    for col in shown:
        table.add_column("hash" if col == "config_hash" else str(col),
                         justify="left" if col in keys or col in ("source", "setting") else "right", no_wrap=True)
    previous = None
    widths = {col: len("hash" if col == "config_hash" else str(col)) for col in shown}
    for rec in frame.to_dict("records"):
        cells = []
        for col in shown:
            value = str(rec[col])
            if col == "config_hash" and value:
                hashes = value.split()
                value = hashes[0][:8] + (f" +{len(hashes) - 1}" if len(hashes) > 1 else "")
            cells.append(value)
            widths[col] = max(widths[col], len(value))
        group = tuple(rec[k] for k in result.layout.row_keys if k not in ("method", "T", "layer"))
        if previous is not None and group != previous:
            table.add_section()
        previous = group
        table.add_row(*cells, style="dim" if rec.get("source") == "reported" else None)
    needed = sum(widths.values()) + 3 * len(shown) + 1
    return table, max(needed, len(result.title) // 2)
