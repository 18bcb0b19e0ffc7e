"""The DynMIX twist: a variance target gamma that follows the market (docs/DESIGN.md §5).

For a date-blocked batch, gamma_b = gamma0 * clip(sigma_b / sigma_ref, lo, hi), where sigma_b is the mean
of the chosen market series over the batch's unique dates and sigma_ref its median over the training
dates. The series (market realised volatility, cross-sectional dispersion; (T,) from `ViewTensors`) are
already computed from data up to each date by the views, so gamma at date t never looks ahead; sigma_ref
uses training dates only, so test-period values never leak into training.

Dates whose series value is missing (NaN, e.g. before the trailing window fills) count as sigma_ref: they
leave gamma at gamma0.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dynmix.config import VARIANCE_TARGETS, LossConfig
from dynmix.errors import DynMIXError

STRATEGIES: tuple[str, ...] = VARIANCE_TARGETS


class VarianceTarget:
    """gamma per batch of date indices; `static` is plain VICReg (gamma = gamma0, 1 by default)."""

    def __init__(self, strategy: str, market_vol: Tensor, dispersion: Tensor, train_mask: Tensor,
                 gamma0: float = 1.0, lo: float = 0.5, hi: float = 2.0) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown variance-target strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
        t = train_mask.shape[0] if train_mask.ndim == 1 else -1
        for name, s in (("market_vol", market_vol), ("dispersion", dispersion), ("train_mask", train_mask)):
            if s.ndim != 1 or s.shape[0] != t:
                raise ValueError(f"{name} must be 1-D (T,) like train_mask, got {tuple(s.shape)} (T={t})")
        if train_mask.dtype != torch.bool:
            raise ValueError(f"train_mask must be a bool tensor, got {train_mask.dtype}")
        if not 0 < lo <= hi:
            raise ValueError(f"need 0 < lo <= hi, got lo={lo}, hi={hi}")
        self.strategy = strategy
        self.n_dates = t  # T
        self.gamma0 = float(gamma0)
        self.lo = float(lo)
        self.hi = float(hi)
        series = {"static": None, "market-vol": market_vol, "dispersion": dispersion}[strategy]
        self.sigma: Tensor | None = None  # (T,) float32, the chosen series
        self.sigma_ref = float("nan")
        if series is not None:
            self.sigma = series.detach().to(torch.float32)
            ref = self.sigma[train_mask.to(self.sigma.device)]
            ref = ref[torch.isfinite(ref)]
            if ref.numel() == 0:
                raise DynMIXError(f"variance target {strategy!r}: no finite {strategy} value on the training dates")
            self.sigma_ref = float(torch.quantile(ref.double(), 0.5))
            if not self.sigma_ref > 0:
                raise DynMIXError(f"variance target {strategy!r}: median {strategy} over the training dates is "
                                  f"{self.sigma_ref}, expected > 0")

    @classmethod
    def from_config(cls, cfg: LossConfig, market_vol: Tensor, dispersion: Tensor, train_mask: Tensor,
                    strategy: str | None = None) -> VarianceTarget:
        return cls(strategy or cfg.variance_target, market_vol, dispersion, train_mask,
                   gamma0=cfg.gamma0, lo=cfg.gamma_lo, hi=cfg.gamma_hi)

    def to(self, device: str | torch.device) -> VarianceTarget:
        """Move the series to `device` (in place; returns self)."""
        if self.sigma is not None:
            self.sigma = self.sigma.to(device)
        return self

    def _gamma(self, ratio: Tensor) -> Tensor:
        ratio = torch.where(torch.isfinite(ratio), ratio, torch.ones_like(ratio))
        return self.gamma0 * ratio.clamp(self.lo, self.hi)

    def __call__(self, t: Tensor) -> Tensor:
        """0-d float32 gamma for a batch of date indices `t` (B,), on t's device."""
        if t.ndim != 1 or t.numel() == 0:
            raise ValueError(f"t must be a non-empty 1-D tensor of date indices (B,), got shape {tuple(t.shape)}")
        if self.sigma is None:
            return torch.tensor(self.gamma0, dtype=torch.float32, device=t.device)
        present = torch.zeros_like(self.sigma, dtype=torch.bool)  # (T,) the batch's unique dates
        present[t.to(self.sigma.device)] = True
        ok = present & torch.isfinite(self.sigma)
        mean = torch.where(ok, self.sigma, 0.0).sum() / ok.sum()  # NaN when no date has a value
        ratio = mean / self.sigma_ref  # no host sync: stays on the device
        return self._gamma(ratio).to(device=t.device, dtype=torch.float32)

    def schedule(self) -> Tensor:
        """(T,) gamma of a batch made of each single date, for logging and plotting."""
        if self.sigma is None:
            return torch.full((self.n_dates,), self.gamma0, dtype=torch.float32)
        return self._gamma(self.sigma / self.sigma_ref).to(torch.float32)

    def __repr__(self) -> str:
        return (f"VarianceTarget(strategy={self.strategy!r}, gamma0={self.gamma0}, lo={self.lo}, hi={self.hi}, "
                f"sigma_ref={self.sigma_ref:.6g})")
