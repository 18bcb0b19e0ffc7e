"""Two-level (hierarchical) planning: a monthly strategic plan over budgets for groups of companies sets the target
that the weekly tactical MPC tracks.

Letters: D days per strategic step, M strategic steps, H tactical horizon (days), A assets, G groups, k factors.

Strategic level, at the first rebalance of each month (or when the set of companies changes): the companies are
grouped by k-means on their embeddings at that date; the world model is rolled D·M days ahead and its daily
forecast summed into M monthly steps (means add, variances add: the loadings of the D days side by side); each
group is a portfolio of its companies in inverse-variance proportions v, so its forecast is exact for weights
w = b_g · v (wᵀΣ̂w = bᵀΣ̂_G b). The strategic MPC plans the budgets b (G,) over M months with costs; its first
step, spread over the companies by v, is the target w*.

Tactical level, every rebalance: the usual MPC on the daily forecast plus track_coeff · (w − w*)ᵀΣ̂(w − w*).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from dynmix.config import PlanConfig
from dynmix.errors import DynMIXError
from dynmix.models.risk import Forecast
from dynmix.models.world import WorldModel
from dynmix.planning.backtest import WeightFn
from dynmix.planning.portfolio import PortfolioMPC
from dynmix.planning.skill import Skill, shrink
from dynmix.planning.world_risk import WorldRiskModel, locator
from dynmix.runs.panel import WorldPanel


def group_assets(reps: np.ndarray, groups: int, seed: int = 0) -> np.ndarray:
    """(A,) group labels 0..G−1 of A companies from their (A, E) embeddings: k-means on the unit-normalised rows."""
    from sklearn.cluster import KMeans

    A = reps.shape[0]
    g = max(1, min(groups, A))
    if g == 1:
        return np.zeros(A, dtype=np.int64)
    x = reps / np.maximum(np.linalg.norm(reps, axis=1, keepdims=True), 1e-12)
    labels = KMeans(n_clusters=g, n_init=4, random_state=seed).fit_predict(x)
    return np.unique(labels, return_inverse=True)[1].astype(np.int64)  # 0..G'−1 with no empty group


def aggregate(forecast: Forecast, days: int) -> Forecast:
    """A daily forecast of D·M steps -> M steps of D days: μ̂ summed, variances summed (loadings side by side)."""
    H, A = forecast.mu.shape
    if H % days:
        raise DynMIXError(f"aggregate: {H} daily steps are not a whole number of {days}-day steps")
    M, k = H // days, forecast.loadings.shape[-1]
    mu = forecast.mu.reshape(M, days, A).sum(1)
    loadings = forecast.loadings.reshape(M, days, A, k).permute(0, 2, 1, 3).reshape(M, A, days * k)
    idio = forecast.sigma_idio.reshape(M, days, A).pow(2).sum(1).sqrt()
    return Forecast(mu=mu, loadings=loadings, sigma_idio=idio)


def within_weights(forecast: Forecast, labels: np.ndarray) -> torch.Tensor:
    """(G, A) rows summing to 1: each group's companies in inverse-variance proportions (first step's variance)."""
    var = (forecast.loadings[0].pow(2).sum(-1) + forecast.sigma_idio[0].pow(2)).clamp_min(1e-12)  # (A,)
    lab = torch.as_tensor(labels)
    onehot = torch.nn.functional.one_hot(lab, int(lab.max()) + 1).T.to(var)  # (G, A)
    raw = onehot / var
    return raw / raw.sum(1, keepdim=True)


def group_forecast(forecast: Forecast, within: torch.Tensor) -> Forecast:
    """The forecast of G group portfolios (G, A) `within`: exact for asset weights w = bᵀ within."""
    mu = forecast.mu @ within.T  # (M, G)
    loadings = torch.einsum("ga,mak->mgk", within, forecast.loadings)
    idio = (forecast.sigma_idio.pow(2) @ within.pow(2).T).sqrt()
    return Forecast(mu=mu, loadings=loadings, sigma_idio=idio)


def strategic_config(cfg: PlanConfig) -> PlanConfig:
    """The strategic MPC's config: M monthly steps, long-only budgets, the same objective and costs."""
    return replace(cfg, horizon=cfg.strategic_horizon, max_weight=None, turnover_budget=None, long_only=True)


