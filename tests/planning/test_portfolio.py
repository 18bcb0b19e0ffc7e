from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from dynmix.config import PlanConfig
from dynmix.errors import DynMIXError
from dynmix.models.risk import Forecast, StaticRiskModel
from dynmix.planning.portfolio import PortfolioMPC

FREE = PlanConfig(risk_aversion=0.0, cost=0.0)  # only the expected return counts


def diagonal(mu: list[float], sigma: list[float]) -> StaticRiskModel:
    return StaticRiskModel(torch.tensor(mu), torch.zeros(len(mu), 1), torch.tensor(sigma))


def random_model(n_assets: int, k: int = 3, seed: int = 0) -> StaticRiskModel:
    g = torch.Generator().manual_seed(seed)
    mu = 5e-4 * torch.randn(n_assets, generator=g)
    loadings = 0.01 * torch.randn(n_assets, k, generator=g)
    sigma = 0.01 + 0.01 * torch.rand(n_assets, generator=g)
    return StaticRiskModel(mu, loadings, sigma)


@pytest.mark.parametrize("method", ["mppi", "cem"])
def test_without_risk_or_costs_the_plan_concentrates_on_the_best_asset(method):
    model = diagonal([0.001, 0.002, 0.0005, 0.0015], [0.01] * 4)
    plan = PortfolioMPC(replace(FREE, method=method)).plan(model.forecast(5), torch.full((4,), 0.25))
    assert plan.weights.shape == (5, 4) and plan.first.shape == (4,)
    assert torch.all(plan.weights.argmax(1) == 1)
    assert plan.first[1] > 0.9


@pytest.mark.parametrize("method", ["mppi", "cem"])
def test_high_risk_aversion_with_equal_mu_gives_the_minimum_variance_portfolio(method):
    sigma = torch.tensor([0.01, 0.02, 0.03])
    exact = sigma**-2 / (sigma**-2).sum()  # long-only min variance of a diagonal Σ: w ∝ 1/σ²
    model = diagonal([3e-4] * 3, sigma.tolist())
    cfg = replace(FREE, method=method, risk_aversion=100.0, iterations=10)
    plan = PortfolioMPC(cfg).plan(model.forecast(5), torch.ones(3) / 3)
    assert torch.allclose(plan.weights, exact.expand(5, -1), atol=0.04), (plan.weights, exact)
    exact_vol = (exact**2 * sigma**2).sum().sqrt()
    assert torch.allclose(plan.pred_vol, exact_vol.expand(5), rtol=0.03)


def test_min_variance_agrees_with_the_dense_covariance_of_a_factor_model():
    model = random_model(6, k=2, seed=1)
    f = model.forecast(5)
    w = torch.softmax(torch.randn(5, 7, 6, generator=torch.Generator().manual_seed(2)), dim=-1)  # (H, S, A)
    cov = model.loadings @ model.loadings.T + torch.diag(model.sigma_idio**2)  # (A, A), dense, only for checking
    dense = torch.einsum("hsa,ab,hsb->hs", w, cov, w)
    assert torch.allclose(f.variance(w), dense, rtol=1e-5)


def test_higher_transaction_costs_reduce_turnover_from_the_current_weights():
    model = random_model(8, seed=3)
    w_prev = torch.softmax(torch.randn(8, generator=torch.Generator().manual_seed(4)), dim=0)
    turnover = []
    for kappa in (0.0, 1e-3, 1e-2):
        plan = PortfolioMPC(replace(PlanConfig(risk_aversion=1.0), cost=kappa)).plan(model.forecast(5), w_prev)
        turnover.append((plan.first - w_prev).abs().sum().item() + plan.trajectories["turnover"][1:, 0].sum().item())
    assert turnover[0] > turnover[1] > turnover[2]
    assert turnover[2] < 0.05


def test_long_only_weights_stay_on_the_simplex():
    model = random_model(30, seed=5)
    plan = PortfolioMPC(PlanConfig(iterations=2)).plan(model.forecast(5), torch.zeros(30))
    for w in (plan.weights, plan.trajectories["weights"]):
        assert torch.all(w >= 0)
        assert torch.allclose(w.sum(-1), torch.ones(w.shape[:-1]), atol=1e-5)
    assert plan.trajectories["weights"].shape == (5, 64, 30)
    assert plan.trajectories["ret"].shape == plan.trajectories["vol"].shape == (5, 64)


