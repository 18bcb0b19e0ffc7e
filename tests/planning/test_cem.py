from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from dynmix.config import PlanConfig
from dynmix.errors import DynMIXError
from dynmix.planning.cem import Planner, ar1_mix, shift

X0 = torch.tensor([1.0, -0.5])


@pytest.mark.parametrize("method", ["mppi", "cem"])
def test_converges_to_the_exact_linear_quadratic_optimum(lq, method):
    u_star = lq.optimum(X0)  # (H, 1)
    res = Planner(PlanConfig(method=method, iterations=10)).plan(lambda u: lq.cost(X0, u), 1)
    assert res.actions.shape == (5, 1) and res.mean.shape == (5, 1) and res.costs.shape == (10,)
    assert torch.allclose(res.actions, u_star, atol=0.02), (res.actions.T, u_star.T)
    best = lq.cost(X0, u_star.unsqueeze(1)).item()
    assert lq.cost(X0, res.actions.unsqueeze(1)).item() == pytest.approx(best, rel=1e-3)
    assert res.costs[-1] < res.costs[0]
    assert torch.all(res.std >= PlanConfig().min_std - 1e-7) and torch.all(res.std <= PlanConfig().max_std)


def test_two_dimensional_controls_and_projection(lq):
    lq.B = torch.tensor([[0.5, 0.0], [0.0, 0.5]])
    lq.R = torch.eye(2) * 0.1
    u_star = lq.optimum(X0)
    cfg = PlanConfig(iterations=12, noise_corr=0.0)  # independent steps, as TD-MPC2
    res = Planner(cfg).plan(lambda u: lq.cost(X0, u), 2)
    assert torch.allclose(res.actions, u_star, atol=0.03)
    # a box that binds: the clamped plan stays inside and sits on the bound where the optimum is outside it
    bound = 0.5 * u_star.abs().max().item()
    res = Planner(cfg).plan(lambda u: lq.cost(X0, u), 2, project=lambda x: x.clamp(-bound, bound))
    assert res.actions.abs().max() <= bound + 1e-6
    assert res.elite_actions.abs().max() <= bound + 1e-6
    big = u_star.abs().argmax()
    assert res.actions.flatten()[big].abs() == pytest.approx(bound, abs=1e-3)


def test_warm_start_starts_closer_and_converges_sooner(lq):
    x0 = torch.tensor([4.0, -2.0])  # far from the origin, where a cold plan starts
    cfg = PlanConfig(iterations=8)
    first = Planner(cfg).plan(lambda u: lq.cost(x0, u), 1)
    x1 = lq.A @ x0 + lq.B @ first.actions[0]  # apply the first action, re-plan from the new state
    u_star = lq.optimum(x1)
    best = lq.cost(x1, u_star.unsqueeze(1)).item()
    warm_start = shift(first.mean)
    assert (warm_start - u_star).norm() < 0.5 * u_star.norm()  # the cold start (zeros) is u_star.norm() away
    one = replace(cfg, iterations=1)
    cold = Planner(one).plan(lambda u: lq.cost(x1, u), 1)
    warm = Planner(one).plan(lambda u: lq.cost(x1, u), 1, mean=warm_start)

    def gap(r):
        return lq.cost(x1, r.actions.unsqueeze(1)).item() - best

    assert 0 <= gap(warm) < 0.5 * gap(cold)


@pytest.mark.parametrize("phi", [0.0, 0.8])
def test_sampling_noise_is_ar1_correlated_along_the_horizon(phi):
    seen = []

    def record(u):
        seen.append(u.clone())
        return u.sum((0, 2))

    Planner(PlanConfig(iterations=1, samples=4096, noise_corr=phi)).plan(record, 3)
    noise = seen[0][:, 1:]  # (H, S, R); sample 0 is the mean itself (zeros)
    assert noise.std().item() == pytest.approx(1.0, abs=0.03)
    for h in range(4):
        corr = torch.corrcoef(torch.stack([noise[h].flatten(), noise[h + 1].flatten()]))[0, 1].item()
        assert corr == pytest.approx(phi, abs=0.03)