def strategic_target(strategic: PortfolioMPC, daily: Forecast, reps: np.ndarray, w_prev: torch.Tensor,
                     cfg: PlanConfig, warm: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The strategic level once: groups of the (A, E) embeddings `reps`, the monthly aggregate of the daily
    forecast (strategic_days x strategic_horizon steps), the budgets' plan from the current weights w_prev (A,).
    Returns the target weights (A,) (the first month's budgets spread by inverse variance within each group) and
    the strategic plan's raw mean (a warm start for the next month while the groups keep their number).
    """
    monthly = aggregate(daily, cfg.strategic_days)
    labels = group_assets(reps, cfg.groups, cfg.seed)
    within = within_weights(monthly, labels)  # (G, A)
    budgets_prev = within.new_zeros(within.shape[0]).index_add_(0, torch.as_tensor(labels), w_prev.to(within))
    if warm is not None and warm.shape[-1] != within.shape[0]:
        warm = None
    splan = strategic.plan(group_forecast(monthly, within), budgets_prev, prev_mean=warm)
    return (splan.first @ within).float(), splan.mean


def hierarchical_strategy(world: WorldModel, panel: WorldPanel, cfg: PlanConfig,
                          skill: Skill | None = None) -> WeightFn:
    """A backtest WeightFn: monthly strategic budgets over embedding clusters, weekly tactical MPC tracking them.

    Inputs as `world_strategy` (the world model at the window's last date, μ̂ shrunk by `skill` when given); the
    tactical level plans with the backtest's impact costs (`impact`), the strategic level with proportional ones.
    """
    if cfg.strategic_days < 1 or cfg.strategic_horizon < 1:
        raise DynMIXError("plan.strategic_days and plan.strategic_horizon must be >= 1")
    tactical, strategic = PortfolioMPC(cfg), PortfolioMPC(strategic_config(cfg))
    locate = locator(panel, "hierarchical MPC")
    state: dict[str, Any] = {"assets": None, "mean": None, "month": None, "target": None, "s_mean": None}

    def daily(t: int, assets: torch.Tensor, horizon: int) -> Forecast:
        fc = WorldRiskModel(world, panel, t, assets).forecast(horizon)
        return shrink(fc, skill) if skill is not None else fc

    def weights(window: pd.DataFrame, w_prev: np.ndarray, impact: np.ndarray | None = None) -> np.ndarray:
        rb = locate(window)
        day, t, alive, assets, key = rb.day, rb.t, rb.alive, rb.assets, rb.key
        w = np.zeros(len(alive))
        if not alive.any():
            return np.full(len(alive), 1.0 / len(alive))
        prev = torch.tensor(w_prev[alive], dtype=torch.float32)
        month = (day.year, day.month)
        same = state["assets"] == key
        if state["month"] != month or not same:
            warm = state["s_mean"] if cfg.warm_start and same else None
            target, s_mean = strategic_target(strategic, daily(t, assets, cfg.strategic_days * cfg.strategic_horizon),
                                              panel.reps[t, assets].float().cpu().numpy(), prev, cfg, warm)
            state.update(month=month, target=target, s_mean=s_mean)
        warm = state["mean"] if cfg.warm_start and same else None
        k = None if impact is None else torch.as_tensor(impact[alive], dtype=torch.float32)
        plan = tactical.plan(daily(t, assets, cfg.horizon), prev, prev_mean=warm, target=state["target"], impact=k)
        state.update(assets=key, mean=plan.mean)
        w[alive] = plan.first.double().numpy()
        return w

    return weights
