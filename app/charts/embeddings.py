"""Charts of the embedding map: 2-D scatter of companies and similarity of neighbours over time."""

from __future__ import annotations

import plotly.express as px
import plotly.graph_objects as go
import polars as pl

from app.charts.style import QUALITATIVE, empty, finish

LABELS_UP_TO = 60  # tickers are written beside their points up to this many companies


def embedding_map(points: pl.DataFrame, colour: str, title: str, highlight: str | None = None) -> go.Figure:
    """WebGL scatter of `points` (ticker, x, y, `colour`, …): one colour per group, the highlighted company ringed."""
    if points.height == 0:
        return empty("no embeddings for this choice")
    df = points.with_columns(pl.col(colour).cast(pl.String))
    hover = [c for c in ("sector", "cluster") if c in df.columns]
    fig = px.scatter(df, x="x", y="y", color=colour, hover_name="ticker", hover_data=hover,
                     text="ticker" if df.height <= LABELS_UP_TO else None,
                     category_orders={colour: sorted(df[colour].unique().to_list())},
                     color_discrete_sequence=QUALITATIVE, render_mode="webgl")  # WebGL: thousands of points
    fig.update_traces(marker={"size": 10, "opacity": 0.85}, textposition="top center", textfont={"size": 10})
    if highlight is not None:
        row = df.filter(pl.col("ticker") == highlight)
        if row.height:
            fig.add_trace(go.Scattergl(x=row["x"], y=row["y"], mode="markers", name=highlight, showlegend=False,
                                     marker={"size": 20, "color": "rgba(0,0,0,0)",
                                             "line": {"color": "black", "width": 2}}, hoverinfo="skip"))
    fig.update_xaxes(title="component 1", zeroline=False)
    fig.update_yaxes(title="component 2", zeroline=False)
    return finish(fig, title, height=520)


def similarity_chart(sim: pl.DataFrame, ticker: str) -> go.Figure:
    """Cosine similarity of `ticker` with each neighbour, date by date."""
    if sim.height == 0:
        return empty(f"no common dates between {ticker} and its neighbours")
    fig = px.line(sim.sort("ticker", "date"), x="date", y="similarity", color="ticker",
                  color_discrete_sequence=QUALITATIVE)
    fig.update_traces(line={"width": 1.2})
    fig.update_yaxes(title="cosine similarity", range=[-1.05, 1.05])
    fig.update_xaxes(title=None)
    return finish(fig, f"Similarity of {ticker} to its nearest neighbours over time")
