"""The world model in small verbs, like TD-MPC2's `WorldModel` (docs/DESIGN.md §8): encode, next, heads, rollout.

Letters: B dates in a batch, N companies, E world input per company (the frozen DynMIX representations),
G market input features, Z company latent, M market latent, k factors, H horizon.

Time: `encode` at date t sees data up to t only. `heads(z_t)` is the distribution of the *next* day's scaled
returns, r_{t+1} ~ N(μ̂, B̂B̂ᵀ + diag σ̂_idio²); `next(z_t)` predicts encode(t+1) (no action input: the market does
not react to our trades). So step h of `rollout(z_t, H)`, heads(next^{h−1}(z_t)), forecasts day t+h.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import LowRankMultivariateNormal

from dynmix.config import WorldConfig

MIN_SIGMA = 1e-2  # floor of σ̂_idio in model units (percent returns: 1 bp a day)


@dataclass
class Latent:
    company: Tensor  # (B, N, Z)
    market: Tensor  # (B, M)
    mask: Tensor  # (B, N) bool: the company has a latent (valid sample at the encoded date)


@dataclass
class Heads:
    mu: Tensor  # (B, N) expected next-day return
    sigma_idio: Tensor  # (B, N) idiosyncratic volatility, > 0
    loadings: Tensor  # (B, N, k) factor loadings B̂

    def variance(self) -> Tensor:
        """(B, N) diag Σ̂ = Σ_k B̂² + σ̂_idio²."""
        return self.loadings.pow(2).sum(-1) + self.sigma_idio.pow(2)

    def covariance(self) -> Tensor:
        """(B, N, N) Σ̂ = B̂B̂ᵀ + diag σ̂_idio² (for tests and small universes; planning never forms it)."""
        return self.loadings @ self.loadings.transpose(1, 2) + torch.diag_embed(self.sigma_idio.pow(2))


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """(B, N, Z), (B, N) -> (B, Z): mean over the masked-in companies (0 when none)."""
    w = mask.to(x.dtype).unsqueeze(-1)  # (B, N, 1)
    return (x * w).sum(1) / w.sum(1).clamp_min(1.0)


def gaussian_nll(heads: Heads, target: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """(total NLL, number of companies) of the (B, N) cross-sections `target` where `mask` (and target is finite).

    Left-out companies get μ = 0, σ = 1, no loadings and target 0: independent of the rest, so their log-density
    is the constant −½ log 2π, which is removed. O(B N k²) via LowRankMultivariateNormal.
    """
    m = mask & torch.isfinite(target)  # (B, N)
    rows = m.any(1)  # dates with at least one company
    if not bool(rows.any()):
        return target.new_zeros(()), target.new_zeros(())
    m, mu, load = m[rows], heads.mu[rows], heads.loadings[rows]
    sig2 = heads.sigma_idio[rows].pow(2)
    y = torch.where(m, target[rows], 0.0)
    dist = LowRankMultivariateNormal(torch.where(m, mu, 0.0), load * m.unsqueeze(-1), torch.where(m, sig2, 1.0))
    logp = dist.log_prob(y) + (~m).sum(1) * (0.5 * math.log(2 * math.pi))  # (B',)
    return -logp.sum(), m.sum().to(logp.dtype)


def _mlp(inp: int, hidden: int, out: int, norm_out: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(inp, hidden), nn.LayerNorm(hidden), nn.SiLU(), nn.Linear(hidden, out)]
    if norm_out:
        layers.append(nn.LayerNorm(out))  # latents of fixed scale: the consistency loss cannot shrink them away
    return nn.Sequential(*layers)


class WorldModel(nn.Module):
    """encode (views_t) -> z_t, next (z_t) -> z_{t+1}, heads (z_t) -> (μ̂, σ̂_idio, B̂) of r_{t+1}."""

    def __init__(self, cfg: WorldConfig, rep_dim: int, market_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.rep_dim, self.market_dim = rep_dim, market_dim
        z, m, hid = cfg.latent, cfg.market_latent, cfg.hidden
        self.enc_company = _mlp(rep_dim, hid, z, norm_out=True)
        self.enc_market = _mlp(z + market_dim, hid, m, norm_out=True)
        self.dyn_company = _mlp(z + m, hid, z)
        self.dyn_market = _mlp(m + z, hid, m)
        self.norm_company, self.norm_market = nn.LayerNorm(z), nn.LayerNorm(m)
        self.head = _mlp(z + m, hid, 2 + cfg.loadings)

    def encode(self, reps: Tensor, mask: Tensor, market: Tensor) -> Latent:
        """z_t from reps (B, N, E), mask (B, N), market (B, G); the market latent pools the companies present."""
        assert reps.ndim == 3 and reps.shape[-1] == self.rep_dim, (
            f"reps must be (B, N, {self.rep_dim}), got {tuple(reps.shape)}")
        assert mask.shape == reps.shape[:2], f"mask must be (B, N) = {tuple(reps.shape[:2])}, got {tuple(mask.shape)}"
        assert market.shape == (reps.shape[0], self.market_dim), (
            f"market must be (B, G) = ({reps.shape[0]}, {self.market_dim}), got {tuple(market.shape)}")
        company = self.enc_company(reps)  # (B, N, Z)
        pooled = masked_mean(company, mask)  # (B, Z)
        return Latent(company, self.enc_market(torch.cat([pooled, market], -1)), mask)

    def next(self, z: Latent) -> Latent:
        """One day ahead: residual updates of company and market latents, each seeing the other."""
        n = z.company.shape[1]
        ctx = torch.cat([z.company, z.market.unsqueeze(1).expand(-1, n, -1)], -1)  # (B, N, Z + M)
        company = self.norm_company(z.company + self.dyn_company(ctx))
        pooled = masked_mean(z.company, z.mask)  # (B, Z)
        market = self.norm_market(z.market + self.dyn_market(torch.cat([z.market, pooled], -1)))
        return Latent(company, market, z.mask)

    def heads(self, z: Latent) -> Heads:
        """Per-company next-day return distribution: μ̂ (B, N), σ̂_idio (B, N), B̂ (B, N, k)."""
        n = z.company.shape[1]
        out = self.head(torch.cat([z.company, z.market.unsqueeze(1).expand(-1, n, -1)], -1))  # (B, N, 2 + k)
        return Heads(mu=out[..., 0], sigma_idio=F.softplus(out[..., 1]) + MIN_SIGMA, loadings=out[..., 2:])

    def rollout(self, z: Latent, horizon: int) -> list[Heads]:
        """Heads of days t+1 .. t+H: [heads(z), heads(next(z)), ..., heads(next^{H−1}(z))]."""
        out = []
        for h in range(horizon):
            if h:
                z = self.next(z)
            out.append(self.heads(z))
        return out
