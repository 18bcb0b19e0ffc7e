"""`build_views`: the store -> HOME/views/ (explicit.parquet, returns.parquet, market.parquet, views.json).

The on-disk format is documented in dynmix/views/tensors.py. Every file is written atomically and the
build is idempotent: the same store gives the same Parquet content. Rows are sorted by (ticker, date)
(market by date), every date is on the grid = the equities' trading dates from `ViewsConfig.start` on.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from dynmix.config import ViewsConfig
from dynmix.data.store import Store
from dynmix.errors import DynMIXError
from dynmix.io import write_json, write_parquet
from dynmix.views import explicit as ex
from dynmix.views import generation, kernels
from dynmix.views.chunks import (
    ENGINE,
    KEYS,
    Panel,
    ahead,
    arrow,
    key_columns,
    mapped,
    ticker_chunks,
    ticker_starts,
    write_parquet_chunks,
)
from dynmix.views.chunks import panels as chunk_panels
from dynmix.views.factors import CHANNELS, factor_channels, with_factor_channels
from dynmix.views.implicit import CLIP, date_grid
from dynmix.views.market import MarketSource, choose_market, market_series

__all__ = ["CHUNK_ROWS", "ENGINE", "ViewsSummary", "build_views", "ticker_chunks", "window_observed",
           "write_parquet_chunks"]
# company-days per feature chunk: bounds the memory; under 2^20 rows a Float64 column stays below jemalloc's 8 MiB
# "oversize" threshold, so its freed pages go back to the OS at once (benchmarks/RESULTS.md).
CHUNK_ROWS = 900_000


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
    n_valid: int = 0  # samples (company, date) with explicit features and a full enough return window


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


@dataclass(frozen=True)
class _Plan:
    """What a build will do, checked before the features are computed."""

    equities: list[str]  # N companies (asset_type equity)
    wanted: list[str]  # every ticker whose prices the build reads: the equities, the ETFs and the market ticker
    etfs: list[str]  # factor ETFs (asset_type etf)
    source: MarketSource
    grid: pl.DataFrame  # date, gidx: the equities' trading days, including the warm-up before `start`
    in_range: pl.Expr  # the output dates: from ViewsConfig.start on
    sectors: pl.DataFrame  # ticker, sector of the equities
    sector_cols: dict[str, str]
    partial: bool  # ViewsConfig.partial_history: LONG_FEATURES filled and flagged instead of masking
    starts: np.ndarray  # (W,) first row of each of `wanted` in the prices (sorted by ticker, then date)

    @property
    def core(self) -> list[str]:
        return list(ex.CORE_FEATURES)

    @property
    def optional(self) -> list[str]:
        return [ex.LIQUIDITY, *(ex.etf_feature(e) for e in self.etfs)]

    @property
    def filled(self) -> list[str]:
        """Features standardised with null -> 0 (the cross-sectional mean): optional, and long when `partial`."""
        return [*self.optional, *(ex.LONG_FEATURES if self.partial else ())]

    @property
    def required(self) -> list[str]:
        """Core features whose null masks the sample."""
        return [f for f in self.core if f not in self.filled]

    @property
    def features(self) -> list[str]:
        return [*self.core, *self.optional, *self.sector_cols.values(), *([ex.SHORT_HISTORY] if self.partial else [])]


def _plan(store: Store, cfg: ViewsConfig) -> tuple[_Plan, pl.DataFrame]:
    """The plan and the prices it reads (ticker, date, close, adj_close, volume of `wanted`, by ticker and date)."""
    if not store.exists():
        raise DynMIXError(f"the store {store.root} is empty: run `dynmix data sample` first (or `dynmix data import`)")
    if cfg.window < 1 or not 1 <= cfg.min_window_obs <= cfg.window:
        raise DynMIXError(f"views.window = {cfg.window}, min_window_obs = {cfg.min_window_obs}: "
                          "expected window >= 1 and 1 <= min_window_obs <= window")
    if cfg.factors < 0 or cfg.factor_window < 2 or cfg.factor_refit < 1:
        raise DynMIXError(f"views.factors = {cfg.factors}, factor_window = {cfg.factor_window}, factor_refit = "
                          f"{cfg.factor_refit}: expected factors >= 0, factor_window >= 2, factor_refit >= 1")
    if cfg.partial_history and not 2 <= cfg.factor_min_days <= cfg.factor_window:
        raise DynMIXError(f"views.factor_min_days = {cfg.factor_min_days}: expected 2 <= factor_min_days <= "
                          f"views.factor_window = {cfg.factor_window}")
    meta = store.meta_for_prices()
    equities = sorted(meta.filter(pl.col("asset_type") == "equity")["ticker"].to_list())
    equity_set = set(equities)
    if not equities:
        raise DynMIXError(f"the store {store.root} holds no equities (metadata asset_type 'equity'): nothing to embed")
    start = _start(cfg)
    etfs = sorted(meta.filter(pl.col("asset_type") == "etf")["ticker"].to_list())
    source = choose_market(meta, set(meta["ticker"].to_list()), cfg.market_ticker)
    wanted = sorted({*equities, *etfs, *([source.ticker] if source.ticker else [])})
    lf = store.scan_prices()
    if len(wanted) < meta.height:  # meta lists every ticker with prices: skip a 30 M-row string filter at scale
        lf = lf.filter(pl.col("ticker").is_in(wanted))
    prices = store.collect(lf.select("ticker", "date", "close", "adj_close", "volume"), engine=ENGINE)  # read once
    if not prices["ticker"].is_sorted():  # the store keeps (ticker, date) order; chunks need whole tickers
        prices = prices.sort("ticker", "date")
    starts = ticker_starts(prices, wanted)  # (W,) first row of each wanted ticker
    rows = np.ones(prices.height, dtype=bool)  # the equities' rows: the others are a few whole tickers
    for t, a, b in zip(wanted, starts, np.r_[starts[1:], prices.height], strict=True):
        if t not in equity_set:
            rows[a:b] = False
    grid = date_grid(prices.lazy().select("date").filter(pl.Series(rows))).collect(engine=ENGINE)
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
        wanted=wanted,
        etfs=etfs,
        source=source,
        grid=grid,
        in_range=in_range,
        sectors=sectors,
        sector_cols=ex.sector_columns(sectors["sector"].to_list()),
        partial=cfg.partial_history,
        starts=starts,
    ), prices


@dataclass(frozen=True)
class _Raw:
    """One chunk's output rows between the passes: their tickers (by rank), rank, grid day and raw features."""

    tickers: pl.Series  # the chunk's ticker names
    tid: np.ndarray  # (R,) int32 rank of each row's ticker in `tickers`
    gidx: np.ndarray  # (R,) int32 grid day
    x: np.ndarray  # (F, R) float32 unstandardised features, NaN = null


