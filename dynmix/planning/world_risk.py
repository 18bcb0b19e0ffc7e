"""The world model behind planning's `RiskModel` protocol, and the walk-forward world-model MPC strategy.

Letters: H horizon, N companies, A assets planned over (a subset of N), k factors, L trailing window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
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
from dynmix.planning.skill import NO_SKILL, Skill, measure_skill, shrink
from dynmix.runs.panel import WorldPanel


@dataclass(frozen=True)
class Rebalance:
    """A rebalance located in the panel: the row of the window's last date and the window's companies alive then."""

    day: dt.date
    t: int  # row of `day` in the panel
    alive: np.ndarray  # (columns of the window,) bool: a valid sample that day
    assets: torch.Tensor  # panel columns of the alive companies
    key: tuple[int, ...]  # the alive columns, to tell whether the set of companies changed


def locator(panel: WorldPanel, who: str) -> Callable[[pd.DataFrame], Rebalance]:
    """A function from a backtest window to its `Rebalance` (`who` names the strategy in the error)."""
    row = {d: k for k, d in enumerate(panel.dates)}
    col = {tk: k for k, tk in enumerate(panel.tickers)}

    def locate(window: pd.DataFrame) -> Rebalance:
        day = pd.Timestamp(window.index[-1]).date()
        if day not in row:
            raise DynMIXError(f"{who}: {day} is not a date of the views; rebuild the views or retrain")
        t = row[day]
        idx = np.array([col[str(c)] for c in window.columns])
        alive = panel.valid[t, torch.as_tensor(idx, device=panel.valid.device)].cpu().numpy()
        return Rebalance(day, t, alive, torch.as_tensor(idx[alive], device=panel.valid.device), tuple(idx[alive]))

    return locate


class WorldRiskModel:
    """Forecasts of the assets `assets` (company indices, valid at row `t` of `panel`) from the world model at t.

    Step h of the forecast is heads(next^{h−1}(encode(t))), i.e. the return distribution of day t+h, converted
    from the model's scaled daily log returns to daily simple returns (`Forecast.simple_from_log`), the units the
    portfolio's value moves in.
    """

    def __init__(self, world: WorldModel, panel: WorldPanel, t: int, assets: torch.Tensor | None = None) -> None:
        valid = panel.valid[t]  # (N,)
        if assets is None:
            assets = torch.nonzero(valid).flatten()
        if assets.numel() == 0:
            raise DynMIXError(f"no company has a valid sample on {panel.dates[t]}: nothing to plan over")
        if not bool(valid[assets].all()):
            bad = [panel.tickers[int(i)] for i in assets[~valid[assets]]]
            raise DynMIXError(f"{', '.join(bad)} have no valid sample on {panel.dates[t]}; expected alive companies")
        self.world, self.panel, self.t, self.assets = world, panel, t, assets

    @property
    def tickers(self) -> list[str]:
        return [self.panel.tickers[int(i)] for i in self.assets]

    @torch.no_grad()
    def forecast(self, horizon: int) -> Forecast:
        tt = torch.tensor([self.t], device=self.panel.valid.device)
        steps = self.world.rollout(self.world.encode(*self.panel.inputs(tt)), horizon)
        s = self.world.cfg.return_scale
        a = self.assets
        return Forecast(
            mu=torch.stack([h.mu[0, a] for h in steps]).cpu() / s,  # (H, A)
            loadings=torch.stack([h.loadings[0, a] for h in steps]).cpu() / s,  # (H, A, k)
            sigma_idio=torch.stack([h.sigma_idio[0, a] for h in steps]).cpu() / s,  # (H, A)
        ).simple_from_log()


@torch.no_grad()
def world_skill(world: WorldModel, panel: WorldPanel, last: int, horizon: int, stride: int | None = None,
                chunk: int = 256, first: int = -1) -> Skill:
    """IC of the world model's H-day expected simple return (the sum of its daily μ̂ over the rollout) against the
    realised H-day simple return, at origins first < t every `stride` (default H) dates whose realised days all lie
    at or before row `last` (the training period's last date).

    On dates a world model was fitted on this IC is in-sample for it (an upper bound of its skill); `first` = the
    last training date of the stacking model (world_stack.pt) with that model scores it out of sample.
    """
    s = world.cfg.return_scale
    T = panel.valid.shape[0]
    last = min(last, T - 1)
    origins = torch.arange(first + 1, last - horizon + 1, stride or horizon, device=panel.valid.device)
    origins = origins[panel.valid[origins].sum(1) >= 3]
    if origins.numel() == 0:
        return NO_SKILL
    logret = panel.returns.double().cpu().numpy() / s  # (T, N)
    preds, realised = [], []
    for part in origins.split(chunk):
        steps = world.rollout(world.encode(*panel.inputs(part)), horizon)
        mu = torch.stack([h.mu for h in steps]) / s  # (H, B, N) log
        var = torch.stack([h.variance() for h in steps]) / s**2
        pred = torch.expm1(mu + 0.5 * var).sum(0)  # (B, N)
        pred = torch.where(panel.valid[part], pred, torch.nan)
        preds.append(pred.double().cpu().numpy())
        t = part.cpu().numpy()
        ahead = np.stack([logret[t + h] for h in range(1, horizon + 1)])  # (H, B, N), NaN where missing
        realised.append(np.expm1(ahead.sum(0)))
    return measure_skill(np.concatenate(preds), np.concatenate(realised), np.expm1(logret[: last + 1]), horizon)


def world_strategy(world: WorldModel, panel: WorldPanel, cfg: PlanConfig, skill: Skill | None = None) -> WeightFn:
    """A backtest WeightFn: at each rebalance, PortfolioMPC on WorldRiskModel at the window's last date (the day
    before the rebalance), from the drifted weights, warm-started from the shifted previous plan while the set of
    companies is unchanged. Companies without a valid sample that day get weight 0. With a `skill`, μ̂ is replaced
    by its skill-scaled alpha (`skill.shrink`). It plans with the impact costs the backtest charges (`impact`).
    """
    mpc = PortfolioMPC(cfg)
    locate = locator(panel, "world-model MPC")
    state: dict[str, Any] = {"assets": None, "mean": None}

    def weights(window: pd.DataFrame, w_prev: np.ndarray, impact: np.ndarray | None = None) -> np.ndarray:
        rb = locate(window)
        if not rb.alive.any():
            return np.full(len(rb.alive), 1.0 / len(rb.alive))
        forecast = WorldRiskModel(world, panel, rb.t, rb.assets).forecast(cfg.horizon)
        if skill is not None:
            forecast = shrink(forecast, skill)
        warm = state["mean"] if cfg.warm_start and state["assets"] == rb.key else None
        k = None if impact is None else torch.as_tensor(impact[rb.alive], dtype=torch.float32)
        plan = mpc.plan(forecast, torch.tensor(w_prev[rb.alive], dtype=torch.float32), prev_mean=warm, impact=k)
        state.update(assets=rb.key, mean=plan.mean)
        w = np.zeros(len(rb.alive))
        w[rb.alive] = plan.first.double().numpy()
        return w

    return weights
