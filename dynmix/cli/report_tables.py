"""Rich tables of report sections ({row: {column: value}}), best value per column in bold."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from dynmix.runs.report_md import LOWER_IS_BETTER, LOWER_PREFIXES, NO_BEST


def _cell(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e-2 and v != 0 else f"{v:.3f}"
    return str(v)


def section_table(rows: dict[str, Any], title: str, first: str = "method") -> Table:
    """A rich Table of a table-shaped report section (report.md's rule for which end of a column is best)."""
    cols = list(dict.fromkeys(c for r in rows.values() if isinstance(r, dict) for c in r))
    table = Table(title=title, title_justify="left")
    table.add_column(first, no_wrap=True)
    for c in cols:
        table.add_column(c, justify="right")
    best: dict[str, float] = {}
    for c in cols:
        nums = [float(r[c]) for r in rows.values() if isinstance(r, dict) and isinstance(r.get(c), int | float)]
        low = c in LOWER_IS_BETTER or c.startswith(LOWER_PREFIXES)
        if len(nums) > 1 and c not in NO_BEST:
            best[c] = min(nums) if low else max(nums)
    for name, r in rows.items():
        vals = r if isinstance(r, dict) else {}
        table.add_row(name, *[f"[bold]{_cell(vals.get(c))}[/]" if c in best and vals.get(c) == best[c]
                              else _cell(vals.get(c)) for c in cols])
    return table
