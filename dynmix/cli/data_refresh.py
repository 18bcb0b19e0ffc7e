"""`dynmix data refresh`: incremental daily prices from Yahoo Finance (yfinance) into the store."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dynmix.cli.common import console, err_console, friendly, workspace, writes
from dynmix.cli.data import data_app
from dynmix.data.refresh import RefreshResult, normalise_tickers, read_universe, refresh
from dynmix.data.sources.yahoo import PriceAdapter, YahooAdapter
from dynmix.data.store import Store
from dynmix.errors import DataError
from dynmix.workspace import Workspace

DEFAULT_UNIVERSE = Path(__file__).resolve().parents[2] / "data" / "universes" / "sp500_sample.txt"
SAMPLE_TICKERS = ("AAPL AMD BAC BBY CVX GE HD JNJ JPM KO LLY MRK MSFT PEP PFE PG RRC UNH WMT XOM").split()
DEFAULT_DEADLINE = 900.0  # seconds a refresh may spend downloading
SHOWN = 12  # tickers named per summary row


def make_adapter(ws: Workspace) -> PriceAdapter:
    """The price source of the command (tests replace this function with one returning a fake)."""
    return YahooAdapter(cache_dir=ws.home / "cache" / "yfinance")


def choose_tickers(store: Store, tickers: list[str] | None, universe: Path | None) -> tuple[list[str], str]:
    """The tickers to refresh and where they came from: options, else the store, else the sample universe."""
    chosen: list[str] = []
    for item in tickers or []:
        chosen.extend(normalise_tickers(item.split(",")))
    if tickers is not None and not chosen:  # `--tickers ''` must not quietly mean "every stored ticker"
        raise DataError(f"--tickers {' '.join(repr(t) for t in tickers)}: no ticker given; expected e.g. --tickers "
                        "AAPL,MSFT (leave the option out to refresh the tickers in the store)")
    if universe is not None:
        chosen.extend(read_universe(universe))
    if chosen:
        return list(dict.fromkeys(chosen)), "the command line"
    stored = store.tickers()
    if stored:
        manifest = store.read_manifest()
        synthetic = set(manifest.filter(manifest["source"] == "synthetic")["ticker"].to_list())
        real = [t for t in stored if t not in synthetic]
        if not real:
            raise DataError("the store holds only synthetic tickers: pass --tickers or --universe to download "
                            "real prices (they would mix with the synthetic market)", file=store.root)
        return real, "the store"
    if DEFAULT_UNIVERSE.is_file():
        return read_universe(DEFAULT_UNIVERSE), str(DEFAULT_UNIVERSE)
    return list(SAMPLE_TICKERS), "the embedded sample universe"


def _names(tickers: list[str]) -> str:
    return ", ".join(tickers[:SHOWN]) + (f" … (+{len(tickers) - SHOWN})" if len(tickers) > SHOWN else "")


def summary_table(result: RefreshResult) -> Table:
    table = Table(title="refresh summary", header_style="bold", title_justify="left")
    table.add_column("result")
    table.add_column("tickers", justify="right")
    table.add_column("which")
    rows = [("[green]added[/] (new, full history)", result.added), ("[green]updated[/]", result.updated),
            ("[yellow]re-downloaded[/] (split/dividend changed history)", result.redownloaded),
            ("[red]failed[/] (last good data kept)", list(result.failed))]
    for label, names in rows:
        table.add_row(label, str(len(names)), _names(names))
    return table


def failure_table(result: RefreshResult) -> Table:
    table = Table(title="failed tickers (their last good data is kept)", header_style="bold", title_justify="left")
    table.add_column("ticker")
    table.add_column("reason", overflow="fold")
    for ticker, why in result.failed.items():
        table.add_row(ticker, why)
    return table


@data_app.command("refresh")
@friendly
@writes("dynmix data refresh")
def refresh_cmd(
    tickers: Annotated[list[str] | None, typer.Option(
        "--tickers", "-t", help="Tickers, comma-separated or the option repeated (e.g. AAPL,MSFT).",
        show_default=False)] = None,
    universe: Annotated[Path | None, typer.Option(
        "--universe", "-u", help="Text file with one ticker per line (# comments allowed).",
        show_default=False)] = None,
    start: Annotated[datetime | None, typer.Option(
        "--start", formats=["%Y-%m-%d"], help="First date for tickers new to the store (default 2005-01-01).",
        show_default=False)] = None,
    chunk_size: Annotated[int, typer.Option("--chunk-size", min=1, help="Tickers per request.")] = 50,
    deadline: Annotated[float, typer.Option("--deadline", min=1, help="Seconds the downloads may take in all; "
                                            "what came back by then is kept.")] = DEFAULT_DEADLINE,
) -> None:
    """Download new daily prices from Yahoo Finance; only the missing dates of stored tickers are fetched.

    Default tickers: those in the store, else data/universes/sp500_sample.txt.
    A ticker whose recent history changed (split or dividend) is downloaded again in full.
    Failed tickers keep their last good data and are listed by `dynmix data status`.
    """
    ws = workspace()
    store = Store(ws.store)
    names, origin = choose_tickers(store, tickers, universe)
    console.print(f"refreshing {len(names)} ticker(s) from {origin} → {store.root}")
    result = refresh(store, make_adapter(ws), names, start.date() if start else None, chunk_size=chunk_size,
                     progress=True, deadline=deadline)
    if result.interrupted or result.out_of_time:
        why = "interrupted (Ctrl-C)" if result.interrupted else f"the deadline of {deadline:.0f} s passed"
        kept = result.succeeded
        err_console.print(f"[bold yellow]{why}:[/] kept the prices of {len(kept)} ticker(s)"
                          f"{' (' + _names(kept) + ')' if kept else ''}; {len(result.failed)} not refreshed, their "
                          "last good data kept (see `dynmix data status`)")
        raise typer.Exit(130 if result.interrupted else 1)
    if result.nothing_came_back:
        first = next(iter(result.failed.values()))
        err_console.print(f"[bold red]error:[/] no data came back: are you offline? last good data kept "
                          f"({len(result.failed)} ticker(s) failed; first reason: {first})")
        raise typer.Exit(1)
    console.print(summary_table(result))
    if result.failed:
        console.print(failure_table(result))
    if result.meta_missing:
        console.print(f"[yellow]metadata unavailable for {_names(result.meta_missing)}: sector 'Unknown' "
                      "for now (the next refresh asks again)[/]")
    console.print(f"[green]✓[/] {result.rows:,} price row(s) written, {result.calls} request(s) → {store.root}")
