"""Diebold–Mariano, the Model Confidence Set, EWMA and log-HAR on synthetic arrays with a known answer."""

from __future__ import annotations

import numpy as np

from dynmix.forecast.compare import LogHAR, diebold_mariano, ewma_variance, model_confidence_set, qlike_loss


def _garchish(seed: int, n: int = 8, t: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    """(N, T) returns with a persistent true variance, and that variance."""
    rng = np.random.default_rng(seed)
    logv = np.zeros((n, t))
    for k in range(1, t):
        logv[:, k] = 0.97 * logv[:, k - 1] + 0.25 * rng.standard_normal(n)
    var = 1e-4 * np.exp(logv)
    return np.sqrt(var) * rng.standard_normal((n, t)), var


def test_dm_prefers_the_truth_and_cannot_tell_equal_forecasters_apart() -> None:
    rng = np.random.default_rng(0)
    true_var = np.exp(rng.normal(size=(400, 10)))  # (D, N)
    real = true_var * rng.chisquare(5, size=true_var.shape) / 5
    noisy = true_var * np.exp(rng.normal(0, 0.7, size=true_var.shape))
    truth_loss, noisy_loss = qlike_loss(real, true_var).mean(1), qlike_loss(real, noisy).mean(1)
    stat, p = diebold_mariano(noisy_loss, truth_loss, lags=4)
    assert stat > 3 and p < 0.01  # the noisy forecaster has the larger loss, significantly
    stat_rev, p_rev = diebold_mariano(truth_loss, noisy_loss, lags=4)
    assert np.isclose(stat_rev, -stat) and np.isclose(p_rev, p)
    twin = true_var * np.exp(rng.normal(0, 0.7, size=true_var.shape))  # as noisy as `noisy`, independent
    _, p_eq = diebold_mariano(qlike_loss(real, twin).mean(1), noisy_loss, lags=4)
    assert p_eq > 0.05
    assert diebold_mariano(truth_loss, truth_loss, lags=4) == (0.0, 1.0)


def test_mcs_excludes_a_clearly_worse_forecaster_and_keeps_the_best() -> None:
    rng = np.random.default_rng(1)
    base = rng.gamma(2.0, 0.5, size=300)
    losses = {"good": base + rng.normal(0, 0.05, 300), "also_good": base + rng.normal(0, 0.05, 300),
              "bad": base + 1.0 + rng.normal(0, 0.05, 300)}
    kept = model_confidence_set(losses, size=0.1, reps=200, seed=0)
    assert "bad" not in kept and kept and set(kept) <= {"good", "also_good"}


def test_ewma_follows_the_riskmetrics_recursion_and_skips_missing_days() -> None:
    r = np.array([[0.01] * 30 + [np.nan] + [0.02] * 5])
    v = ewma_variance(r, lam=0.94)
    assert np.isnan(v[0, 20]) and np.isclose(v[0, 29], 1e-4)  # constant returns: σ² = r²
    assert v[0, 30] == v[0, 29]  # a missing day keeps σ²
    assert np.isclose(v[0, 31], 0.94 * 1e-4 + 0.06 * 4e-4)


def test_ewma_and_log_har_use_no_data_after_the_origin_and_track_the_variance() -> None:
    r, var = _garchish(0)
    last = 1000
    ew, lh = ewma_variance(r), LogHAR(5).fit(r, last).predict(r)
    changed = r.copy()
    changed[:, 1200:] *= 3.0
    assert np.array_equal(ewma_variance(changed)[:, :1200], ew[:, :1200], equal_nan=True)
    assert np.array_equal(LogHAR(5).fit(changed, last).predict(changed)[:, :1200], lh[:, :1200], equal_nan=True)
    target = var[:, 1001:1400]
    flat = np.full_like(target, np.nanmean(r[:, :last] ** 2))
    for pred in (ew[:, 1000:1399], lh[:, 1000:1399]):  # forecasts made the day before
        assert qlike_loss(target, pred).mean() < qlike_loss(target, flat).mean()