@pytest.mark.parametrize("gross", [1.0, 1.6])
def test_long_short_weights_respect_net_exposure_and_the_gross_limit(gross):
    model = random_model(10, seed=6)
    cfg = PlanConfig(long_only=False, gross_limit=gross, risk_aversion=0.5, cost=0.0)
    plan = PortfolioMPC(cfg).plan(model.forecast(5), torch.ones(10) / 10)
    for w in (plan.weights, plan.trajectories["weights"]):
        assert torch.allclose(w.sum(-1), torch.ones(w.shape[:-1]), atol=1e-5)
        assert torch.all(w.abs().sum(-1) <= gross + 1e-5)
    if gross > 1:  # with a loose limit and no costs the plan uses shorts to chase returns
        assert (plan.weights < -1e-3).any()
    mpc = PortfolioMPC(cfg)
    w0 = torch.tensor([0.7, -0.2, 0.5] + [0.0] * 7) if gross > 1 else torch.ones(10) / 10
    assert torch.allclose(mpc.decode(mpc.encode(w0)), w0, atol=0.03)


def test_target_vol_penalty_moves_predicted_vol_toward_the_target():
    model = diagonal([1e-3, 1e-5], [0.02, 0.001])  # a risky asset (32 % a year) and a near-cash one
    w_prev = torch.tensor([0.5, 0.5])
    free = PortfolioMPC(FREE).plan(model.forecast(5), w_prev)
    aimed = PortfolioMPC(replace(FREE, target_vol=0.10, target_vol_coeff=10.0)).plan(model.forecast(5), w_prev)
    annual = 252**0.5
    free_vol, aimed_vol = free.pred_vol.mean() * annual, aimed.pred_vol.mean() * annual
    assert free_vol > 0.25
    assert abs(aimed_vol - 0.10) < 0.02


def test_warm_start_from_the_previous_plan_and_seeded_determinism():
    model = random_model(12, seed=7)
    f, cash = model.forecast(5), torch.zeros(12)
    a = PortfolioMPC(PlanConfig()).plan(f, cash)
    assert torch.equal(a.weights, PortfolioMPC(PlanConfig()).plan(f, cash).weights)
    one = PortfolioMPC(PlanConfig(iterations=1))
    warm, cold = one.plan(f, cash, prev_mean=a.mean), one.plan(f, cash)  # cold starts from equal weights

    def cost(plan):
        return one.costs(f, cash, plan.weights.unsqueeze(1))[0].item()

    assert cost(warm) < cost(cold)
    assert warm.result.costs[0] < cold.result.costs[0]


def test_sample_estimates_reproduce_the_sample_covariance_with_all_factors():
    x = torch.randn(300, 4, generator=torch.Generator().manual_seed(8), dtype=torch.float64) * 0.01
    model = StaticRiskModel.from_returns(x, factors=4)
    cov = model.loadings @ model.loadings.T + torch.diag(model.sigma_idio**2)
    assert torch.allclose(cov, torch.cov(x.T), atol=1e-10)
    assert torch.allclose(model.mu, x.mean(0))
    small = StaticRiskModel.from_returns(x, factors=2)
    assert small.loadings.shape == (4, 2)
    assert torch.allclose(torch.diag(small.loadings @ small.loadings.T) + small.sigma_idio**2, x.var(0), rtol=1e-6)


def test_shapes_and_horizon_are_checked():
    model = random_model(3)
    with pytest.raises(DynMIXError, match="horizon"):
        PortfolioMPC(PlanConfig()).plan(model.forecast(4), torch.ones(3) / 3)
    with pytest.raises(AssertionError, match="w_prev"):
        PortfolioMPC(PlanConfig()).plan(model.forecast(5), torch.ones(4) / 4)
    with pytest.raises(AssertionError, match="sigma_idio"):
        Forecast(torch.zeros(5, 3), torch.zeros(5, 3, 1), torch.zeros(5, 2))
    with pytest.raises(DynMIXError, match="gross_limit"):
        PortfolioMPC(PlanConfig(long_only=False, gross_limit=0.5))


def test_min_risk_ignores_mu_and_finds_the_minimum_variance_portfolio():
    sigma = torch.tensor([0.01, 0.02, 0.03])
    exact = sigma**-2 / (sigma**-2).sum()
    cfg = PlanConfig(objective="min_risk", risk_aversion=100.0, cost=0.0, iterations=10)
    tilted = diagonal([0.01, 0.0, 0.02], sigma.tolist())  # large μ̂ that mean-variance would chase
    plan = PortfolioMPC(cfg).plan(tilted.forecast(5), torch.ones(3) / 3)
    assert torch.allclose(plan.weights, exact.expand(5, -1), atol=0.04)
    chased = PortfolioMPC(replace(cfg, objective="mean_variance", risk_aversion=1.0)).plan(
        tilted.forecast(5), torch.ones(3) / 3)
    assert chased.first[2] > 0.5


