"""Allocation strategies for the backtest: skfolio baselines and the sample-estimate portfolio MPC.

Each is a `WeightFn`: trailing returns (L, A) as a pandas frame -> weights (A,). skfolio estimators are
refitted on every window with their own `fit` / `weights_`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch

from dynmix.config import PlanConfig
from dynmix.errors import DynMIXError
from dynmix.models.risk import StaticRiskModel
from dynmix.planning.backtest import WeightFn
from dynmix.planning.portfolio import PortfolioMPC
from dynmix.planning.skill import Skill, shrink


def skfolio_strategy(make: Callable[[], Any]) -> WeightFn:
    """A WeightFn that fits a fresh skfolio optimiser `make()` on each window and returns its `weights_`."""

    def weights(window: pd.DataFrame) -> np.ndarray:
        w = np.asarray(make().fit(window).weights_, dtype=np.float64)
        if w.shape != (window.shape[1],) or not np.all(np.isfinite(w)):
            raise DynMIXError(f"{type(make()).__name__}: no valid weights for the window ending {window.index[-1]}")
        w = np.clip(w, 0.0, None)  # solver tolerance can leave -1e-9
        return w / w.sum()

    return weights


def skfolio_baselines() -> dict[str, WeightFn]:
    """1/N, inverse volatility, minimum variance (MeanRisk()) and HRP; solver failures fall back to 1/N."""
    from skfolio.optimization import EqualWeighted, HierarchicalRiskParity, InverseVolatility, MeanRisk

    return {
        "equal_weight": skfolio_strategy(EqualWeighted),
        "inverse_vol": skfolio_strategy(InverseVolatility),
        "min_variance": skfolio_strategy(lambda: MeanRisk(fallback=EqualWeighted())),
        "hrp": skfolio_strategy(lambda: HierarchicalRiskParity(fallback=EqualWeighted())),
    }


def mpc_strategy(cfg: PlanConfig, factors: int = 5, skill: Skill | None = None) -> WeightFn:
    """Portfolio MPC on sample estimates (mean, PCA factor model) of the window; the planner without a world model.

    It trades from the drifted weights (w_prev), so costs shape its turnover; the plan is warm-started from
    the previous rebalance while the asset set stays the same; it plans with the impact costs the backtest
    charges (`impact`) where volume is known. With a `skill`, the window's mean is replaced by its
    skill-scaled alpha (`skill.shrink`).
    """
    mpc = PortfolioMPC(cfg)
    state: dict[str, Any] = {"columns": None, "mean": None}

    def weights(window: pd.DataFrame, w_prev: np.ndarray, impact: np.ndarray | None = None) -> np.ndarray:
        x = torch.tensor(window.to_numpy(), dtype=torch.float32)  # (L, A), a copy
        forecast = StaticRiskModel.from_returns(x, factors).forecast(cfg.horizon)
        if skill is not None:
            forecast = shrink(forecast, skill)
        columns = tuple(window.columns)
        warm = state["mean"] if cfg.warm_start and state["columns"] == columns else None
        plan = mpc.plan(forecast, torch.tensor(w_prev, dtype=torch.float32), prev_mean=warm,
                        impact=None if impact is None else torch.as_tensor(impact, dtype=torch.float32))
        state.update(columns=columns, mean=plan.mean)
        return plan.first.double().numpy()

    return weights
