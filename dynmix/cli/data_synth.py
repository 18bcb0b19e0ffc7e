"""`dynmix data synth`: write a seeded synthetic market with planted sectors and volatility regimes."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated

import numpy as np
import polars as pl
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from dynmix.cli.common import console, friendly, workspace, writes
from dynmix.cli.data import data_app
from dynmix.data.sources.synthetic import (
    DEFAULT_START,
    INDEX_TICKER,
    SyntheticMarket,
    check_arguments,
    check_writable,
    generate_market,
    write_market,
)
from dynmix.data.sources.synthetic_model import SynthParams
from dynmix.data.store import Store


def summary_table(market: SyntheticMarket, seconds: float) -> Table:
    """Counts a user checks at a glance: size, calendar, late listings, missing rows, regime share."""
    meta = market.meta.filter(market.meta["asset_type"] == "equity")
    dates = market.truth["date"].to_numpy()  # (T,)
    listed = meta["listed"].to_numpy()  # (N,)
    ends = dict(market.prices.group_by("ticker").agg(pl.col("date").max()).iter_rows())
    last = np.array([ends[t] for t in meta["ticker"]], dtype=dates.dtype)  # (N,) last trading day (delistings)
    expected = int((np.searchsorted(dates, last, side="right") - np.searchsorted(dates, listed)).sum())
    companies = market.prices.height - dates.shape[0]
    table = Table(title="synthetic market", header_style="bold", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = [
        ("companies (+ index " + INDEX_TICKER + ")", f"{meta.height:,}"),
        ("sectors", f"{meta['sector'].n_unique():,}"),
        ("business days", f"{dates.shape[0]:,}  ({dates[0]} → {dates[-1]})"),
        ("price rows", f"{market.prices.height:,}"),
        ("late listings", f"{int((listed > dates[0]).sum()):,}"),
        ("delisted before the end", f"{int((last < dates[-1]).sum()):,}"),
        ("missing rows (dropped at random)", f"{expected - companies:,}"),
        ("turbulent days (truth)", f"{(market.truth['regime'].to_numpy() > 0).mean():.1%}"),
        ("seconds", f"{seconds:.1f}"),
    ]
    for what, value in rows:
        table.add_row(what, value)
    return table


@data_app.command("synth")
@friendly
@writes("dynmix data synth")
def synth_cmd(
    tickers: Annotated[int, typer.Option("--tickers", "-n", help="Number of companies.")] = 500,
    sectors: Annotated[int, typer.Option("--sectors", "-k", help="Number of planted sectors.")] = 10,
    years: Annotated[float, typer.Option("--years", "-y", help="Length of the history in years.")] = 10.0,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same seed, same files.")] = 0,
    start: Annotated[datetime, typer.Option(
        "--start", formats=["%Y-%m-%d"], help="First date (rolled to the next business day).")
    ] = datetime.combine(DEFAULT_START, datetime.min.time()),
    regime_sectors: Annotated[bool, typer.Option(
        "--regime-sectors", help="The regime market: when turbulent, sector pairs (0, 1), (2, 3), … share one "
        "factor and market betas rise x1.5 (truth: metadata column stressed_sector).")] = False,
    corr_pairs: Annotated[int, typer.Option(
        "--corr-pairs", min=0, help="Sector pairs (0, 1), (2, 3), … whose factors are correlated (0.6) at all "
        "times.")] = 0,
    crash_at: Annotated[float | None, typer.Option(
        "--crash-at", min=0.0, max=0.99, help="A volatility crash (40 days, market vol 80 %, truth regime 2) "
        "starting at this fraction of the history.", show_default=False)] = None,
    delist_share: Annotated[float, typer.Option(
        "--delist-share", min=0.0, max=0.9, help="Share of companies delisted at a random day in the second "
        "half of the history (10 % list late in any case).")] = 0.0,
    replace: Annotated[bool, typer.Option(
        "--replace", help="Overwrite a store that holds non-synthetic data.")] = False,
) -> None:
    """Write a seeded market with planted sectors, a market factor and volatility regimes into the store.

    The whole store is replaced (prices, metadata, manifest, and the regime ground truth `truth.parquet`).
    Companies are S0001…, the equal-weighted index is ^MKT; each sector has its own beta, sector-factor
    loading, volatility and dynamics, and idiosyncratic volatility (see the metadata columns).
    """
    check_arguments(tickers, sectors, years)
    store = Store(workspace().store)
    check_writable(store, replace)
    t0 = time.perf_counter()
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("generating companies", total=tickers)
        market = generate_market(tickers, sectors, years, seed, start.date(),
                                 params=SynthParams(regime_sectors=regime_sectors, corr_pairs=corr_pairs,
                                                    crash_at=crash_at, delist_share=delist_share),
                                 on_progress=lambda done, total: progress.update(task, completed=done))
        progress.update(task, description="validating and writing prices", completed=tickers)
        write_market(store, market, replace=replace,
                     on_step=lambda msg: progress.update(task, description=msg))
    console.print(summary_table(market, time.perf_counter() - t0))
    console.print(f"[green]✓[/] synthetic market ({market.description}) → {store.root}")
