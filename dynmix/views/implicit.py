"""The implicit (learned) view: daily log returns on the aligned date grid, scaled without peeking ahead.

Stateless polars steps, `LazyFrame -> LazyFrame` (STYLE point 9):

    date_grid      the trading dates of the given rows, with their position `gidx` on the grid
    on_grid        one row per (ticker, grid date) from a ticker's first to its last stored date; a day the
                   store lacks is a row of nulls (so every trailing window spans grid days, not stored rows)
    add_returns    ret = log(adj_close_t / adj_close_{t-1}) on consecutive grid days (null around a gap),
                   lp_ff = forward-filled log price (the last price known at t)
    implicit_view  date, ticker, ret, ret_scaled (channel 0 of the implicit tensor)

Layout instead of `.over("ticker")`: `on_grid` puts each ticker's rows in one block, oldest first, behind
`guard` null rows. A trailing window (rolling_*, shift, diff) of at most `guard` + 1 rows computed down the
whole column therefore only ever sees the ticker's own past (nulls are skipped and `min_samples` counts
observations): the same numbers as `.over("ticker", order_by="date")`, at about a third of the cost.

`ret_scaled` divides the return by the company's own trailing standard deviation over `vol_scale_window`
days up to and including t (at least MIN_SCALE_OBS observations), clipped to [-CLIP, CLIP].
"""

from __future__ import annotations

import polars as pl

MIN_SCALE_OBS = 21  # observations needed before a return can be scaled
CLIP = 8.0  # scaled returns are clipped to [-CLIP, CLIP]
KEY_STRIDE = 1 << 32  # (ticker, grid day) -> one Int64 join key


def finite(expr: pl.Expr) -> pl.Expr:
    """`expr` where finite, else null (NaN and inf never reach a saved view)."""
    return pl.when(expr.is_finite()).then(expr)


def trailing_scaled(ret: pl.Expr, window: int) -> pl.Expr:
    """Return / its trailing std over `window` rows up to t, clipped; null before MIN_SCALE_OBS observations."""
    sd = ret.rolling_std(window, min_samples=min(MIN_SCALE_OBS, window))
    return finite(ret / pl.when(sd > 0).then(sd)).clip(-CLIP, CLIP)


def date_grid(prices: pl.LazyFrame) -> pl.LazyFrame:
    """date, gidx (Int64): the sorted distinct dates of `prices` and their position."""
    return (
        prices.select(pl.col("date").unique())
        .sort("date")
        .with_row_index("gidx")
        .with_columns(pl.col("gidx").cast(pl.Int64))
    )


def on_grid(prices: pl.LazyFrame, grid: pl.DataFrame, guard: int) -> pl.LazyFrame:
    """Reindex the price rows on `grid`, one block of rows per ticker, blocks sorted by ticker then date.

    A ticker's block runs over every grid day from its first to its last stored day (a day the store lacks
    is a row of null prices), preceded by `guard` null rows (`live` False). Stored dates off the grid are
    dropped. Columns: ticker, gidx, date, live, close, adj_close, volume.
    """
    days = pl.lit(grid["date"])
    pos = days.search_sorted(pl.col("date")).cast(pl.Int64)  # grid position of each stored date
    obs = (
        prices.select("ticker", "date", "close", "adj_close", "volume")
        .with_columns(pos.alias("gidx"))
        .filter(pl.col("gidx") < grid.height)
        .filter(days.gather(pl.col("gidx")) == pl.col("date"))
    )
    spans = (
        obs.group_by("ticker")
        .agg(pl.col("gidx").min().alias("lo"), pl.col("gidx").max().alias("hi"))
        .sort("ticker")
        .with_row_index("_tidx")
    )
    key = (pl.col("_tidx").cast(pl.Int64) * KEY_STRIDE + pl.col("gidx")).alias("_key")  # one Int64 per row
    obs = obs.join(spans.select("ticker", "_tidx"), on="ticker").select(
        key, key.alias("_hit"), "close", "adj_close", "volume"
    )
    full = (
        spans.select("ticker", "lo", "_tidx", pl.int_ranges(pl.col("lo") - guard, pl.col("hi") + 1,
                                                            dtype=pl.Int64).alias("gidx"))
        .explode("gidx")
        .with_columns(key, (pl.col("gidx") >= pl.col("lo")).alias("live"))
        .join(grid.lazy(), on="gidx", how="left", maintain_order="left")
    )
    # Both sides sorted by key: an as-of merge is a linear pass (a hash join costs ~10x); keep exact hits only.
    merged = full.sort("_key").join_asof(obs.sort("_key"), on="_key", strategy="backward")
    hit = pl.col("_hit") == pl.col("_key")  # the whole key: a backward match may be another ticker's day
    values = (pl.when(hit).then(pl.col(c)).alias(c) for c in ("close", "adj_close", "volume"))
    return merged.select("ticker", "gidx", "date", "live", *values)


def add_returns(panel: pl.LazyFrame) -> pl.LazyFrame:
    """Add `ret` (daily log return; null if either day is missing) and `lp_ff` (last log adj_close known at t).

    `panel` is laid out by `on_grid`: a ticker's first live row holds a price, so the fill never crosses tickers.
    """
    lp = pl.col("adj_close").log()
    return panel.with_columns(
        lp.diff().alias("ret"),
        pl.when(pl.col("live")).then(lp.forward_fill()).alias("lp_ff"),
    )


def implicit_view(returns: pl.LazyFrame, vol_scale_window: int) -> pl.LazyFrame:
    """date, ticker, ret, ret_scaled (live rows) from a frame laid out by `on_grid` with `ret`."""
    return returns.select(
        "date",
        "ticker",
        "live",
        pl.col("ret"),
        trailing_scaled(pl.col("ret"), vol_scale_window).alias("ret_scaled"),
    ).filter(pl.col("live")).drop("live")
