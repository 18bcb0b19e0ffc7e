"""Inputs of the planner: simple-return moments from log-return forecasts, the skill (IC) of a forecast measured
on the training period, and the shrinkage it implies."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dynmix.models.risk import Forecast
from dynmix.planning.skill import NO_SKILL, Skill, measure_skill, shrink, trailing_mean_skill


def test_simple_from_log_matches_monte_carlo_moments() -> None:
    g = torch.Generator().manual_seed(0)
    A, k = 4, 2
    mu = torch.tensor([[0.002, -0.001, 0.0005, 0.003]], dtype=torch.float64)  # (1, A) daily log means
    B = 0.01 * torch.randn(1, A, k, generator=g, dtype=torch.float64)
    sig = torch.tensor([[0.01, 0.02, 0.015, 0.03]], dtype=torch.float64)
    simple = Forecast(mu, B, sig).simple_from_log()
    n = 400_000
    x = mu[0] + torch.randn(n, k, generator=g, dtype=torch.float64) @ B[0].T + sig[0] * torch.randn(
        n, A, generator=g, dtype=torch.float64)
    r = torch.expm1(x)
    assert torch.allclose(simple.mu[0], r.mean(0), atol=1e-4)  # the lognormal mean, exp(μ + s²/2) − 1
    assert float(simple.mu[0, 3] - mu[0, 3]) > 0.5 * float(B[0, 3].pow(2).sum() + sig[0, 3] ** 2)  # not the log mean
    cov = B[0] * (1 + simple.mu[0]).unsqueeze(-1)
    dense = cov @ cov.T + torch.diag((sig[0] * (1 + simple.mu[0])) ** 2)
    assert torch.allclose(dense, torch.cov(r.T), rtol=0.05, atol=2e-6)


def test_skill_of_an_informative_and_of_a_useless_forecast() -> None:
    rng = np.random.default_rng(0)
    D, A = 300, 20
    realised = rng.normal(0, 0.02, (D, A))
    good = measure_skill(realised + rng.normal(0, 0.02, (D, A)), realised, realised)
    useless = measure_skill(rng.normal(0, 1, (D, A)), realised, realised)
    assert good.ic > 0.6 and good.origins == D
    assert abs(useless.ic) < 3 * useless.ic_se + 0.01
    assert good.dispersion == pytest.approx(0.02, rel=0.05)
    holes = realised.copy()
    holes[:, :18] = np.nan  # 2 assets left: no origin can be scored
    assert measure_skill(realised, holes, realised).origins == 0


def test_shrink_gives_grinold_alpha_and_zero_without_skill() -> None:
    mu = torch.tensor([[0.01, 0.0, -0.01, 0.02], [0.0, 0.0, 0.0, 0.0]])
    fc = Forecast(mu, torch.zeros(2, 4, 1), torch.full((2, 4), 0.01))
    skill = Skill(ic=0.05, ic_se=0.01, origins=100, dispersion=0.02)
    out = shrink(fc, skill).mu
    assert out[0].mean().abs() < 1e-9 and out[0].std(unbiased=False) == pytest.approx(0.05 * 0.02, rel=1e-5)
    assert torch.equal(out[0].argsort(), mu[0].argsort())  # the ranking is kept
    assert torch.all(out[1] == 0)  # a flat forecast says nothing
    assert torch.all(shrink(fc, Skill(-0.02, 0.01, 100, 0.02)).mu == 0)  # negative skill: no view
    assert torch.all(shrink(fc, NO_SKILL).mu == 0)
    weekly = shrink(fc, Skill(ic=0.05, ic_se=0.01, origins=100, dispersion=0.02, horizon=4)).mu
    assert torch.allclose(weekly, out / 2)  # an IC of 4-day returns is worth half as much a day
    assert torch.equal(shrink(fc, skill).loadings, fc.loadings)


def test_trailing_mean_skill_finds_persistent_drifts_and_not_noise() -> None:
    rng = np.random.default_rng(1)
    T, A = 1500, 15
    drift = rng.normal(0, 0.003, A)  # each asset keeps its own mean: the trailing mean forecasts it
    persistent = drift + rng.normal(0, 0.01, (T, A))
    noise = rng.normal(0.0005, 0.01, (T, A))
    s1 = trailing_mean_skill(persistent, lookback=250, horizon=5, last=1000)
    s0 = trailing_mean_skill(noise, lookback=250, horizon=5, last=1000)
    assert s1.origins == s0.origins == len(range(250, 1000 - 5 + 2, 5)) and s1.horizon == 5
    assert s1.ic > 0.2 and s1.ic > s1.ic_se * 5
    assert abs(s0.ic) < 4 * s0.ic_se
    late = persistent.copy()
    late[:900, 0] = np.nan  # an asset listed late is left out until its window is whole
    assert math.isfinite(trailing_mean_skill(late, 250, 5, 1000).ic)
