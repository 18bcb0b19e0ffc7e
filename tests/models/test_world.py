"""The world model's verbs, its Gaussian NLL against torch's dense reference, and that training lowers the NLL."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.distributions import MultivariateNormal

from dynmix.config import WorldConfig
from dynmix.models.world import Heads, WorldModel, gaussian_nll, masked_mean
from dynmix.runs.panel import WorldPanel, origin_dates
from dynmix.train.loop import Engine
from dynmix.train.world import OriginSampler, WorldObjective, mean_nll, world_loss, world_optimizer


def fit_epochs(world: WorldModel, panel: WorldPanel, cfg: WorldConfig, dates: torch.Tensor) -> list[float]:
    """The engine on the world objective; the mean loss of each epoch."""
    sampler = OriginSampler(dates, cfg.dates_per_batch, cfg.seed)
    engine = Engine(WorldObjective(world, panel, cfg), sampler, *world_optimizer(world, cfg, len(sampler)))
    history = []
    for epoch in range(cfg.epochs):
        losses = [float(engine.train_step(batch)["loss"]) for batch in sampler.epoch(epoch)]
        history.append(sum(losses) / len(losses))
    world.eval()
    return history

B, N, E, G = 4, 6, 10, 7
CFG = WorldConfig(latent=8, market_latent=4, hidden=16, loadings=2, rollout=3, epochs=15, dates_per_batch=32, lr=5e-3)


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[0, :2] = False
    return torch.randn(B, N, E, generator=g), mask, torch.randn(B, G, generator=g)


def synthetic_panel(t: int = 400, n: int = 8, seed: int = 0) -> WorldPanel:
    """Returns whose volatility is read from the first representation feature and whose market factor is shared."""
    g = torch.Generator().manual_seed(seed)
    reps = torch.randn(t, n, E, generator=g)
    vol = 0.5 + 1.5 * torch.sigmoid(2 * reps[..., 0])  # (T, N): next day's volatility, known at t
    market = torch.randn(t, generator=g)
    ret = torch.full((t, n), float("nan"))
    ret[1:] = vol[:-1] * (0.6 * market[1:, None] + 0.8 * torch.randn(t - 1, n, generator=g))
    valid = torch.rand(t, n, generator=g) > 0.05
    dates = [dt.date(2020, 1, 1) + dt.timedelta(k) for k in range(t)]
    return WorldPanel(tickers=[f"C{k}" for k in range(n)], dates=dates, reps=reps, valid=valid,
                      market=torch.randn(t, G, generator=g), returns=ret)


def test_verbs_have_documented_shapes() -> None:
    torch.manual_seed(0)
    world = WorldModel(CFG, E, G)
    z = world.encode(*_inputs())
    assert z.company.shape == (B, N, CFG.latent) and z.market.shape == (B, CFG.market_latent)
    z1 = world.next(z)
    assert z1.company.shape == z.company.shape and torch.equal(z1.mask, z.mask)
    assert not torch.allclose(z1.company, z.company)
    h = world.heads(z)
    assert h.mu.shape == (B, N) and h.sigma_idio.shape == (B, N) and h.loadings.shape == (B, N, CFG.loadings)
    assert bool((h.sigma_idio > 0).all())
    steps = world.rollout(z, 4)
    assert len(steps) == 4 and torch.allclose(steps[0].mu, h.mu)
    assert torch.allclose(steps[1].mu, world.heads(z1).mu)
    with pytest.raises(AssertionError, match="reps must be"):
        world.encode(torch.randn(B, N, E + 1), *_inputs()[1:])


def test_market_latent_ignores_masked_companies() -> None:
    torch.manual_seed(0)
    world = WorldModel(CFG, E, G)
    reps, mask, market = _inputs()
    changed = reps.clone()
    changed[0, :2] += 100.0  # masked out on date 0
    a, b = world.encode(reps, mask, market), world.encode(changed, mask, market)
    assert torch.allclose(a.market, b.market)
    assert torch.allclose(masked_mean(torch.ones(1, 3, 2), torch.tensor([[True, False, False]])), torch.ones(1, 2))


def test_covariance_from_heads_is_psd_and_matches_variance() -> None:
    torch.manual_seed(1)
    h = WorldModel(CFG, E, G).heads(WorldModel(CFG, E, G).encode(*_inputs()))
    cov = h.covariance().detach()  # (B, N, N)
    assert torch.allclose(cov, cov.transpose(1, 2))
    assert float(torch.linalg.eigvalsh(cov.double()).min()) > 0
    assert torch.allclose(torch.diagonal(cov, dim1=1, dim2=2), h.variance(), atol=1e-6)


def test_nll_equals_dense_gaussian_on_the_masked_subset() -> None:
    g = torch.Generator().manual_seed(2)
    h = Heads(mu=torch.randn(2, 5, generator=g), sigma_idio=torch.rand(2, 5, generator=g) + 0.2,
              loadings=torch.randn(2, 5, 2, generator=g))
    target = torch.randn(2, 5, generator=g)
    target[1, 3] = float("nan")  # missing return
    mask = torch.tensor([[True, True, False, True, True], [True, True, True, True, True]])
    nll, count = gaussian_nll(h, target, mask)
    ref = 0.0
    for b in range(2):
        m = mask[b] & torch.isfinite(target[b])
        cov = h.covariance()[b][m][:, m].double()
        ref -= float(MultivariateNormal(h.mu[b, m].double(), cov).log_prob(target[b, m].double()))
    assert int(count) == 8
    assert float(nll) == pytest.approx(ref, rel=1e-5)
    empty, zero = gaussian_nll(h, target, torch.zeros(2, 5, dtype=torch.bool))
    assert float(empty) == 0.0 and float(zero) == 0.0


def test_training_lowers_the_nll_and_never_reads_targets_after_the_last_training_date() -> None:
    panel = synthetic_panel()
    torch.manual_seed(0)
    world = WorldModel(CFG, E, G)
    last = 299
    train = origin_dates(panel, 0, last, CFG.rollout)
    assert int(train.max()) + CFG.rollout <= last
    test = origin_dates(panel, last + 1, len(panel.dates) - 1, 1)
    before_train, before_test = mean_nll(world, panel, train), mean_nll(world, panel, test)
    history = fit_epochs(world, panel, CFG, train)
    assert len(history) == CFG.epochs and history[-1] < history[0]
    assert mean_nll(world, panel, train) < before_train - 0.2
    assert mean_nll(world, panel, test) < before_test - 0.2  # it learnt the planted structure, not noise
    # the loss of a batch reads returns up to t + H only: poisoning later returns changes nothing
    t = train[:16]
    poisoned = replace(panel, returns=panel.returns.clone())
    poisoned.returns[int(t.max()) + CFG.rollout + 1 :] = 1e6
    a, _ = world_loss(world, panel, t, CFG)
    b, _ = world_loss(world, poisoned, t, CFG)
    assert float(a.detach()) == pytest.approx(float(b.detach()))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_and_nll_on_cuda_match_the_cpu_definition() -> None:
    panel = synthetic_panel(t=120)
    gpu = replace(panel, reps=panel.reps.cuda(), valid=panel.valid.cuda(), market=panel.market.cuda(),
                  returns=panel.returns.cuda())
    torch.manual_seed(0)
    world = WorldModel(replace(CFG, epochs=2), E, G)
    dates = origin_dates(panel, 0, 100, CFG.rollout)
    cpu_nll = mean_nll(world, panel, dates)
    world.cuda()
    assert mean_nll(world, gpu, dates.cuda()) == pytest.approx(cpu_nll, rel=1e-4)
    history = fit_epochs(world, gpu, replace(CFG, epochs=2), dates.cuda())
    assert all(np.isfinite(h) for h in history)
