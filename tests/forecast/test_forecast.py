"""Volatility scores and baselines: QLIKE/MSE by hand, rolling means, HAR-RV and GARCH(1,1) on simulated GARCH data."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from dynmix.forecast.baselines import HARRV, forward_mean, garch_forecasts, trailing_mean
from dynmix.forecast.service import forecast_table, mse, qlike, volatility_scores

H = 5
LAST = 999  # last training day of the simulated series


def simulate_garch(n: int = 2, t: int = 1400, seed: int = 0) -> np.ndarray:
    """(N, T) GARCH(1,1) daily returns: σ²_t = 2e-6 + 0.1 r²_{t−1} + 0.88 σ²_{t−1}."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, t))
    var = np.full(n, 1e-4)
    for k in range(t):
        out[:, k] = np.sqrt(var) * rng.standard_normal(n)
        var = 2e-6 + 0.1 * out[:, k] ** 2 + 0.88 * var
    return out


@pytest.fixture(scope="module")
def returns() -> np.ndarray:
    return simulate_garch()


@pytest.fixture(scope="module")
def garch(returns: np.ndarray) -> np.ndarray:
    return garch_forecasts(returns, LAST, H)[0]


def test_qlike_and_mse_by_hand() -> None:
    assert qlike(np.array([1.0, 4.0]), np.array([1.0, 4.0])) == 0.0
    # x = 2: 2 − ln 2 − 1 ; x = 0.5: 0.5 − ln 0.5 − 1
    assert qlike(np.array([2.0, 1.0]), np.array([1.0, 2.0])) == pytest.approx(((1 - np.log(2)) + (np.log(2) - 0.5)) / 2)
    assert mse(np.array([1.0, 2.0]), np.array([0.0, 0.0])) == pytest.approx(2.5)
    frame = pl.DataFrame({"date": [dt.date(2020, 1, 1)] * 2, "ticker": ["A", "B"], "realised": [0.2, 0.3],
                          "dynmix": [0.2, 0.3], "har": [0.4, 0.3], "garch": [0.2, 0.15]})
    scores = volatility_scores(frame)
    assert scores["dynmix"] == {"qlike": 0.0, "mse": 0.0}
    assert scores["har"]["qlike"] == pytest.approx((0.25 - np.log(0.25) - 1) / 2)
    # MSE on the daily variance in percent²: annualised variance x 1e4 / 252
    assert scores["har"]["mse"] == pytest.approx(((0.04 - 0.16) * 1e4 / 252) ** 2 / 2)
    assert "| har |" in forecast_table({"forecast": {"volatility": {"h5": scores}}})


def test_trailing_and_forward_means_by_hand() -> None:
    x = np.array([[1.0, 2.0, np.nan, 4.0, 5.0, 6.0]])
    assert np.allclose(trailing_mean(x, 2, min_obs=1), [[np.nan, 1.5, 2.0, 4.0, 4.5, 5.5]], equal_nan=True)
    assert np.allclose(trailing_mean(x, 2), [[np.nan, 1.5, np.nan, np.nan, 4.5, 5.5]], equal_nan=True)
    # mean of t+1 .. t+2: origin 0 -> (2, nan): missing; origin 2 -> (4, 5)
    assert np.allclose(forward_mean(x, 2), [[np.nan, np.nan, 4.5, 5.5, np.nan, np.nan]], equal_nan=True)


def _test_scores(returns: np.ndarray, forecast: np.ndarray) -> float:
    realised = forward_mean(returns**2, H)
    cols = np.arange(LAST + 1, returns.shape[1] - H)
    real, pred = realised[:, cols], forecast[:, cols]
    ok = np.isfinite(real) & np.isfinite(pred) & (real > 0)
    return qlike(real[ok], pred[ok])


def test_garch_beats_a_constant_forecast_out_of_sample(returns: np.ndarray, garch: np.ndarray) -> None:
    assert np.isfinite(garch[:, LAST + 1 : -H]).all()
    constant = np.broadcast_to((returns[:, : LAST + 1] ** 2).mean(1, keepdims=True), returns.shape)
    assert _test_scores(returns, garch) < _test_scores(returns, constant) - 0.05


def test_garch_is_fitted_on_train_only_and_never_looks_ahead(returns: np.ndarray, garch: np.ndarray) -> None:
    origin = LAST + 100
    shocked = returns.copy()
    shocked[:, origin + 1 :] *= 10.0  # a test-period shock after the origin
    again, _ = garch_forecasts(shocked, LAST, H)
    assert np.allclose(again[:, : origin + 1], garch[:, : origin + 1], rtol=1e-10, equal_nan=True)
    assert not np.allclose(again[:, origin + 2 :], garch[:, origin + 2 :])


def test_garch_skips_companies_with_too_little_training_history(returns: np.ndarray) -> None:
    short = returns[:, :600].copy()
    short[1, :450] = np.nan  # 150 training returns
    out, notes = garch_forecasts(short, 299 + 150, H)
    assert np.isnan(out[1]).all() and np.isfinite(out[0, 300:]).any()
    assert any("company 1" in n for n in notes)


def test_har_uses_training_targets_only_and_beats_a_constant(returns: np.ndarray) -> None:
    har = HARRV(H).fit(returns, LAST)
    shocked = returns.copy()
    shocked[:, LAST + 1 :] *= 5.0
    assert np.allclose(HARRV(H).fit(shocked, LAST).coef_, har.coef_, rtol=0, atol=0)
    moved = returns.copy()
    moved[:, LAST - 2] *= 5.0  # a training target changes the fit
    assert not np.allclose(HARRV(H).fit(moved, LAST).coef_, har.coef_)
    assert har.coef_[1:].sum() > 0.5  # persistent variance
    pred = har.predict(returns)
    assert (pred[np.isfinite(pred)] > 0).all()
    constant = np.broadcast_to((returns[:, : LAST + 1] ** 2).mean(1, keepdims=True), returns.shape)
    assert _test_scores(returns, pred) < _test_scores(returns, constant)
