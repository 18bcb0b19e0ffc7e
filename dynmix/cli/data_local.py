"""`dynmix data sample | import | status`: the offline sources and the store's coverage."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from dynmix.cli.common import console, err_console, friendly, workspace, writing
from dynmix.cli.data import data_app
from dynmix.data.status import coverage, summary_line
from dynmix.data.store import Store
from dynmix.errors import DataError

HOW_TO_GET_DATA = (
    "  dynmix data sample              20 S&P 500 companies, the index, 5 factor ETFs (offline)\n"
    "  dynmix data import FILE         your own long or wide CSV/Parquet (--meta for sectors)\n"
    "  dynmix data refresh --tickers …  daily prices from Yahoo Finance\n"
    "  dynmix data synth               a synthetic market with planted sectors"
)


def _store() -> Store:
    return Store(workspace().store)


@data_app.command("sample")
@friendly
def sample(
    start: Annotated[str, typer.Option(help="First date kept (YYYY-MM-DD); the sample's prices are rounded, "
                                       "so early years have many zero returns.")] = "2005-01-01",
) -> None:
    """Load the embedded sample (skfolio's S&P 500 subset, the index, 5 factor ETFs) into the store."""
    from dynmix.data.sources.sample import load_sample

    store = _store()
    with writing("dynmix data sample"), console.status("loading the embedded sample …"):
        summary = load_sample(store, start=start)
    console.print(f"[green]✓[/] {summary.line()} → {store.root}")


@data_app.command("import")
@friendly
def import_(
    file: Annotated[Path, typer.Argument(help="Long (date,ticker,close,…) or wide (date + one column per "
                                         "ticker) CSV or Parquet file.", show_default=False)],
    meta: Annotated[Path | None, typer.Option("--meta", help="Metadata CSV: ticker,sector[,industry,name].",
                                              show_default=False)] = None,
    date_format: Annotated[str | None, typer.Option(
        "--date-format", help="strftime pattern of the date column when it is ambiguous, e.g. %d/%m/%Y.",
        show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Read and check everything, say what would change, "
                                          "write nothing.")] = False,
) -> None:
    """Import prices from a CSV or Parquet file (new rows win on ticker and date; rows in any order)."""
    from dynmix.data.sources.csv import import_file

    store = _store()
    with writing(f"dynmix data import {file}") if not dry_run else nullcontext(), \
            console.status(f"{'checking' if dry_run else 'importing'} {file} …"):
        summary = import_file(store, file, meta, date_format=date_format, dry_run=dry_run)
    for note in summary.notes:
        console.print(f"[dim]note:[/] {escape(note)}")
    if dry_run:
        console.print(f"[yellow]dry run[/] {summary.line()} (nothing written to {store.root})")
    else:
        console.print(f"[green]✓[/] {summary.line()} → {store.root}")


def _table(cov: pl.DataFrame, wide: bool) -> Table:
    """Coverage as a rich table; `wide` adds asset type and refresh date (for terminals >= 110 columns)."""
    cols = ["ticker", "sector", *(["type"] * wide), "first", "last", "rows", "missing", "source",
            *(["refreshed"] * wide), "status"]
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, padding=(0, 1, 0, 0))
    for col in cols:
        table.add_column(
            col,
            justify="right" if col in ("rows", "missing") else "left",
            no_wrap=col != "status",
            overflow="fold" if col == "status" else "ellipsis",
            max_width=14 if col == "sector" and not wide else None,
        )
    for r in cov.iter_rows(named=True):
        cells = {
            "ticker": r["ticker"], "sector": r["sector"], "type": r["asset_type"],
            "first": str(r["first_date"] or ""), "last": str(r["last_date"] or ""), "rows": f"{r['rows']:,}",
            "missing": "" if r["missing_days"] is None else f"{r['missing_days']:,}", "source": r["source"] or "",
            "refreshed": r["last_refresh"].strftime("%Y-%m-%d") if r["last_refresh"] else "",
            "status": "[green]ok[/]" if r["status"] == "ok" else f"[red]{r['status']}[/] {r['message']}",
        }
        table.add_row(*[cells[c] for c in cols])
    return table


@data_app.command("status")
@friendly
def status(
    show_all: Annotated[bool, typer.Option("--all", help="List every ticker (default: failures first, "
                                           "then at most --limit rows).")] = False,
    limit: Annotated[int, typer.Option(help="Rows shown without --all.")] = 40,
) -> None:
    """Show what the store holds: coverage, missing days, source and last refresh per ticker."""
    store = _store()
    problems: list[DataError] = []
    cov = coverage(store, problems)
    if cov.height == 0 and not problems:
        console.print(f"The store at {store.root} is empty. Get data with:\n{HOW_TO_GET_DATA}")
        return
    if cov.height == 0:
        _report_damage(problems)
    shown = cov.sort(pl.col("status") == "ok", "ticker")  # failures first
    if not show_all:
        shown = shown.head(limit)
    console.print(_table(shown, wide=console.width >= 110))
    if shown.height < cov.height:
        console.print(f"… {cov.height - shown.height} more tickers (use --all)")
    console.print(summary_line(cov))
    _report_damage(problems)


def _report_damage(problems: list[DataError]) -> None:
    """Print each damaged store file (what it is, what to do) and exit 1; nothing when every file reads."""
    if not problems:
        return
    for e in problems:
        err_console.print(f"[bold red]damaged:[/] {escape(str(e))}", soft_wrap=True)
    err_console.print("the table above shows what the readable files hold")
    raise typer.Exit(1)


@data_app.command("verify")
@friendly
def verify(
    repair: Annotated[bool, typer.Option("--repair", help="Rebuild the manifest from the prices and move damaged "
                                         "manifest or metadata files aside.")] = False,
) -> None:
    """Check the store: every file readable, prices valid and unique, the manifest agreeing with the prices."""
    from dynmix.data.verify import verify_store

    store = _store()
    if repair:
        with writing("dynmix data verify --repair"):
            result = verify_store(store, repair=True)
    else:
        result = verify_store(store)
    for line in result.repaired:
        console.print(f"[green]repaired:[/] {escape(line)}", soft_wrap=True)
    if repair and result.repaired:
        result = verify_store(store)  # what is left after the repair
    if result.ok:
        console.print(f"[green]✓[/] the store at {store.root} verifies")
        return
    for line in result.problems:
        err_console.print(f"[bold red]problem:[/] {escape(line)}", soft_wrap=True)
    if not repair:
        err_console.print("`dynmix data verify --repair` rebuilds the manifest from the prices; damaged prices need "
                          "the data loaded again")
    raise typer.Exit(1)
