"""What the world model forecasts out of sample: volatility decoded from the rolled-out heads, latent forecast
error against the encoded future, and the density (NLL) of the next day's cross-section against a static factor
model fitted on the training period.

Letters: N companies, T dates, B origins in a block, H horizon, Z company latent, k factors.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from dynmix.models.risk import StaticRiskModel
from dynmix.models.world import Heads, WorldModel, gaussian_nll
from dynmix.runs.panel import WorldPanel

BLOCK = 256  # origins per forward pass


@torch.no_grad()
def world_variance(world: WorldModel, panel: WorldPanel, origins: Tensor, horizon: int) -> np.ndarray:
    """(N, T) forecast of the mean daily variance E[r²] = σ̂² + μ̂² of days t+1 .. t+H (raw log-return units),
    at every origin t in `origins` where the company is valid; NaN elsewhere.
    """
    n, t_all = len(panel.tickers), len(panel.dates)
    out = np.full((n, t_all), np.nan)
    scale2 = world.cfg.return_scale**2
    for start in range(0, origins.numel(), BLOCK):
        t = origins[start : start + BLOCK]  # (B,)
        z = world.encode(*panel.inputs(t))
        steps = world.rollout(z, horizon)
        var = torch.stack([h.variance() + h.mu.pow(2) for h in steps]).mean(0) / scale2  # (B, N)
        var = torch.where(z.mask, var, torch.nan)
        out[:, t.cpu().numpy()] = var.T.double().cpu().numpy()
    return out


@torch.no_grad()
def world_covariance(world: WorldModel, panel: WorldPanel, t: int, assets: np.ndarray, horizon: int) -> np.ndarray:
    """(A, A) the world model's covariance of daily returns of companies `assets` (valid at t) over days
    t+1 .. t+H: the mean of its Σ̂ = B̂B̂ᵀ + diag σ̂² over the H rolled-out steps (raw log-return units).
    """
    tt = torch.tensor([t], device=panel.valid.device)
    steps = world.rollout(world.encode(*panel.inputs(tt)), horizon)
    idx = torch.as_tensor(assets, device=panel.valid.device)
    cov = torch.stack([h.covariance()[0][idx][:, idx] for h in steps]).mean(0)
    return cov.double().cpu().numpy() / world.cfg.return_scale**2


@torch.no_grad()
def latent_errors(world: WorldModel, panel: WorldPanel, origins: Tensor, horizon: int) -> dict[str, dict[str, float]]:
    """Relative MSE of company latents h days ahead, Σ‖ẑ_{t+h} − encode(t+h)‖² / Σ‖encode − its mean‖², for the
    world model's rollout next^h(z_t) and for persistence (ẑ_{t+h} = z_t); 1.0 = no better than the mean latent.
    """
    err = {"world_model": np.zeros(horizon), "persistence": np.zeros(horizon)}
    count = np.zeros(horizon)
    s1 = torch.zeros(world.cfg.latent, dtype=torch.float64)  # running sums for the variance of encoded latents
    s2, n_all = 0.0, 0.0
    for start in range(0, origins.numel(), BLOCK):
        t = origins[start : start + BLOCK]
        z0 = world.encode(*panel.inputs(t))
        w0 = z0.mask.unsqueeze(-1).double()
        s1 += (z0.company.double() * w0).sum((0, 1)).cpu()
        s2 = s2 + float((z0.company.double().pow(2) * w0).sum())
        n_all += float(z0.mask.sum())
        z = z0
        for h in range(horizon):
            z = world.next(z)
            target = world.encode(*panel.inputs(t + h + 1))
            m = (z0.mask & target.mask).unsqueeze(-1).double()
            err["world_model"][h] += float(((z.company - target.company).double().pow(2) * m).sum())
            err["persistence"][h] += float(((z0.company - target.company).double().pow(2) * m).sum())
            count[h] += float(m.sum())
    total_var = (s2 - float((s1 * s1).sum()) / max(n_all, 1.0)) / max(n_all, 1.0)  # Σ_z Var per latent vector
    scale = np.maximum(count, 1.0) * max(total_var, 1e-12)
    return {name: {f"rel_mse_h{h + 1}": float(e[h] / scale[h]) for h in range(horizon)} for name, e in err.items()}


def static_heads(panel: WorldPanel, train_last: int, factors: int) -> Heads:
    """A (1, N) Heads of training-period sample means and a PCA factor model (missing returns read as the mean)."""
    x = panel.returns[: train_last + 1].double()  # (T_train, N)
    obs = torch.isfinite(x)
    mean = torch.where(obs, x, 0.0).sum(0) / obs.sum(0).clamp_min(1)
    filled = torch.where(obs, x, mean)
    rm = StaticRiskModel.from_returns(filled, factors)
    return Heads(mu=rm.mu[None].float(), sigma_idio=rm.sigma_idio[None].float(), loadings=rm.loadings[None].float())


@torch.no_grad()
def density_nll(world: WorldModel, panel: WorldPanel, train_last: int, train: Tensor, test: Tensor
                ) -> dict[str, dict[str, float]]:
    """Per-company NLL of the next day's cross-section of percent returns, train and test origins, for the world
    model and the static factor model (same k).
    """
    static = static_heads(panel, train_last, world.cfg.loadings)
    out: dict[str, dict[str, float]] = {"world_model": {}, "static_factor": {}}
    for period, origins in (("train", train), ("test", test)):
        totals: dict[str, list[float]] = {name: [0.0, 0.0] for name in out}
        for start in range(0, origins.numel(), BLOCK):
            t = origins[start : start + BLOCK]
            mask, target = panel.valid[t], panel.returns[t + 1]
            b = t.numel()
            fixed = Heads(static.mu.expand(b, -1), static.sigma_idio.expand(b, -1), static.loadings.expand(b, -1, -1))
            for name, heads in (("world_model", world.heads(world.encode(*panel.inputs(t)))), ("static_factor", fixed)):
                nll, count = gaussian_nll(heads, target, mask)
                totals[name][0] += float(nll)
                totals[name][1] += float(count)
        for name, (total, n) in totals.items():
            out[name][f"nll_{period}"] = total / n if n else float("nan")
    return out
