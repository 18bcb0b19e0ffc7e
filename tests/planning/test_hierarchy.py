"""The two-level planner's pieces: groups from embeddings, monthly aggregation, group forecasts exact for
within-group weights, and a tactical plan that tracks the strategic target."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from dynmix.config import PlanConfig
from dynmix.errors import DynMIXError
from dynmix.models.risk import Forecast
from dynmix.planning.hierarchy import aggregate, group_assets, group_forecast, within_weights
from dynmix.planning.portfolio import PortfolioMPC


def random_forecast(H: int, A: int, k: int = 2, seed: int = 0) -> Forecast:
    g = torch.Generator().manual_seed(seed)
    return Forecast(mu=5e-4 * torch.randn(H, A, generator=g, dtype=torch.float64),
                    loadings=0.01 * torch.randn(H, A, k, generator=g, dtype=torch.float64),
                    sigma_idio=0.01 + 0.01 * torch.rand(H, A, generator=g, dtype=torch.float64))


def test_groups_recover_planted_clusters_of_embeddings() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (3, 8))
    truth = np.repeat([0, 1, 2], 5)
    reps = centres[truth] + 0.05 * rng.normal(0, 1, (15, 8))
    labels = group_assets(reps, 3)
    assert len(set(zip(labels, truth, strict=True))) == 3  # one label per planted cluster
    assert set(group_assets(reps, 50)) <= set(range(15)) and group_assets(reps[:1], 3).tolist() == [0]


def test_aggregate_sums_means_and_variances_over_each_block_of_days() -> None:
    daily = random_forecast(6, 4)
    monthly = aggregate(daily, 3)
    assert monthly.mu.shape == (2, 4) and monthly.loadings.shape == (2, 4, 6)
    assert torch.allclose(monthly.mu[1], daily.mu[3:].sum(0))
    w = torch.softmax(torch.randn(1, 3, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64), -1)
    var_days = daily.variance(w.expand(6, -1, -1))  # (6, 3): the same weights held every day
    assert torch.allclose(monthly.variance(w.expand(2, -1, -1))[0], var_days[:3].sum(0))
    with pytest.raises(DynMIXError, match="whole number"):
        aggregate(daily, 4)


def test_group_forecast_is_exact_for_weights_spread_within_groups() -> None:
    fc = random_forecast(2, 6)
    labels = np.array([0, 0, 1, 1, 1, 2])
    within = within_weights(fc, labels)  # (3, 6)
    assert torch.allclose(within.sum(1), torch.ones(3, dtype=within.dtype))
    assert torch.all((within > 0) == torch.nn.functional.one_hot(torch.as_tensor(labels)).T.bool())
    var = fc.loadings[0].pow(2).sum(-1) + fc.sigma_idio[0].pow(2)
    assert within[0, 0] / within[0, 1] == pytest.approx(float(var[1] / var[0]))  # inverse variance
    gf = group_forecast(fc, within)
    b = torch.tensor([[[0.5, 0.3, 0.2]]], dtype=torch.float64).expand(2, 1, 3)  # budgets (M, S, G)
    w = b @ within  # (M, 1, A)
    assert torch.allclose(gf.variance(b), fc.variance(w))
    assert torch.allclose((gf.mu.unsqueeze(1) * b).sum(-1), (fc.mu.unsqueeze(1) * w).sum(-1))


def test_tactical_plan_tracks_the_target_when_tracking_dominates() -> None:
    r = random_forecast(5, 8, seed=3)
    fc = Forecast(r.mu.float(), r.loadings.float(), r.sigma_idio.float())
    target = torch.tensor([0.4, 0.3, 0.1, 0.1, 0.05, 0.05, 0.0, 0.0])
    w_prev = torch.ones(8) / 8
    cfg = PlanConfig(cost=0.0, risk_aversion=1.0, iterations=8)
    free = PortfolioMPC(cfg).plan(fc, w_prev)
    tracked = PortfolioMPC(replace(cfg, track_coeff=1e4)).plan(fc, w_prev, target=target)
    assert (tracked.first - target).abs().sum() < 0.5 * (free.first - target).abs().sum()
    assert (tracked.first - target).abs().sum() < 0.25
