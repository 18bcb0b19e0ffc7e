"""Global minimum variance: the weights against their closed form, and a better covariance giving a lower
realised volatility on a simulated market."""

from __future__ import annotations

import numpy as np
import pytest

from dynmix.forecast.gmv import REBALANCE, WINDOW, gmv_backtest, gmv_long_only, gmv_weights, pca_factor_cov


def test_gmv_weights_match_the_closed_form() -> None:
    cov = np.diag([1.0, 4.0])  # w ∝ 1/σ²: (4/5, 1/5)
    assert np.allclose(gmv_weights(cov), [0.8, 0.2])
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 6))
    cov = a @ a.T + 0.1 * np.eye(6)
    w = gmv_weights(cov)
    inv = np.linalg.inv(cov) @ np.ones(6)
    assert np.allclose(w, inv / inv.sum()) and w.sum() == pytest.approx(1.0)


def test_long_only_stays_on_the_simplex_and_is_optimal_there() -> None:
    # two assets highly correlated, the second riskier: unconstrained GMV shorts it, long-only does not
    cov = np.array([[1.0, 1.8], [1.8, 4.0]])
    assert gmv_weights(cov)[1] < 0
    w = gmv_long_only(cov)
    assert np.allclose(w, [1.0, 0.0], atol=1e-6)
    rng = np.random.default_rng(1)
    a = rng.normal(size=(8, 3))
    cov = a @ a.T + np.diag(rng.uniform(0.1, 1.0, 8))
    w = gmv_long_only(cov)
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0)
    for _ in range(200):  # no random point of the simplex does better
        v = rng.dirichlet(np.ones(8))
        assert w @ cov @ w <= v @ cov @ v + 1e-10


def test_pca_factor_cov_keeps_the_sample_variances() -> None:
    x = np.random.default_rng(2).normal(size=(300, 5))
    assert np.allclose(np.diag(pca_factor_cov(x, 2)), np.diag(np.cov(x, rowvar=False)))


def test_the_true_covariance_beats_a_wrong_one_out_of_sample() -> None:
    rng = np.random.default_rng(3)
    n, t_all = 12, WINDOW + 400
    vol = np.linspace(0.005, 0.03, n)  # very different risks: GMV should load the quiet names
    raw = rng.normal(size=(n, t_all)) * vol[:, None]
    valid = np.ones((t_all, n), dtype=bool)

    def true_cov(t: int, assets: np.ndarray) -> np.ndarray:
        return np.diag(vol[assets] ** 2)

    def wrong_cov(t: int, assets: np.ndarray) -> np.ndarray:
        return np.diag(vol[assets][::-1] ** 2)  # the risks reversed

    good, count = gmv_backtest(raw, valid, WINDOW, true_cov)
    bad, _ = gmv_backtest(raw, valid, WINDOW, wrong_cov)
    assert count == len(range(WINDOW, t_all - 1, REBALANCE))
    for key in ("ann_vol", "ann_vol_long_only"):
        assert good["world_model"][key] < 0.8 * bad["world_model"][key]
        assert good["world_model"][key] <= good["sample"][key] * 1.05  # the estimates approach the truth
    assert good["sample"] == bad["sample"]  # the other methods do not see the world model