def test_the_ar1_mixing_matrix_is_the_recursion():
    phi, e = 0.8, torch.randn(6, 7, dtype=torch.float64)
    n = e.clone()
    for h in range(1, 6):
        n[h] = phi * n[h - 1] + (1 - phi**2) ** 0.5 * e[h]
    assert torch.allclose(ar1_mix(6, phi, e) @ e, n, atol=1e-12)


@pytest.mark.parametrize("method", ["mppi", "cem"])
def test_infeasible_samples_never_steer_the_plan(lq, method):
    def cost(u):  # a wall: any sequence with a control above 0.2 is infeasible
        c = lq.cost(X0, u)
        return torch.where((u > 0.2).any(0).any(-1), torch.full_like(c, float("inf")), c)

    res = Planner(PlanConfig(method=method, iterations=8, elites=256)).plan(cost, 1)
    assert torch.isfinite(res.mean).all() and res.actions.max() <= 0.2 + 0.02
    assert torch.isfinite(res.costs).all()


def test_shift_moves_one_step_and_repeats_the_last():
    m = torch.arange(6.0).reshape(3, 2)
    assert torch.equal(shift(m), torch.tensor([[2.0, 3.0], [4.0, 5.0], [4.0, 5.0]]))


def test_seeded_plans_are_deterministic_and_seeds_matter(lq):
    cfg = PlanConfig(iterations=3)
    a = Planner(cfg).plan(lambda u: lq.cost(X0, u), 1)
    b = Planner(cfg).plan(lambda u: lq.cost(X0, u), 1)
    c = Planner(replace(cfg, seed=1)).plan(lambda u: lq.cost(X0, u), 1)
    assert torch.equal(a.actions, b.actions) and torch.equal(a.costs, b.costs)
    assert not torch.equal(a.actions, c.actions)
    g = torch.Generator().manual_seed(7)
    d = Planner(cfg).plan(lambda u: lq.cost(X0, u), 1, generator=g)
    e = Planner(cfg).plan(lambda u: lq.cost(X0, u), 1, generator=torch.Generator().manual_seed(7))
    assert torch.equal(d.actions, e.actions)


def test_elite_trajectories_are_returned_for_the_elites(lq):
    cfg = PlanConfig(iterations=2, samples=64, elites=8)

    def cost(u):
        c = lq.cost(X0, u)
        return c, {"cost": c.expand(u.shape[0], -1), "u": u}

    res = Planner(cfg).plan(cost, 1)
    assert res.trajectories is not None and isinstance(res.trajectories, dict)
    assert res.trajectories["u"].shape == (5, 8, 1) and res.elite_actions.shape == (5, 8, 1)
    assert torch.equal(res.trajectories["u"], res.elite_actions)
    assert torch.allclose(res.trajectories["cost"][0], res.elite_costs)
    assert torch.all(res.elite_costs[1:] >= res.elite_costs[:-1])


def test_bad_settings_and_bad_cost_shapes_raise(lq):
    with pytest.raises(DynMIXError, match="method"):
        Planner(PlanConfig(method="random"))
    with pytest.raises(DynMIXError, match="noise_corr"):
        Planner(PlanConfig(noise_corr=1.0))
    with pytest.raises(DynMIXError, match="elites"):
        Planner(PlanConfig(elites=600))
    with pytest.raises(DynMIXError, match=r"\(S,\)"):
        Planner(PlanConfig(iterations=1)).plan(lambda u: u.sum(-1), 1)
    with pytest.raises(DynMIXError, match="finite"):
        Planner(PlanConfig(iterations=1)).plan(lambda u: torch.full((u.shape[1],), float("nan")), 1)
    with pytest.raises(DynMIXError, match="warm-start"):
        Planner(PlanConfig()).plan(lambda u: lq.cost(X0, u), 1, mean=torch.zeros(3, 1))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_device_follows_the_warm_start_mean(lq):
    x0 = X0.cuda()
    lq.A, lq.B, lq.Q, lq.R = lq.A.cuda(), lq.B.cuda(), lq.Q.cuda(), lq.R.cuda()
    res = Planner(PlanConfig(iterations=10)).plan(lambda u: lq.cost(x0, u), 1, mean=torch.zeros(5, 1, device="cuda"))
    assert res.actions.is_cuda and res.std.is_cuda
    assert torch.allclose(res.actions, lq.optimum(x0), atol=0.02)
