"""Risk forecasts the portfolio MPC plans against: μ̂, B̂, σ̂_idio per step (Σ̂ = B̂B̂ᵀ + diag σ̂_idio²).

Letters: H horizon, S samples, A assets, k factors, T dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch


@dataclass
class Forecast:
    mu: torch.Tensor  # (H, A) expected simple returns per step (one step = one day)
    loadings: torch.Tensor  # (H, A, k) factor loadings B̂
    sigma_idio: torch.Tensor  # (H, A) idiosyncratic volatility

    def __post_init__(self) -> None:
        H, A = self.mu.shape
        assert self.loadings.ndim == 3 and self.loadings.shape[:2] == (H, A), (
            f"loadings must be (H, A, k) = ({H}, {A}, k), got {tuple(self.loadings.shape)}"
        )
        assert self.sigma_idio.shape == (H, A), (
            f"sigma_idio must be (H, A) = ({H}, {A}), got {tuple(self.sigma_idio.shape)}"
        )

    def variance(self, w: torch.Tensor) -> torch.Tensor:
        """Predicted variance wᵀΣ̂_h w of (H, S, A) weights -> (H, S), without forming Σ̂."""
        fac = torch.bmm(w, self.loadings)  # (H, S, k)
        scaled = w * self.sigma_idio.unsqueeze(1)  # (H, S, A)
        return torch.linalg.vecdot(fac, fac) + torch.linalg.vecdot(scaled, scaled)


    def simple_from_log(self) -> Forecast:
        """The same forecast in simple returns, from one in daily log returns (lognormal moments per step).

        With x ~ N(μ, s²) a log return, E[eˣ − 1] = exp(μ + s²/2) − 1; the covariance of simple returns is
        taken to first order, d(eˣ) = e^{E x} dx, so loadings and idiosyncratic volatility scale by 1 + E[r].
        """
        total = self.loadings.pow(2).sum(-1) + self.sigma_idio.pow(2)  # (H, A) diag Σ̂
        mu = torch.expm1(self.mu + 0.5 * total)
        scale = 1.0 + mu
        return Forecast(mu=mu, loadings=self.loadings * scale.unsqueeze(-1), sigma_idio=self.sigma_idio * scale)

    def with_mu(self, mu: torch.Tensor) -> Forecast:
        """The same risk with another (H, A) expected return."""
        assert mu.shape == self.mu.shape, f"mu must be {tuple(self.mu.shape)}, got {tuple(mu.shape)}"
        return Forecast(mu=mu, loadings=self.loadings, sigma_idio=self.sigma_idio)


class RiskModel(Protocol):
    def forecast(self, horizon: int) -> Forecast: ...


class StaticRiskModel:
    """One forecast repeated over the horizon (sample estimates, tests)."""

    def __init__(self, mu: torch.Tensor, loadings: torch.Tensor, sigma_idio: torch.Tensor) -> None:
        assert mu.ndim == 1 and loadings.shape[0] == mu.shape[0] and sigma_idio.shape == mu.shape, (
            f"expected mu (A,), loadings (A, k), sigma_idio (A,); got {mu.shape}, {loadings.shape}, {sigma_idio.shape}"
        )
        self.mu, self.loadings, self.sigma_idio = mu, loadings, sigma_idio

    @classmethod
    def from_returns(cls, returns: torch.Tensor, factors: int = 5) -> StaticRiskModel:
        """Sample mean and a PCA factor model of (T, A) returns: top-k eigenpairs, residual variance as idio."""
        assert returns.ndim == 2 and returns.shape[0] > 1, f"returns must be (T, A) with T > 1, got {returns.shape}"
        x = returns.to(torch.float64)
        mu = x.mean(0)
        cov = torch.cov(x.T).reshape(x.shape[1], x.shape[1])  # (A, A)
        vals, vecs = torch.linalg.eigh(cov)  # ascending
        k = min(factors, x.shape[1])
        vals, vecs = vals[-k:].clamp_min(0.0), vecs[:, -k:]
        loadings = vecs * vals.sqrt()  # (A, k)
        idio = (cov.diagonal() - (loadings**2).sum(1)).clamp_min(1e-12).sqrt()
        return cls(mu.to(returns.dtype), loadings.to(returns.dtype), idio.to(returns.dtype))

    def forecast(self, horizon: int) -> Forecast:
        return Forecast(
            mu=self.mu.expand(horizon, -1),
            loadings=self.loadings.expand(horizon, -1, -1),
            sigma_idio=self.sigma_idio.expand(horizon, -1),
        )