def test_target_vol_objective_holds_the_target_without_risk_aversion():
    model = diagonal([1e-3, 1e-5], [0.02, 0.001])
    cfg = PlanConfig(objective="target_vol", target_vol=0.12, target_vol_coeff=10.0, risk_aversion=1e6, cost=0.0)
    plan = PortfolioMPC(cfg).plan(model.forecast(5), torch.tensor([0.5, 0.5]))
    assert abs(plan.pred_vol.mean() * 252**0.5 - 0.12) < 0.02  # ρ = 1e6 would force cash-like vol if it counted
    with pytest.raises(DynMIXError, match="needs plan.target_vol"):
        PortfolioMPC(PlanConfig(objective="target_vol"))
    with pytest.raises(DynMIXError, match="objective must be one of"):
        PortfolioMPC(PlanConfig(objective="max_fun"))


def test_turnover_budget_limits_each_step_trade():
    sigma = torch.tensor([0.01, 0.02, 0.03, 0.04])
    model = diagonal([0.0] * 4, sigma.tolist())
    w_prev = torch.tensor([0.0, 0.0, 0.1, 0.9])  # far from the minimum-variance weights
    cfg = PlanConfig(objective="min_risk", risk_aversion=100.0, cost=0.0, iterations=8)
    free = PortfolioMPC(cfg).plan(model.forecast(5), w_prev)
    budget = PortfolioMPC(replace(cfg, turnover_budget=0.2, budget_coeff=10.0)).plan(model.forecast(5), w_prev)
    free_first = (free.first - w_prev).abs().sum()
    capped_first = (budget.first - w_prev).abs().sum()
    assert free_first > 0.8 and capped_first < 0.3
    assert budget.trajectories["turnover"][:, 0].max() < 0.3
    later = (budget.weights[-1] - w_prev).abs().sum()
    assert later > capped_first  # it gets there over the horizon, a budget at a time


def test_max_weight_caps_every_weight_and_cap_simplex_is_a_projection():
    from dynmix.planning.portfolio import cap_simplex

    model = diagonal([0.003, 0.0, 0.0, 0.0, 0.0, 0.0], [0.01] * 6)  # one asset it would concentrate on
    plan = PortfolioMPC(replace(FREE, max_weight=0.3)).plan(model.forecast(5), torch.ones(6) / 6)
    for w in (plan.weights, plan.trajectories["weights"]):
        assert torch.all(w <= 0.3 + 1e-5) and torch.allclose(w.sum(-1), torch.ones(w.shape[:-1]), atol=1e-5)
    assert plan.first[0] > 0.29
    w = torch.softmax(3 * torch.randn(50, 10, generator=torch.Generator().manual_seed(0)), dim=-1)
    c = cap_simplex(w, 0.15)
    assert torch.all(c <= 0.15 + 1e-6) and torch.allclose(c.sum(-1), torch.ones(50), atol=1e-6)
    assert torch.allclose(cap_simplex(c, 0.15), c, atol=1e-6)  # feasible weights stay as they are
    assert torch.allclose(cap_simplex(w, 0.01), torch.full_like(w, 0.1))  # below 1/A: equal weights
    with pytest.raises(DynMIXError, match="max_weight"):
        PortfolioMPC(PlanConfig(long_only=False, gross_limit=1.5, max_weight=0.2))


def test_hold_check_keeps_the_current_weights_when_trading_does_not_pay():
    model = diagonal([1e-4, 1.2e-4, 0.9e-4, 1.1e-4], [0.01] * 4)  # nearly equal assets: a move gains ~nothing
    w_prev = torch.tensor([0.3, 0.2, 0.25, 0.25])
    cfg = PlanConfig(risk_aversion=1.0, cost=1e-2)
    held = PortfolioMPC(cfg).plan(model.forecast(5), w_prev)
    assert torch.equal(held.first, w_prev) and torch.equal(held.weights, w_prev.expand(5, -1))
    sampled = PortfolioMPC(replace(cfg, hold_check=False)).plan(model.forecast(5), w_prev)
    assert not torch.equal(sampled.first, w_prev)  # the sampled plan always moves a little
    mpc = PortfolioMPC(cfg)
    assert mpc.costs(model.forecast(5), w_prev, held.weights.unsqueeze(1))[0] <= mpc.costs(
        model.forecast(5), w_prev, sampled.weights.unsqueeze(1))[0]
    big = diagonal([0.01, 0.0, 0.0, 0.0], [0.01] * 4)  # a large edge: trading pays, the plan moves
    assert PortfolioMPC(cfg).plan(big.forecast(5), w_prev).first[0] > 0.5
    assert not mpc.feasible(torch.zeros(4)) and mpc.feasible(w_prev)  # from cash there is nothing to hold


