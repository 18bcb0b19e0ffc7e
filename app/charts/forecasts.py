"""Charts of the forecasts: surprise index against market volatility, volatility forecasts against realised."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from app.charts.style import PALETTE, empty, finish

FORECASTERS = ("dynmix", "dynmix_har", "har", "log_har", "garch", "ewma", "oracle")
SMOOTH_DAYS = 21  # the surprise index is noisy day to day: a month's rolling mean is drawn


def surprise_chart(surprise: pl.DataFrame) -> go.Figure:
    """The surprise index (mean prediction energy, smoothed, left axis) against realised market volatility."""
    if surprise.height == 0:
        return empty("surprise.parquet is empty")
    surprise = surprise.sort("date")
    smooth = surprise["surprise"].rolling_mean(SMOOTH_DAYS, min_samples=1)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=surprise["date"], y=smooth, name=f"surprise index ({SMOOTH_DAYS}-day mean)",
                             line={"color": PALETTE[0]}), secondary_y=False)
    if "market_vol" in surprise.columns:
        fig.add_trace(go.Scatter(x=surprise["date"], y=surprise["market_vol"], name="realised market volatility",
                                 line={"color": PALETTE[1], "width": 1}), secondary_y=True)
    fig.update_yaxes(title="surprise", secondary_y=False)
    fig.update_yaxes(title="market vol", secondary_y=True, showgrid=False)
    return finish(fig, "Surprise index against realised market volatility")


def vol_forecast_chart(vol: pl.DataFrame, ticker: str) -> go.Figure:
    """Realised volatility of `ticker` with the DynMIX forecast and the HAR / GARCH baselines."""
    df = vol.filter(pl.col("ticker") == ticker).sort("date") if "ticker" in vol.columns else vol.sort("date")
    if df.height == 0:
        return empty(f"no volatility forecasts for {ticker}")
    fig = go.Figure()
    if "realised" in df.columns:
        fig.add_trace(go.Scatter(x=df["date"], y=df["realised"], name="realised",
                                 line={"color": "black", "width": 1.5}))
    for k, name in enumerate(c for c in FORECASTERS if c in df.columns):
        fig.add_trace(go.Scatter(x=df["date"], y=df[name], name=name,
                                 line={"color": PALETTE[k], "width": 1.2, "dash": "solid" if k == 0 else "dot"}))
    fig.update_yaxes(title="volatility")
    return finish(fig, f"Volatility of {ticker}: forecasts against realised")
