"""The market series the views are measured against (DESIGN §4, §5).

Source, in order: `ViewsConfig.market_ticker` when the store holds it, else the first ticker whose metadata
`asset_type` is "index", else the equal-weighted mean of the equities' daily log returns.

Per grid date (all from data up to t):
    mkt_ret     market daily log return (null when the market did not trade)
    mkt_scaled  mkt_ret / its trailing std over `vol_scale_window` days, clipped (implicit channel 1)
    market_vol  annualised realised volatility over `market_vol_window` days (for the variance target)
    dispersion  cross-sectional std of the equities' returns on t, trailing mean over `market_vol_window`
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


def market_frame(
    returns: pl.LazyFrame,
    grid: pl.LazyFrame,
    equities: list[str],
    source: MarketSource,
    vol_scale_window: int,
    market_vol_window: int,
) -> pl.LazyFrame:
    """date, gidx, mkt_ret, mkt_scaled, market_vol, dispersion on every grid date, sorted by date.

    `returns` holds ticker, date, live, ret for every ticker on the grid (equities and the market ticker).
    """
    eq = returns.filter(pl.col("live") & pl.col("ticker").is_in(equities))
    cross = eq.group_by("date").agg(
        pl.col("ret").mean().alias("_ew"),
        pl.col("ret").std().alias("_disp"),  # (N,) -> 1: needs at least two companies
    )
    frame = grid.join(cross, on="date", how="left")
    if source.ticker is not None:
        mkt = returns.filter(pl.col("live") & (pl.col("ticker") == source.ticker))
        mkt = mkt.select("date", pl.col("ret").alias("mkt_ret"))
        frame = frame.join(mkt, on="date", how="left")
    else:
        frame = frame.with_columns(pl.col("_ew").alias("mkt_ret"))
    w = market_vol_window
    return (
        frame.sort("date")
        .with_columns(
            trailing_scaled(pl.col("mkt_ret"), vol_scale_window).alias("mkt_scaled"),
            finite(
                pl.col("mkt_ret").rolling_std(w, min_samples=max(2, w // 2)) * math.sqrt(TRADING_DAYS)
            ).alias("market_vol"),
            pl.col("_disp").rolling_mean(w, min_samples=1).alias("dispersion"),
        )
        .select("date", "gidx", "mkt_ret", "mkt_scaled", "market_vol", "dispersion")
    )