def test_from_cash_the_plan_invests_even_when_holding_would_cost_less():
    model = diagonal([-1e-3] * 4, [0.01] * 4)  # every asset loses: holding cash is cheaper but not a feasible plan
    plan = PortfolioMPC(PlanConfig()).plan(model.forecast(5), torch.zeros(4))
    assert torch.allclose(plan.weights.sum(-1), torch.ones(5)) and plan.pred_vol.shape == (5,)


@pytest.mark.parametrize("iterations", [2, 8])
def test_a_plan_waits_for_the_device_once_however_many_iterations(iterations):
    from torch.utils._python_dispatch import TorchDispatchMode

    class Syncs(TorchDispatchMode):  # the ops that copy a device value to the host (a GPU sync)
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Syncs.count += func.__name__.split(".")[0] in ("_local_scalar_dense", "is_nonzero", "item")
            return func(*args, **(kwargs or {}))

    mpc, fc = PortfolioMPC(PlanConfig(iterations=iterations)), random_model(30).forecast(5)
    first = mpc.plan(fc, torch.full((30,), 1 / 30))
    with Syncs():
        mpc.plan(fc, torch.full((30,), 1 / 30), prev_mean=first.mean)
    assert Syncs.count == 1  # the final check that some sample had a finite cost


def test_impact_adds_the_square_root_cost_of_every_trade_and_slows_trading():
    model = random_model(6, seed=5)
    mpc = PortfolioMPC(PlanConfig(risk_aversion=1.0, samples=128, iterations=4, elites=16))
    fc = model.forecast(mpc.cfg.horizon)
    w_prev = torch.full((6,), 1.0 / 6)
    w = torch.softmax(torch.randn(mpc.cfg.horizon, 3, 6, generator=torch.Generator().manual_seed(6)), dim=-1)
    k = torch.linspace(0.001, 0.01, 6)
    plain, _ = mpc.costs(fc, w_prev, w)
    paid, _ = mpc.costs(fc, w_prev, w, impact=k)
    trades = torch.cat([(w[:1] - w_prev), w[1:] - w[:-1]]).abs()  # (H, S, A)
    assert paid - plain == pytest.approx((trades**1.5 @ k).sum(0), rel=1e-5)
    free = mpc.plan(fc, w_prev)
    slow = mpc.plan(fc, w_prev, impact=torch.full((6,), 0.05))
    assert (slow.first - w_prev).abs().sum() < 0.5 * (free.first - w_prev).abs().sum()


def test_plan_compile_runs_the_iterations_through_one_torch_compile(monkeypatch):
    compiled = []

    def spy(fn, **kw):  # stands in for torch.compile: the same function, the call recorded
        compiled.append(kw)
        return fn

    monkeypatch.setattr(torch, "compile", spy)
    cfg, w = PlanConfig(), torch.full((12,), 1 / 12)
    eager, fast = PortfolioMPC(cfg), PortfolioMPC(replace(cfg, compile=True))
    for seed in range(3):  # a new forecast each rebalance, one compile for all of them
        fc = random_model(12, seed=seed).forecast(5)
        assert torch.equal(fast.plan(fc, w).weights, eager.plan(fc, w).weights)
    assert compiled == [{"mode": None, "dynamic": False}]  # CPU: no CUDA graphs


@pytest.mark.slow
def test_a_compiled_plan_is_the_eager_plan_and_compiles_once():
    import torch._dynamo.utils

    cfg, w = PlanConfig(samples=128), torch.full((30,), 1 / 30)
    eager, fast = PortfolioMPC(cfg), PortfolioMPC(replace(cfg, compile=True))
    torch._dynamo.reset()
    e = f = None
    for seed in range(3):
        fc = random_model(30, seed=seed).forecast(5)
        e = eager.plan(fc, w, prev_mean=None if e is None else e.mean)
        f = fast.plan(fc, w, prev_mean=None if f is None else f.mean)
        assert torch.allclose(f.weights, e.weights, atol=1e-6) and torch.allclose(f.result.costs, e.result.costs)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_the_graphed_plan_is_the_eager_plan_and_outlives_the_next_replay():
    cfg, w = PlanConfig(samples=256), torch.full((40,), 1 / 40, device="cuda")
    eager, graphed = PortfolioMPC(cfg), PortfolioMPC(replace(cfg, compile=True))
    plans = []
    for seed in range(3):
        model = random_model(40, seed=seed)
        fc = StaticRiskModel(model.mu.cuda(), model.loadings.cuda(), model.sigma_idio.cuda()).forecast(5)
        e, g = eager.plan(fc, w), graphed.plan(fc, w)
        assert g.weights.is_cuda and torch.allclose(g.weights, e.weights, atol=1e-5)
        plans.append((g.weights.clone(), g))
    assert all(torch.equal(kept, g.weights) for kept, g in plans)  # later replays did not overwrite earlier plans
