"""Shared look of the dashboard's figures."""

from __future__ import annotations

import plotly.express as px
import plotly.graph_objects as go

HEIGHT = 380
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
QUALITATIVE = [*px.colors.qualitative.D3, *px.colors.qualitative.Dark2]  # groups (sectors, tickers, strategies)


def finish(fig: go.Figure, title: str, *, height: int = HEIGHT, legend: bool = True,
           legend_below: bool = False) -> go.Figure:
    """Title, height, compact margins and a horizontal legend above (or below) the plot."""
    place = ({"yanchor": "top", "y": -0.22, "xanchor": "left", "x": 0.0} if legend_below
             else {"yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0})
    fig.update_layout(
        title={"text": title, "x": 0.0, "xanchor": "left"},
        height=height,
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
        showlegend=legend,
        legend={"orientation": "h", "title": None, **place},
        hovermode="closest",
    )
    return fig


def empty(message: str, *, height: int = 200) -> go.Figure:
    """A blank figure that says why there is nothing to plot."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return finish(fig, "", height=height, legend=False)
