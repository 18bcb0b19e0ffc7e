"""The market series the views are measured against (docs/DESIGN.md §4, §5).

Source, in order: `ViewsConfig.market_ticker` when the store holds it, else the first ticker whose metadata
`asset_type` is "index", else the equal-weighted mean of the equities' daily log returns.

Per grid date (all from data up to t):
    mkt_ret     market daily log return (null when the market did not trade)
    mkt_scaled  mkt_ret / its trailing std over `vol_scale_window` days, clipped (implicit channel 1)
    market_vol  annualised realised volatility over `market_vol_window` days (for the variance target)
    dispersion  cross-sectional std of the equities' returns on t, trailing mean over `market_vol_window`

The equities' per-date count, sum and sum of squares (`return_sums`) add up chunk by chunk, in row order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from dynmix.views.implicit import finite, trailing_scaled

EQUAL_WEIGHT = "equal-weight"
TRADING_DAYS = 252  # annualisation of the market volatility


@dataclass(frozen=True)
class MarketSource:
    """Which series is the market: `kind` is "ticker" (configured), "index" or "equal-weight"."""

    kind: str
    ticker: str | None = None

    def describe(self) -> str:
        return self.ticker if self.ticker is not None else EQUAL_WEIGHT


def choose_market(meta: pl.DataFrame, tickers: set[str], market_ticker: str | None) -> MarketSource:
    """The configured ticker if stored, else the first stored index (by ticker), else the equal-weight mean."""
    if market_ticker and market_ticker in tickers:
        return MarketSource("ticker", market_ticker)
    indices = sorted(t for t in meta.filter(pl.col("asset_type") == "index")["ticker"].to_list() if t in tickers)
    if indices:
        return MarketSource("index", indices[0])
    return MarketSource(EQUAL_WEIGHT)


def return_sums(rows: pl.DataFrame, n_days: int) -> np.ndarray:
    """(3, T) count, sum and sum of squares per grid day of the observed `ret` of `rows` (gidx, ret; gidx >= 0)."""
    rows = rows.filter(pl.col("ret").is_not_null())
    g, x = rows["gidx"].to_numpy(), rows["ret"].cast(pl.Float64).to_numpy()
    return np.stack([np.bincount(g, minlength=n_days).astype(np.float64)[:n_days],
                     np.bincount(g, weights=x, minlength=n_days)[:n_days],
                     np.bincount(g, weights=x * x, minlength=n_days)[:n_days]])


def on_days(rows: pl.DataFrame, n_days: int) -> pl.Series:
    """(T,) `ret` of `rows` (gidx, ret: one series) on every grid day, null where it has no row."""
    days = pl.DataFrame({"gidx": range(n_days)}, schema={"gidx": rows.schema["gidx"]})
    return days.join(rows, on="gidx", how="left", maintain_order="left")["ret"]


def market_series(grid: pl.DataFrame, sums: np.ndarray, mkt_ret: pl.Series | None, vol_scale_window: int,
                  market_vol_window: int) -> pl.DataFrame:
    """date, gidx, mkt_ret, mkt_scaled, market_vol, dispersion per grid day from the equities' `return_sums`.

    `mkt_ret`: (T,) the market ticker's returns, or None for the equal-weighted mean.
    """
    n, total, squares = sums
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n
        var = np.clip((squares - total * mean) / (n - 1.0), 0.0, None)  # sample variance (N,) -> 1
    ew = pl.Series("_ew", mean).fill_nan(None)
    disp = pl.Series("_disp", np.sqrt(var)).fill_nan(None).set(pl.Series(n < 2), None)  # needs two companies
    frame = grid.with_columns(ew, disp, (mkt_ret if mkt_ret is not None else ew).alias("mkt_ret"))
    w = market_vol_window
    return frame.sort("date").select(
        "date",
        "gidx",
        "mkt_ret",
        trailing_scaled(pl.col("mkt_ret"), vol_scale_window).alias("mkt_scaled"),
        finite(pl.col("mkt_ret").rolling_std(w, min_samples=max(2, w // 2)) * math.sqrt(TRADING_DAYS))
        .alias("market_vol"),
        pl.col("_disp").rolling_mean(w, min_samples=1).alias("dispersion"),
    )


def market_frame(
    returns: pl.LazyFrame,
    grid: pl.LazyFrame | pl.DataFrame,
    equities: list[str],
    source: MarketSource,
    vol_scale_window: int,
    market_vol_window: int,
) -> pl.LazyFrame:
    """date, gidx, mkt_ret, mkt_scaled, market_vol, dispersion on every grid date, sorted by date.

    `returns` holds ticker, gidx, live, ret for every ticker on the grid (equities and the market ticker).
    """
    days = grid.collect() if isinstance(grid, pl.LazyFrame) else grid
    days = days.sort("gidx")
    live = returns.filter(pl.col("live"))
    eq = live.filter(pl.col("ticker").is_in(equities)).select("gidx", "ret").collect()
    mkt = None
    if source.ticker is not None:
        own = live.filter(pl.col("ticker") == source.ticker).select("gidx", "ret").collect()
        mkt = on_days(own, days.height)
    sums = return_sums(eq, days.height)
    return market_series(days, sums, mkt, vol_scale_window, market_vol_window).lazy()
