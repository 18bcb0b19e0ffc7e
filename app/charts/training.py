"""Charts of a training run: loss parts over steps, gamma against market volatility, collapse monitor."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from app.charts.style import PALETTE, empty, finish

LOSS_KEYS = ("loss", "invariance", "variance", "covariance", "sigreg", "prediction")


def loss_columns(metrics: pl.DataFrame) -> list[str]:
    """The loss parts present in the log (known names first, then any other *_loss key)."""
    known = [k for k in LOSS_KEYS if k in metrics.columns]
    return known + [c for c in metrics.columns if c.endswith("_loss") and c not in known]


def collapse_columns(metrics: pl.DataFrame) -> tuple[list[str], list[str]]:
    """(per-dimension std keys, effective-rank keys) present in the log."""
    std = [c for c in metrics.columns if "_std_" in c or c.endswith("_std")]
    rank = [c for c in metrics.columns if c.endswith("_erank") or c.endswith("effective_rank")]
    return std, rank


def loss_chart(metrics: pl.DataFrame) -> go.Figure:
    """One panel per loss part (their scales differ), against the optimiser step."""
    cols = loss_columns(metrics)
    if not cols or "step" not in metrics.columns:
        return empty("no loss values logged yet")
    fig = make_subplots(rows=1, cols=len(cols), subplot_titles=cols, horizontal_spacing=0.05)
    for j, c in enumerate(cols, start=1):
        fig.add_trace(go.Scatter(x=metrics["step"], y=metrics[c], mode="lines", name=c,
                                 line={"color": PALETTE[(j - 1) % len(PALETTE)]}), row=1, col=j)
    fig.update_xaxes(title="step")
    return finish(fig, "Loss parts", height=320, legend=False)


def gamma_chart(gamma: pl.DataFrame) -> go.Figure:
    """The variance target γ_t (left axis) against market volatility (right axis); the train period shaded."""
    if gamma.height == 0:
        return empty("gamma.parquet is empty")
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=gamma["date"], y=gamma["gamma"], name="γ (variance target)",
                             line={"color": PALETTE[0]}), secondary_y=False)
    if "market_vol" in gamma.columns:
        fig.add_trace(go.Scatter(x=gamma["date"], y=gamma["market_vol"], name="market volatility",
                                 line={"color": PALETTE[1], "width": 1}), secondary_y=True)
    if "train" in gamma.columns and gamma["train"].any():
        train = gamma.filter(pl.col("train"))
        fig.add_vrect(x0=train["date"].min(), x1=train["date"].max(), fillcolor="grey", opacity=0.12,
                      line_width=0, annotation_text="train", annotation_position="top left")
    fig.update_yaxes(title="γ", secondary_y=False)
    fig.update_yaxes(title="market vol", secondary_y=True, showgrid=False)
    return finish(fig, "Variance target γ against market volatility")


def collapse_chart(metrics: pl.DataFrame) -> go.Figure:
    """Per-dimension std (left) and effective rank (right) of each view's embeddings over steps."""
    std, rank = collapse_columns(metrics)
    if not (std or rank) or "step" not in metrics.columns:
        return empty("no collapse statistics logged (std / effective rank)")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("per-dimension std", "effective rank"))
    views = list(dict.fromkeys(c.split("_")[0] for c in std + rank))  # explicit, implicit, …: one colour each
    for j, cols in enumerate((std, rank), start=1):
        for c in cols:
            colour = PALETTE[views.index(c.split("_")[0]) % len(PALETTE)]
            dash = "dash" if c.endswith("_mean") else "solid"
            fig.add_trace(go.Scatter(x=metrics["step"], y=metrics[c], mode="lines", name=c,
                                     line={"color": colour, "dash": dash}), row=1, col=j)
    if "gamma" in metrics.columns and std:
        fig.add_trace(go.Scatter(x=metrics["step"], y=metrics["gamma"], mode="lines", name="γ (target std)",
                                 line={"color": "black", "dash": "dot"}), row=1, col=1)
    fig.update_xaxes(title="step")
    return finish(fig, "Collapse monitor", height=400, legend_below=True)


REGIME_ORDER = ("all", "calm", "mid", "stressed", "per_date")


def compare_chart(rows: pl.DataFrame, score: str) -> go.Figure:
    """One score of `dynmix compare`: a group of bars per regime ("all": per-company means over the test period),
    a bar per arm (mean over seeds) with the seeds' standard deviation as its error bar.
    """
    df = rows.filter(pl.col("score") == score)
    if df.height == 0:
        return empty(f"no {score!r} values in compare.json")
    regimes = [r for r in REGIME_ORDER if r in set(df["regime"].to_list())]
    fig = go.Figure()
    for j, arm in enumerate(dict.fromkeys(df["arm"].to_list())):
        a = df.filter(pl.col("arm") == arm)
        by = {r: (m, s, n) for r, m, s, n in zip(a["regime"], a["mean"], a["sd"], a["n"], strict=True)}
        xs = [r for r in regimes if r in by]
        fig.add_trace(go.Bar(
            x=xs, y=[by[r][0] for r in xs], name=arm, marker_color=PALETTE[j % len(PALETTE)],
            error_y={"type": "data", "array": [by[r][1] for r in xs], "visible": True},
            customdata=[by[r][2] for r in xs], hovertemplate="%{x}: %{y:.3f} ± %{error_y.array:.3f} "
            "(n = %{customdata})<extra>" + arm + "</extra>"))
    fig.update_layout(barmode="group")
    fig.update_xaxes(title="test dates (all: per-company means; calm / mid / stressed: per-date, by regime)")
    fig.update_yaxes(title=score)
    return finish(fig, f"{score}: mean ± sd over seeds", height=400)

