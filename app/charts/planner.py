"""Charts of the planner: planned weights, imagined trajectories, backtest equity and weights over time."""

from __future__ import annotations

import plotly.express as px
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from app.charts.style import PALETTE, QUALITATIVE, empty, finish

MAX_PATHS = 60  # imagined trajectories drawn (the mean is always drawn)


def planned_weights_chart(weights: pl.DataFrame) -> go.Figure:
    """Stacked bars: the planned weight of each ticker at every step of the horizon."""
    if weights.height == 0:
        return empty("the plan holds no weights")
    df = weights.sort("step", "ticker").with_columns(pl.col("step").cast(pl.String))
    fig = px.bar(df, x="step", y="weight", color="ticker", barmode="relative", color_discrete_sequence=QUALITATIVE)
    fig.update_xaxes(title="step ahead (days)", type="category")
    return finish(fig, "Planned weights")


def trajectories_chart(traj: pl.DataFrame) -> go.Figure:
    """Imagined paths: cumulative return (left) and volatility (right) of sampled trajectories over the horizon."""
    if traj.height == 0:
        return empty("no imagined trajectories")
    df = traj.sort("sample", "step").with_columns(
        ((1.0 + pl.col("ret")).cum_prod().over("sample") - 1.0).alias("cumulative"))
    fig = make_subplots(rows=1, cols=2, subplot_titles=("cumulative return", "volatility"))
    samples = df["sample"].unique().sort().head(MAX_PATHS).to_list()
    for s in samples:
        path = df.filter(pl.col("sample") == s)
        for col, y in ((1, "cumulative"), (2, "vol")):
            fig.add_trace(go.Scatter(x=path["step"], y=path[y], mode="lines", showlegend=False, hoverinfo="skip",
                                     line={"color": "rgba(31,119,180,0.18)", "width": 1}), row=1, col=col)
    mean = df.group_by("step").agg(pl.col("cumulative").mean(), pl.col("vol").mean()).sort("step")
    for col, y in ((1, "cumulative"), (2, "vol")):
        fig.add_trace(go.Scatter(x=mean["step"], y=mean[y], mode="lines+markers", name=f"mean {y}",
                                 line={"color": PALETTE[1], "width": 2.5}), row=1, col=col)
    if "realised" in df.columns:
        real = df.filter(pl.col("sample") == samples[0]).select("step", "realised").drop_nans().drop_nulls()
        if real.height:
            cum = (1.0 + real["realised"]).cum_prod() - 1.0
            fig.add_trace(go.Scatter(x=real["step"], y=cum, mode="lines+markers", name="what happened",
                                     line={"color": PALETTE[3 % len(PALETTE)], "width": 2.5, "dash": "dash"}),
                          row=1, col=1)
    fig.update_xaxes(title="step ahead (days)")
    return finish(fig, f"Imagined trajectories ({len(samples)} of {df['sample'].n_unique()} samples)")


def targets_chart(weights: pl.DataFrame) -> go.Figure:
    """The strategic target against the tactical plan's weights to hold now (first step), per ticker."""
    if weights.height == 0 or "target" not in weights.columns:
        return empty("no strategic target (flat planner)")
    first = weights.filter(pl.col("step") == pl.col("step").min()).sort("target", descending=True)
    long = first.select("ticker", pl.col("target").alias("strategic target"),
                        pl.col("weight").alias("tactical weight")).unpivot(index="ticker", variable_name="level")
    fig = px.bar(long, x="ticker", y="value", color="level", barmode="group", color_discrete_sequence=QUALITATIVE)
    fig.update_yaxes(title="weight")
    return finish(fig, "Strategic target vs tactical weights (now)")


def equity_chart(equity: pl.DataFrame) -> go.Figure:
    """Backtest equity curve of each strategy (the planner against the skfolio baselines)."""
    if equity.height == 0:
        return empty("equity.parquet is empty")
    fig = px.line(equity.sort("strategy", "date"), x="date", y="equity", color="strategy",
                  color_discrete_sequence=QUALITATIVE)
    fig.update_xaxes(title=None)
    fig.update_yaxes(title="equity (start = 1)")
    return finish(fig, "Walk-forward backtest: equity after costs", height=420)


def weights_area_chart(weights: pl.DataFrame, strategy: str, top: int = 12) -> go.Figure:
    """Weights of one strategy over time (the `top` largest holdings by mean weight, the rest as 'other')."""
    df = weights.filter(pl.col("strategy") == strategy)
    if df.height == 0:
        return empty(f"no weights for {strategy}")
    keep = (df.group_by("ticker").agg(pl.col("weight").abs().mean()).sort("weight", descending=True)
            .head(top)["ticker"].to_list())
    df = (df.with_columns(pl.when(pl.col("ticker").is_in(keep)).then(pl.col("ticker")).otherwise(pl.lit("other"))
                          .alias("ticker"))
          .group_by("date", "ticker").agg(pl.col("weight").sum()).sort("ticker", "date"))
    fig = px.area(df, x="date", y="weight", color="ticker", color_discrete_sequence=QUALITATIVE)
    fig.update_xaxes(title=None)
    return finish(fig, f"Weights of {strategy} over time")