def window_observed(returns_present: np.ndarray, window: int, min_obs: int, block: int = 512) -> np.ndarray:
    """(T - window + 1, N) bool: at least `min_obs` observed returns in the `window` days ending at t, for each
    t >= window - 1 (the return half of `ViewTensors.valid()`, from a (T, N) bool panel without loading the views).

    Column blocks of `block` companies bound the int32 cumulative sums beside the (T, N) panel.
    """
    t, n = returns_present.shape
    out = np.empty((max(t - window + 1, 0), n), dtype=bool)
    for a in range(0, n, block):
        c = np.cumsum(returns_present[:, a:a + block], axis=0, dtype=np.int32)  # (T, b)
        obs = c.copy()
        obs[window:] -= c[:-window]  # observed returns in (t - window, t]
        out[:, a:a + block] = obs[window - 1:] >= min_obs
    return out


def _views_json(plan: _Plan, cfg: ViewsConfig, n_tickers: int, n_valid: int,
                market: pl.DataFrame) -> dict[str, object]:
    return {
        "feature_names": plan.features,
        "core_features": plan.core,
        "optional_features": plan.optional,
        "channels": [*CHANNELS, *factor_channels(cfg.factors)],
        "factors": {"k": cfg.factors, "fit_window": cfg.factor_window, "refit": cfg.factor_refit,
                    "first_fit": cfg.factor_min_days if cfg.partial_history else cfg.factor_window},
        "partial_history": plan.partial,
        "required_features": plan.required,
        "required_history_days": ex.required_history(plan.partial),
        "window": cfg.window,
        "min_window_obs": cfg.min_window_obs,
        "market_source": plan.source.describe(),
        "market_kind": plan.source.kind,
        "vol_scale_window": cfg.vol_scale_window,
        "market_vol_window": cfg.market_vol_window,
        "start": cfg.start,
        "n_tickers": n_tickers,
        "valid_samples": n_valid,
        "n_dates": market.height,
        "first_date": market["date"][0].isoformat(),
        "last_date": market["date"][-1].isoformat(),
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def build_views(store: Store, views_dir: Path, cfg: ViewsConfig, progress: bool = True) -> ViewsSummary:
    """Build both company views from the store into a new generation, then swap it in as `views_dir` at once.

    Work goes by chunks of whole tickers (about CHUNK_ROWS company-days each), so memory stays bounded:
    returns on the grid per chunk (with the equities' per-date return sums) -> the market -> per chunk the
    raw explicit features (kept, with their per-date sums) and the implicit view (written) -> cross-sectional
    statistics -> per chunk the standardised explicit view (written). The grid panels and pass 1's features are
    computed `chunks.WORKERS` chunks at a time in worker threads (`chunks.mapped`, in chunk order), pass 2's next
    chunk in a worker while this one is written (`chunks.ahead`).
    """
    t0 = time.perf_counter()
    plan, prices = _plan(store, cfg)
    gen, out_dir = generation.begin(views_dir)
    held = [prices]  # _build takes the only reference, so the prices are freed once laid on the grid
    del prices
    pool = ThreadPoolExecutor(1)  # beside the build: the stale generation removed, the store's files hashed
    pool.submit(generation.drop_stale, views_dir)
    snapshot = pool.submit(store.snapshot)  # I/O and hashing: the GIL released
    try:
        summary, digests = _build(plan, held, out_dir, cfg, progress)
        done = snapshot.result()
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise
    finally:
        pool.shutdown(wait=False)  # a Ctrl-C does not wait for the hash
    generation.commit(views_dir, gen, out_dir, done, digests)
    return replace(summary, views_dir=views_dir, seconds=time.perf_counter() - t0)


def _build(plan: _Plan, held: list[pl.DataFrame], views_dir: Path, cfg: ViewsConfig,
           progress: bool) -> tuple[ViewsSummary, dict[str, str]]:
    """The build itself, writing into `views_dir` (the new generation's folder); `held` = [the prices], emptied.

    Returns the summary and the SHA-256 of the files hashed as they were written.
    """
    t0 = time.perf_counter()
    names, n_days = plan.core + plan.optional, plan.grid.height
    with _steps(progress) as bar:
        task = bar.add_task(f"returns on the grid ({len(plan.wanted)} tickers x {n_days} days)", total=None)
        prices = held.pop()
        panels = list(chunk_panels(prices, plan.grid, CHUNK_ROWS, plan.starts))
        del prices  # the last reference (about 40 bytes a stored row)
        sums = np.zeros((3, n_days))  # (3, T) the equities' return count, sum, sum of squares per day
        series: dict[str, pl.Series] = {}  # the market ticker's and the ETFs' returns per grid day
        references = {*plan.etfs, *([plan.source.ticker] if plan.source.ticker else [])}
        for part in panels:
            eq = part.tickers.is_in(plan.equities).to_numpy()[part.tid]  # (R,) the row is an equity's
            sums += kernels.cross_sums(part.ret[None, eq], part.gidx[eq], n_days)[0]  # in row order, as bincount
            for t in set(part.tickers.to_list()) & references:
                own = part.tid == part.tickers.index_of(t)
                day = np.full(n_days, np.nan)
                day[part.gidx[own]] = part.ret[own]
                series[t] = pl.Series("ret", day, nan_to_null=True)
        mkt = None if plan.source.ticker is None else series.get(
            plan.source.ticker, pl.Series("ret", [None] * n_days, dtype=pl.Float64))
        market = market_series(plan.grid, sums, mkt, cfg.vol_scale_window, cfg.market_vol_window)
        reference_returns = market.select("gidx", pl.col("mkt_ret").alias("_m")).with_columns(
            (series[e] if e in series else pl.lit(None, pl.Float64)).alias(f"_e_{e}") for e in plan.etfs)
        bar.update(task, description=f"features ({len(plan.equities)} equities)", total=2 * len(panels) + 1)
        raw: list[_Raw] = []  # per chunk: unstandardised features of the output rows
        first = int(plan.grid.filter(plan.in_range)["gidx"].min())  # type: ignore[arg-type]  # first output day
        column = {t: j for j, t in enumerate(plan.equities)}
        scaled_panel = np.full((n_days, len(plan.equities)), np.nan, dtype=np.float32)  # (T, N) for the factors
        present = np.zeros((n_days - first, len(plan.equities)), dtype=bool)  # (T_out, N) explicit row complete
        feature_sums = np.zeros((len(names), 3, n_days))  # (F, 3, T) count, sum, sum of squares per date
        days = plan.grid["date"].cast(pl.Int32).to_numpy()  # (T,) days since 1970
        fill = np.array([n in plan.filled for n in names])  # (F,) standardised null -> 0
        required = np.array([n in plan.required for n in names])  # (F,) a null masks the sample
        long = [names.index(f) for f in ex.LONG_FEATURES]

        def panel_cols(tickers: pl.Series, tid: np.ndarray) -> np.ndarray:
            """Panel column of each row's ticker (-1 only for non-equities, whose rows the passes drop)."""
            return np.array([column.get(t, -1) for t in tickers.to_list()], dtype=np.int64)[tid]

        factor_cols = ["_m", *(f"_e_{e}" for e in plan.etfs)]
        factors = reference_returns.sort("gidx").select(factor_cols).to_numpy(order="fortran").T  # (1 + E, T)

        def features(part: Panel) -> tuple[_Raw, np.ndarray, np.ndarray]:  # pass 1 (workers): raw features
            """A chunk's raw features, and (R,) float64 return and scaled return (NaN = null) of its rows."""
            eq = part.tickers.is_in(plan.equities).to_numpy()[part.tid]  # (R,) the row is an equity's
            tickers, tid, g, ret = part.tickers, part.tid[eq], part.gidx[eq], part.ret[eq]
            fac = np.ascontiguousarray(factors[:, g])  # (1 + E, R)
            keep = g >= first
            x, sd = ex.raw_feature_arrays(tid, ret, part.lp_ff[eq], part.dollar[eq], fac, keep,
                                          cfg.vol_scale_window)  # (F, K) float32, (K,) float64
            with np.errstate(invalid="ignore", divide="ignore"):
                q = ret[keep] / np.where(sd > 0, sd, np.nan)  # implicit.scaled
            q[~np.isfinite(q)] = np.nan
            return _Raw(tickers, tid[keep], g[keep], x), ret[keep], np.clip(q, -CLIP, CLIP)

        def popped() -> Iterator[Panel]:
            """The panels in order, each dropped from `panels` as it is handed out (its rows freed once used)."""
            while panels:
                yield panels.pop(0)

        def implicit_chunks() -> Iterator[pa.Table]:  # pass 1 (caller): raw features kept, implicit view written
            nonlocal feature_sums
            for part, ret, ret_scaled in mapped(features, popped()):  # sums and writes stay in chunk order
                raw.append(part)  # the returns are written now, not kept
                scaled_panel[part.gidx, panel_cols(part.tickers, part.tid)] = ret_scaled
                feature_sums += kernels.cross_sums(part.x, part.gidx, n_days)  # chunk by chunk, in row order
                bar.advance(task)
                yield pa.table({**key_columns(part.tickers, part.tid, days, part.gidx),
                                "ret": pl.Series(ret, nan_to_null=True).to_arrow(),
                                "ret_scaled": pl.Series(ret_scaled, nan_to_null=True).to_arrow()})

        def explicit_chunks() -> Iterator[pa.Table]:  # pass 2: standardised against the whole cross-section
            while raw:
                part = raw.pop(0)
                # 1 where a year-long feature is still null, read before the raw features are standardised in place
                short = np.isnan(part.x[long]).any(axis=0).astype(np.float32) if plan.partial else None
                z = kernels.standardise_rows(part.x, part.gidx, mu, inv, fill, ex.WINSOR, part.x)  # (F, R) float32
                cols = {n: pl.Series(n, z[j], nan_to_null=True).to_arrow() for j, n in enumerate(names)}
                code = ex.sector_codes(part.tickers, plan.sectors, plan.sector_cols).to_numpy()[part.tid]  # (R,)
                cols.update((c, arrow((code == k).astype(np.float32)))
                            for k, c in enumerate(plan.sector_cols.values()))
                if short is not None:
                    cols[ex.SHORT_HISTORY] = arrow(short)
                full = ~np.isnan(z[required]).any(axis=0)  # the loader's explicit mask: every feature present
                present[part.gidx - first, panel_cols(part.tickers, part.tid)] = full
                yield pa.table({**key_columns(part.tickers, part.tid, days, part.gidx), **cols})
                bar.advance(task)

        digests = {"returns.parquet": write_parquet_chunks(implicit_chunks(), views_dir / "returns.parquet")}
        n_tickers = sum(len(np.unique(part.tid)) for part in raw)  # chunks hold whole tickers
        mu, inv = ex.day_scales(feature_sums)
        with ThreadPoolExecutor(1) as pool:  # beside pass 2: the factor fit (numpy, one BLAS thread), then the
            fit = pool.submit(with_factor_channels, market, scaled_panel, cfg)  # returns' half of valid()
            observed = pool.submit(window_observed, ~np.isnan(scaled_panel[first:]), cfg.window, cfg.min_window_obs)
            flags = [*plan.sector_cols.values(), *([ex.SHORT_HISTORY] if plan.partial else [])]  # never null
            digests["explicit.parquet"] = write_parquet_chunks(ahead(explicit_chunks()), views_dir / "explicit.parquet",
                                                               compression="lz4", required=[*KEYS, *flags])
            market_out = fit.result().filter(plan.in_range).drop("gidx")
            n_valid = int((present[cfg.window - 1:] & observed.result()).sum())  # the count of valid()
        write_parquet(market_out, views_dir / "market.parquet")
        write_json(_views_json(plan, cfg, n_tickers, n_valid, market_out), views_dir / "views.json")
        bar.advance(task)
        bar.update(task, description="views written")
    return ViewsSummary(views_dir, n_tickers, market_out.height, plan.features, market_out["date"][0],
                        market_out["date"][-1], plan.source.describe(), time.perf_counter() - t0, n_valid), digests
