"""Portfolio MPC: plan weight sequences against a risk model's forecasts.

Letters: H horizon, S samples, E elites, A assets, k factors, R raw (search-space) size.

The MPC talks to the world model only through `RiskModel.forecast(horizon) -> Forecast` (μ̂, B̂, σ̂_idio per
step; the market does not react to our trades, so forecasts do not depend on the actions). It minimises

    Σ_h [ −w_h·μ̂_h + ρ w_hᵀΣ̂_h w_h + κ ‖w_h − w_{h−1}‖₁ (+ c (sqrt(252 w_hᵀΣ̂_h w_h) − target)²) ],
    Σ̂_h = B̂_h B̂_hᵀ + diag(σ̂_idio,h²),  w_{−1} = current (drifted) weights,

(+ Σ_a k_a |w_h,a − w_{h−1},a|^1.5, the square-root market impact, when the backtest knows volume: k_a =
c σ_a sqrt(NAV / ADV_a), see `planning/backtest.py`) with the generic `Planner` (`objective = mean_variance`;
`min_risk` drops −w·μ̂, `target_vol` drops ρ wᵀΣ̂w and keeps the target term; a `turnover_budget` adds
budget_coeff · max(0, ‖w_h − w_{h−1}‖₁ − budget)). With `hold_check`, holding the current weights is the plan
whenever it costs no more than the sampled plan. Long-only
weights are a softmax of sampled logits (on the simplex), capped at `max_weight` when set; long-short
weights are `a·softmax(l⁺) − b·softmax(l⁻)` with a − b = 1 and a + b = gross ∈ [1, gross_limit], so every
sample is feasible (net exposure 1, Σ|w| ≤ gross_limit). wᵀΣw is ‖B̂ᵀw‖² + Σ σ̂²w², never an (A, A) matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dynmix.config import PlanConfig
from dynmix.errors import DynMIXError
from dynmix.models.risk import Forecast
from dynmix.planning.cem import Planner, PlanResult, shift

TRADING_DAYS = 252
OBJECTIVES = ("mean_variance", "min_risk", "target_vol")


def cap_simplex(w: torch.Tensor, cap: float, iterations: int = 50) -> torch.Tensor:
    """Weights (..., A) on the simplex -> the capped simplex {0 <= w <= cap, Σw = 1}: capped weights give their
    excess to the uncapped ones in proportion to their weight, until none exceeds the cap (at most A rounds).
    A cap below 1/A cannot hold: it is raised to 1/A (equal weights).
    """
    cap = max(float(cap), 1.0 / w.shape[-1])
    for _ in range(min(iterations, w.shape[-1])):
        over = w > cap + 1e-12
        if not bool(over.any()):
            break
        excess = (w - cap).clamp_min(0.0).sum(-1, keepdim=True)
        w = w.clamp_max(cap)
        free = torch.where(w < cap - 1e-12, w, torch.zeros_like(w))
        total = free.sum(-1, keepdim=True)
        share = torch.where(total > 0, free / total.clamp_min(1e-30), torch.zeros_like(w))
        w = w + excess * share
    return w


@dataclass
class PortfolioPlan:
    weights: torch.Tensor  # (H, A) planned weights
    first: torch.Tensor  # (A,) the action to take now: weights[0]
    mean: torch.Tensor  # (H, R) raw plan; pass as `prev_mean` next time (it is shifted there)
    pred_return: torch.Tensor  # (H,) predicted portfolio return of the plan per step
    pred_vol: torch.Tensor  # (H,) predicted portfolio volatility of the plan per step (daily)
    trajectories: dict[str, torch.Tensor]  # imagined elite trajectories: ret, vol, turnover (H, E); weights (H, E, A)
    result: PlanResult  # the planner's full output (cost history, std, ...)


class PortfolioMPC:
    """Receding-horizon portfolio planner: `plan(forecast, w_prev) -> PortfolioPlan`."""

    def __init__(self, cfg: PlanConfig) -> None:
        if not cfg.long_only and cfg.gross_limit < 1.0:
            raise DynMIXError(f"plan.gross_limit must be >= 1 for long-short (net exposure 1), got {cfg.gross_limit}")
        if cfg.objective not in OBJECTIVES:
            raise DynMIXError(f"plan.objective must be one of {', '.join(OBJECTIVES)}, got {cfg.objective!r}")
        if cfg.objective == "target_vol" and cfg.target_vol is None:
            raise DynMIXError("plan.objective = 'target_vol' needs plan.target_vol (annualised, e.g. 0.12)")
        if cfg.max_weight is not None and (not cfg.long_only or not 0.0 < cfg.max_weight <= 1.0):
            raise DynMIXError(f"plan.max_weight needs long_only and a value in (0, 1], got {cfg.max_weight}")
        if cfg.turnover_budget is not None and cfg.turnover_budget < 0:
            raise DynMIXError(f"plan.turnover_budget must be >= 0, got {cfg.turnover_budget}")
        self.cfg = cfg
        self.planner = Planner(cfg)

    def raw_dim(self, n_assets: int) -> int:
        return n_assets if self.cfg.long_only else 2 * n_assets + 1

    def decode(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw samples (..., R) -> feasible weights (..., A)."""
        if self.cfg.long_only:
            w = torch.softmax(raw, dim=-1)
            return w if self.cfg.max_weight is None else cap_simplex(w, self.cfg.max_weight)
        A = (raw.shape[-1] - 1) // 2
        gross = 1.0 + (self.cfg.gross_limit - 1.0) * torch.sigmoid(raw[..., -1:])  # (..., 1)
        long, short = torch.softmax(raw[..., :A], dim=-1), torch.softmax(raw[..., A : 2 * A], dim=-1)
        return 0.5 * (gross + 1.0) * long - 0.5 * (gross - 1.0) * short

    def encode(self, w: torch.Tensor) -> torch.Tensor:
        """A raw point (R,) whose decoding is close to weights w (A,); all-zero w (cash) gives equal weights."""
        A = w.shape[0]
        floor = 0.05 / A  # keeps every asset reachable by the sampling noise

        def logits(p: torch.Tensor) -> torch.Tensor:
            total = p.sum()
            if total <= 0:
                return torch.zeros_like(p)
            z = torch.log(p / total + floor)
            return z - z.mean()

        pos, neg = w.clamp_min(0.0), (-w).clamp_min(0.0)
        if self.cfg.long_only:
            return logits(pos)
        g = self.cfg.gross_limit
        frac = ((w.abs().sum() - 1.0) / max(g - 1.0, 1e-12)).clamp(0.05, 0.95)  # away from the flat ends
        return torch.cat([logits(pos), logits(neg), torch.logit(frac).reshape(1)])

    def feasible(self, w: torch.Tensor) -> bool:
        """Whether weights (A,) satisfy the constraints (fully invested; long-only and capped when so configured)."""
        return bool(self._feasible(w))

    def _feasible(self, w: torch.Tensor) -> torch.Tensor:
        """`feasible` as a 0-d bool tensor on w's device (no host sync)."""
        ok = (w.sum() - 1.0).abs() <= 1e-5
        if self.cfg.long_only:
            cap = self.cfg.max_weight if self.cfg.max_weight is not None else 1.0
            return ok & (w.amin() >= -1e-9) & (w.amax() <= max(cap, 1.0 / w.shape[0]) + 1e-6)
        return ok & (w.abs().sum() <= self.cfg.gross_limit + 1e-6)

    @staticmethod
    def _moments(forecast: Forecast, w: torch.Tensor, target: torch.Tensor | None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Predicted return w·μ̂, variance wᵀΣ̂w and, with a target t, tracking variance (w − t)ᵀΣ̂(w − t), each
        (H, S), of (H, S, A) weights in two passes over w: one matmul against [μ̂ | B̂ | σ̂²∘t] and one of w² against
        σ̂². The factor part of the tracking variance is ‖B̂ᵀw − B̂ᵀt‖²; its idiosyncratic part is expanded,
        Σσ̂²w² − 2Σσ̂²wt + Σσ̂²t² (clamped at 0).
        """
        k = forecast.loadings.shape[-1]
        sig2 = forecast.sigma_idio.square()  # (H, A)
        cols = [forecast.mu.unsqueeze(-1), forecast.loadings]
        if target is not None:
            t = target.to(w).expand_as(forecast.mu)  # (H, A)
            cols.append((sig2 * t).unsqueeze(-1))
        proj = torch.bmm(w, torch.cat(cols, dim=-1))  # (H, S, 1 + k (+ 1))
        ret, fac = proj[..., 0], proj[..., 1 : 1 + k]
        idio = torch.bmm(w.square(), sig2.unsqueeze(-1)).squeeze(-1)  # (H, S)
        var = (torch.linalg.vecdot(fac, fac) + idio).clamp_min(0.0)
        if target is None:
            return ret, var, None
        fac_t = torch.einsum("ha,hak->hk", t, forecast.loadings).unsqueeze(1)  # (H, 1, k)
        dfac = fac - fac_t
        idio_t = (sig2 * t.square()).sum(-1, keepdim=True)  # (H, 1)
        track_idio = (idio - 2.0 * proj[..., -1] + idio_t).clamp_min(0.0)
        return ret, var, (torch.linalg.vecdot(dfac, dfac) + track_idio).clamp_min(0.0)

    def costs(self, forecast: Forecast, w_prev: torch.Tensor, w: torch.Tensor,
              target: torch.Tensor | None = None, impact: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        """Costs (S,) and trajectories {ret, vol, turnover: (H, S)} of (H, S, A) weight sequences; with a `target`
        (A,) (a higher level's plan), + track_coeff · (w − target)ᵀΣ̂(w − target), the predicted tracking variance;
        with `impact` k (A,), + Σ_a k_a |Δw_a|^1.5 per step (square-root market impact).
        """
        cfg = self.cfg
        ret, var, track = self._moments(forecast, w, target)
        trades = torch.empty_like(w)  # (H, S, A): w_h - w_{h-1}, w_{-1} = w_prev
        torch.sub(w[0], w_prev, out=trades[0])
        torch.sub(w[1:], w[:-1], out=trades[1:])
        turnover = trades.abs_().sum(-1)  # (H, S)
        gain = ret if cfg.objective != "min_risk" else torch.zeros_like(ret)
        risk = cfg.risk_aversion * var if cfg.objective != "target_vol" else torch.zeros_like(var)
        step = -gain + risk + cfg.cost * turnover  # this order: MPPI amplifies float rounding (see README)
        vol = var.sqrt()
        if cfg.target_vol is not None:
            step = step + cfg.target_vol_coeff * (vol * TRADING_DAYS**0.5 - cfg.target_vol) ** 2
        if cfg.turnover_budget is not None:
            step = step + cfg.budget_coeff * (turnover - cfg.turnover_budget).clamp_min(0.0)
        if track is not None:
            step = step + cfg.track_coeff * track
        if impact is not None:
            step = step + trades.pow_(1.5) @ impact.to(trades)  # (H, S); trades are |Δw| here
        return step.sum(0), {"ret": ret, "vol": vol, "turnover": turnover}

    @torch.no_grad()
    def plan(self, forecast: Forecast, w_prev: torch.Tensor, prev_mean: torch.Tensor | None = None,
             target: torch.Tensor | None = None, impact: torch.Tensor | None = None) -> PortfolioPlan:
        """Plan H steps of weights from the current weights w_prev (A,); `prev_mean` is the last plan's `mean`;
        `impact` (A,): the square-root impact coefficients k of the assets (None: proportional costs only).
        """
        H, A = forecast.mu.shape
        if H != self.cfg.horizon:
            raise DynMIXError(f"forecast horizon {H} differs from plan.horizon {self.cfg.horizon}")
        assert w_prev.shape == (A,), f"w_prev must be (A,) = ({A},), got {tuple(w_prev.shape)}"
        w_prev = w_prev.to(forecast.mu)
        if prev_mean is not None:
            mean = shift(prev_mean.to(forecast.mu))
        else:
            mean = self.encode(w_prev).expand(H, -1).clone()
        res = self.planner.plan(
            lambda w: self.costs(forecast, w_prev, w, target, impact), self.raw_dim(A), mean=mean, project=self.decode
        )
        weights = res.actions  # (H, A)
        if self.cfg.hold_check:  # plan and holding scored as two samples of one pass; chosen without a host sync
            hold = w_prev.expand(H, -1)
            both_cost, both = self.costs(forecast, w_prev, torch.stack([weights, hold], dim=1), target, impact)
            holds = (both_cost[1] <= both_cost[0]) & self._feasible(w_prev)  # trading does not pay: hold
            pick = holds.long().view(1)
            weights = torch.where(holds, hold, weights)
            plan_traj = {k: v.index_select(1, pick) for k, v in both.items()}
        else:
            _, plan_traj = self.costs(forecast, w_prev, weights.unsqueeze(1), target, impact)
        traj = dict(res.trajectories or {})
        traj["weights"] = res.elite_actions
        return PortfolioPlan(
            weights=weights,
            first=weights[0],
            mean=res.mean,
            pred_return=plan_traj["ret"].squeeze(1),
            pred_vol=plan_traj["vol"].squeeze(1),
            trajectories=traj,
            result=res,
        )
