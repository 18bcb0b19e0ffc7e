"""Charts of the store: coverage heat-map (tickers x months), rebased prices, daily returns."""

from __future__ import annotations

import plotly.express as px
import plotly.graph_objects as go
import polars as pl

from app.charts.style import QUALITATIVE, empty, finish


def coverage_heatmap(monthly: pl.DataFrame, max_tickers: int = 80) -> go.Figure:
    """Share of each month's trading days present, one row per ticker (first `max_tickers` tickers)."""
    if monthly.height == 0:
        return empty("no prices in the store")
    tickers = monthly["ticker"].unique().sort().head(max_tickers).to_list()
    wide = (monthly.filter(pl.col("ticker").is_in(tickers))
            .pivot(on="month", index="ticker", values="share", sort_columns=True).sort("ticker"))
    months = [c for c in wide.columns if c != "ticker"]
    fig = go.Figure(go.Heatmap(
        z=wide.select(months).to_numpy(), x=months, y=wide["ticker"].to_list(),
        zmin=0.0, zmax=1.0, colorscale="Blues", colorbar={"title": "share"},
        hovertemplate="%{y} %{x|%Y-%m}: %{z:.0%} of trading days<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed", type="category")
    height = max(260, min(900, 18 * len(tickers) + 120))
    return finish(fig, "Coverage: share of each month's trading days with a price", height=height, legend=False)


def price_chart(prices: pl.DataFrame) -> go.Figure:
    """Adjusted close of each ticker rebased to 100 on its first date."""
    if prices.height == 0:
        return empty("choose tickers with prices")
    df = prices.sort("ticker", "date").with_columns(
        (100.0 * pl.col("adj_close") / pl.col("adj_close").first().over("ticker")).alias("rebased"))
    fig = px.line(df, x="date", y="rebased", color="ticker", color_discrete_sequence=QUALITATIVE)
    fig.update_yaxes(title="adjusted close (first day = 100)", type="log")
    fig.update_xaxes(title=None)
    return finish(fig, "Prices (adjusted, rebased, log scale)")


def returns_chart(prices: pl.DataFrame) -> go.Figure:
    """Daily log returns of each ticker."""
    if prices.height == 0:
        return empty("choose tickers with prices")
    df = (prices.sort("ticker", "date")
          .with_columns(pl.col("adj_close").log().diff().over("ticker").alias("log return"))
          .drop_nulls("log return"))
    fig = px.line(df, x="date", y="log return", color="ticker", color_discrete_sequence=QUALITATIVE)
    fig.update_traces(line={"width": 1})
    fig.update_xaxes(title=None)
    return finish(fig, "Daily log returns")
