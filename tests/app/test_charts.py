"""Chart builders take frames and return Plotly figures with the expected traces; empty input says so."""

from __future__ import annotations

import datetime as dt

import numpy as np
import plotly.graph_objects as go
import polars as pl

from app.charts import data, embeddings, forecasts, planner, training


def _dates(n):
    return [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(n)]


def _is_empty(fig: go.Figure) -> bool:
    return not fig.data and len(fig.layout.annotations) == 1


def test_data_charts():
    prices = pl.DataFrame({"date": _dates(4) * 2, "ticker": ["A"] * 4 + ["B"] * 4,
                           "adj_close": [10.0, 11.0, 12.0, 11.0, 5.0, 5.0, 6.0, 7.0]})
    fig = data.price_chart(prices)
    assert {t.name for t in fig.data} == {"A", "B"}
    assert fig.data[0].y[0] == 100.0 and fig.data[0].y[1] == 110.0
    ret = data.returns_chart(prices)
    assert len(ret.data[0].y) == 3 and np.isclose(ret.data[0].y[0], np.log(1.1))
    monthly = pl.DataFrame({"ticker": ["A", "A", "B"], "month": [dt.date(2024, 1, 1), dt.date(2024, 2, 1)] * 1
                            + [dt.date(2024, 1, 1)], "share": [1.0, 0.5, 0.25]})
    heat = data.coverage_heatmap(monthly)
    assert list(heat.data[0].y) == ["A", "B"] and heat.data[0].z.shape == (2, 2)
    assert _is_empty(data.price_chart(prices.clear())) and _is_empty(data.coverage_heatmap(monthly.clear()))


def test_training_charts():
    metrics = pl.DataFrame({"step": [1.0, 2.0], "loss": [3.0, 2.0], "invariance": [1.0, 0.5], "gamma": [1.0, 1.1],
                            "implicit_std_min": [0.1, 0.2], "implicit_erank": [2.0, 3.0], "aux_loss": [0.1, 0.1]})
    assert training.loss_columns(metrics) == ["loss", "invariance", "aux_loss"]
    assert len(training.loss_chart(metrics).data) == 3
    names = [t.name for t in training.collapse_chart(metrics).data]
    assert names == ["implicit_std_min", "implicit_erank", "γ (target std)"]
    gamma = pl.DataFrame({"date": _dates(3), "gamma": [1.0, 1.2, 0.9], "market_vol": [0.1, 0.2, 0.1],
                          "train": [True, True, False]})
    fig = training.gamma_chart(gamma)
    assert len(fig.data) == 2 and len(fig.layout.shapes) == 1  # the shaded train period
    assert _is_empty(training.loss_chart(pl.DataFrame()))


def test_embedding_and_forecast_charts():
    points = pl.DataFrame({"ticker": ["A", "B", "C"], "x": [0.0, 1.0, 2.0], "y": [0.0, 1.0, 0.0],
                           "sector": ["S", "S", "T"]})
    fig = embeddings.embedding_map(points, "sector", "map", highlight="C")
    assert [t.name for t in fig.data] == ["S", "T", "C"]
    assert {t.type for t in fig.data} == {"scattergl"}  # WebGL: a 5,000-company map stays responsive
    sim = pl.DataFrame({"date": _dates(2) * 2, "ticker": ["B", "B", "C", "C"], "similarity": [0.5, 0.6, 0.1, 0.2]})
    assert len(embeddings.similarity_chart(sim, "A").data) == 2
    vol = pl.DataFrame({"date": _dates(2) * 2, "ticker": ["A", "A", "B", "B"], "realised": [0.2] * 4,
                        "dynmix": [0.21] * 4, "har": [0.19] * 4, "garch": [0.22] * 4})
    assert [t.name for t in forecasts.vol_forecast_chart(vol, "B").data] == ["realised", "dynmix", "har", "garch"]
    assert _is_empty(forecasts.vol_forecast_chart(vol, "Z"))
    surprise = pl.DataFrame({"date": _dates(3), "surprise": [1.0, 2.0, 1.5], "market_vol": [0.1, 0.3, 0.2]})
    assert len(forecasts.surprise_chart(surprise).data) == 2


def test_planner_charts():
    weights = pl.DataFrame({"ticker": ["A", "B"] * 2, "step": [1, 1, 2, 2], "weight": [0.6, 0.4, 0.5, 0.5]})
    assert {t.name for t in planner.planned_weights_chart(weights).data} == {"A", "B"}
    traj = pl.DataFrame({"sample": [0, 0, 1, 1], "step": [1, 2, 1, 2], "ret": [0.1, 0.1, 0.0, -0.1],
                         "vol": [0.01] * 4})
    fig = planner.trajectories_chart(traj)
    mean = [t for t in fig.data if t.name == "mean cumulative"][0]
    assert np.allclose(mean.y, [0.05, (1.21 - 1 + 0.9 - 1) / 2])
    equity = pl.DataFrame({"date": _dates(2) * 2, "strategy": ["x", "x", "y", "y"], "equity": [1.0, 1.1, 1.0, 0.9]})
    assert {t.name for t in planner.equity_chart(equity).data} == {"x", "y"}
    held = pl.DataFrame({"date": _dates(1) * 3, "strategy": ["x"] * 3, "ticker": ["A", "B", "C"],
                         "weight": [0.5, 0.3, 0.2]})
    area = planner.weights_area_chart(held, "x", top=2)
    assert {t.name for t in area.data} == {"A", "B", "other"}
    assert _is_empty(planner.weights_area_chart(held, "nope"))
