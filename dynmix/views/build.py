"""`build_views`: the store -> HOME/views/ (explicit.parquet, returns.parquet, market.parquet, views.json).

The on-disk format is documented in dynmix/views/tensors.py. Every file is written atomically and the
build is idempotent: the same store gives the same Parquet content. Rows are sorted by (ticker, date)
(market by date), every date is on the grid = the equities' trading dates from `ViewsConfig.start` on.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl
import pyarrow.parquet as pq
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from dynmix.config import ViewsConfig
from dynmix.data.store import Store
from dynmix.errors import DynMIXError
from dynmix.io import atomic_write, write_json, write_parquet
from dynmix.views import explicit as ex
from dynmix.views.implicit import add_returns, date_grid, implicit_view, on_grid
from dynmix.views.market import MarketSource, choose_market, market_frame

CHANNELS = ["ret_scaled", "mkt_scaled"]
ENGINE: Final = "in-memory"  # polars' streaming engine sums floats in a varying order: the views must be reproducible
CHUNK_ROWS = 2_000_000  # company-days per feature chunk: bounds the memory of the rolling moments


@dataclass(frozen=True)
class ViewsSummary:
    views_dir: Path
    n_tickers: int  # N: equities with a view
    n_dates: int  # T: grid dates
    feature_names: list[str]  # F
    first_date: dt.date
    last_date: dt.date
    market_source: str  # market ticker, or "equal-weight"
    seconds: float


@contextmanager
def _steps(progress: bool) -> Iterator[Progress]:
    cols = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*cols, disable=not progress) as bar:
        yield bar


def _start(cfg: ViewsConfig) -> dt.date | None:
    if cfg.start is None:
        return None
    try:
        return dt.date.fromisoformat(cfg.start)
    except ValueError as e:
        raise DynMIXError(f"views.start = {cfg.start!r}: expected a date YYYY-MM-DD") from e


def ticker_chunks(panel: pl.DataFrame, rows: int) -> list[tuple[int, int]]:
    """(offset, length) row slices of a ticker-sorted `panel`, each of whole tickers and about `rows` rows."""
    firsts = panel.select((pl.col("ticker") != pl.col("ticker").shift()).fill_null(True).arg_true())
    starts = firsts.to_series().to_numpy()  # (N,) first row of each ticker
    cuts = starts[np.r_[True, np.diff(starts // rows) > 0]]
    ends = np.r_[cuts[1:], panel.height]
    return [(int(a), int(b - a)) for a, b in zip(cuts, ends, strict=True)]


def write_parquet_chunks(frames: Iterable[pl.DataFrame], path: Path) -> None:
    """Write frames of one schema as the row groups of one Parquet file, atomically (zstd like io.write_parquet)."""

    def write(tmp: Path) -> None:
        writer: pq.ParquetWriter | None = None
        try:
            for df in frames:
                table = df.to_arrow()
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema, compression="zstd", use_dictionary=["ticker"])
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            raise DynMIXError(f"{path}: no rows to write")

    atomic_write(path, write)


@dataclass(frozen=True)
class _Plan:
    """What a build will do, checked before any heavy work."""

    equities: list[str]  # N companies (asset_type equity)
    etfs: list[str]  # factor ETFs (asset_type etf)
    source: MarketSource
    grid: pl.DataFrame  # date, gidx: the equities' trading days, including the warm-up before `start`
    in_range: pl.Expr  # the output dates: from ViewsConfig.start on
    sectors: pl.DataFrame  # ticker, sector of the equities
    sector_cols: dict[str, str]

    @property
    def core(self) -> list[str]:
        return list(ex.CORE_FEATURES)

    @property
    def optional(self) -> list[str]:
        return [ex.LIQUIDITY, *(ex.etf_feature(e) for e in self.etfs)]

    @property
    def features(self) -> list[str]:
        return [*self.core, *self.optional, *self.sector_cols.values()]


def _plan(store: Store, cfg: ViewsConfig) -> _Plan:
    if not store.exists():
        raise DynMIXError(f"the store {store.root} is empty: run `dynmix data sample` first (or `dynmix data import`)")
    if cfg.window < 1 or not 1 <= cfg.min_window_obs <= cfg.window:
        raise DynMIXError(f"views.window = {cfg.window}, min_window_obs = {cfg.min_window_obs}: "
                          "expected window >= 1 and 1 <= min_window_obs <= window")
    meta = store.meta_for_prices()
    equities = sorted(meta.filter(pl.col("asset_type") == "equity")["ticker"].to_list())
    if not equities:
        raise DynMIXError(f"the store {store.root} holds no equities (metadata asset_type 'equity'): nothing to embed")
    start = _start(cfg)
    grid = date_grid(store.scan_prices().filter(pl.col("ticker").is_in(equities))).collect(engine=ENGINE)
    in_range = (pl.col("date") >= start) if start is not None else pl.lit(True)
    n_out = grid.filter(in_range).height
    if n_out < cfg.window:
        raise DynMIXError(
            f"the store has {n_out} trading days from {cfg.start or 'its start'} on: expected at least "
            f"views.window = {cfg.window} (import a longer history or set an earlier views.start)"
        )
    sectors = meta.filter(pl.col("ticker").is_in(equities)).select("ticker", "sector")
    return _Plan(
        equities=equities,
        etfs=sorted(meta.filter(pl.col("asset_type") == "etf")["ticker"].to_list()),
        source=choose_market(meta, set(meta["ticker"].to_list()), cfg.market_ticker),
        grid=grid,
        in_range=in_range,
        sectors=sectors,
        sector_cols=ex.sector_columns(sectors["sector"].to_list()),
    )


def _views_json(plan: _Plan, cfg: ViewsConfig, n_tickers: int, market: pl.DataFrame) -> dict[str, object]:
    return {
        "feature_names": plan.features,
        "core_features": plan.core,
        "optional_features": plan.optional,
        "channels": CHANNELS,
        "window": cfg.window,
        "min_window_obs": cfg.min_window_obs,
        "market_source": plan.source.describe(),
        "market_kind": plan.source.kind,
        "vol_scale_window": cfg.vol_scale_window,
        "market_vol_window": cfg.market_vol_window,
        "start": cfg.start,
        "n_tickers": n_tickers,
        "n_dates": market.height,
        "first_date": market["date"][0].isoformat(),
        "last_date": market["date"][-1].isoformat(),
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def build_views(store: Store, views_dir: Path, cfg: ViewsConfig, progress: bool = True) -> ViewsSummary:
    """Build both company views from the store and write them under `views_dir` (views.json last).

    Work goes by chunks of whole tickers (about CHUNK_ROWS company-days each), so memory stays bounded:
    returns on the grid per chunk -> the market -> per chunk the raw explicit features (kept) and the implicit
    view (written) -> cross-sectional statistics -> per chunk the standardised explicit view (written).
    """
    t0 = time.perf_counter()
    plan = _plan(store, cfg)
    wanted = sorted({*plan.equities, *plan.etfs, *([plan.source.ticker] if plan.source.ticker else [])})
    guard = max(ex.LONGEST_WINDOW, cfg.vol_scale_window)  # null rows between tickers >= every trailing window
    names, live = plan.core + plan.optional, pl.col("live") & plan.in_range
    views_dir.mkdir(parents=True, exist_ok=True)
    with _steps(progress) as bar:
        task = bar.add_task(f"returns on the grid ({len(wanted)} tickers x {plan.grid.height} days)", total=None)
        prices = store.scan_prices().filter(pl.col("ticker").is_in(wanted)).select(
            "ticker", "date", "close", "adj_close", "volume").collect(engine=ENGINE)
        if not prices["ticker"].is_sorted():  # the store keeps (ticker, date) order; chunks need whole tickers
            prices = prices.sort("ticker", "date")
        panels = [
            add_returns(on_grid(prices.slice(o, n).lazy(), plan.grid, guard))
            .select("ticker", "gidx", "date", "live", "ret", "lp_ff", ex.dollar_volume())
            .collect(engine=ENGINE)
            for o, n in ticker_chunks(prices, CHUNK_ROWS)
        ]
        del prices
        everyone = pl.concat([p.lazy() for p in panels])
        market = market_frame(everyone, plan.grid.lazy(), plan.equities, plan.source, cfg.vol_scale_window,
                              cfg.market_vol_window).collect(engine=ENGINE)
        factors = ex.factor_returns(market.lazy(), everyone, plan.etfs).collect(engine=ENGINE)
        bar.update(task, description=f"features ({len(plan.equities)} equities)", total=2 * len(panels) + 1)
        raw: list[pl.DataFrame] = []  # per chunk: unstandardised explicit features of the output rows
        sums: list[pl.DataFrame] = []  # per chunk: their partial cross-sectional sums

        def implicit_chunks() -> Iterator[pl.DataFrame]:  # pass 1: raw features kept, implicit view written
            while panels:
                eq = panels.pop(0).lazy().filter(pl.col("ticker").is_in(plan.equities))
                raw.append(ex.raw_features(eq, factors.lazy(), plan.etfs).filter(live).drop("live")
                           .collect(engine=ENGINE))
                sums.append(ex.partial_sums(raw[-1].lazy(), names).collect(engine=ENGINE))
                bar.advance(task)
                yield implicit_view(eq, cfg.vol_scale_window).filter(plan.in_range).collect(engine=ENGINE)

        def explicit_chunks() -> Iterator[pl.DataFrame]:  # pass 2: standardised against the whole cross-section
            while raw:
                std = ex.standardise(raw.pop(0).lazy(), stats, plan.core, plan.optional)
                yield ex.sector_onehot(std, plan.sectors, plan.sector_cols).select(
                    "date", "ticker", *plan.features).collect(engine=ENGINE)
                bar.advance(task)

        write_parquet_chunks(implicit_chunks(), views_dir / "returns.parquet")
        n_tickers = sum(part["ticker"].n_unique() for part in raw)  # chunks hold whole tickers
        stats = ex.cross_section_stats(pl.concat(sums).lazy(), names).collect(engine=ENGINE)
        write_parquet_chunks(explicit_chunks(), views_dir / "explicit.parquet")
        market_out = market.filter(plan.in_range).drop("gidx")
        write_parquet(market_out, views_dir / "market.parquet")
        write_json(_views_json(plan, cfg, n_tickers, market_out), views_dir / "views.json")
        bar.advance(task)
        bar.update(task, description="views written")
    return ViewsSummary(views_dir, n_tickers, market_out.height, plan.features, market_out["date"][0],
                        market_out["date"][-1], plan.source.describe(), time.perf_counter() - t0)
