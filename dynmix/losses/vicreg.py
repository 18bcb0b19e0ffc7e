"""VICReg with a variable variance target (docs/DESIGN.md §5; lightly's `loss/vicreg_loss.py` layout).

Shapes: B batch, K projector dimension. Every statistic is normalised by the tensor's own batch size
(the official script divides by the configured `args.batch_size`, which is wrong for a short last batch).

Under torch.distributed the caller passes globally gathered projections (`dynmix.losses.gather_cat`),
so the variance and covariance terms see the whole global batch; this module never communicates.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dynmix.config import LossConfig


def _check(z: Tensor, name: str = "z") -> None:
    if z.ndim != 2:
        raise ValueError(f"{name} must be 2-D (B, K), got shape {tuple(z.shape)}")
    if z.shape[0] < 2:
        raise ValueError(f"{name} needs a batch of at least 2 samples (unbiased variance), got B={z.shape[0]}")


def _check_pair(z_a: Tensor, z_b: Tensor) -> None:
    _check(z_a, "z_a")
    _check(z_b, "z_b")
    if z_a.shape != z_b.shape:
        raise ValueError(f"z_a and z_b must have the same shape (B, K), got {tuple(z_a.shape)} and {tuple(z_b.shape)}")


def _gamma_like(gamma: float | Tensor, z: Tensor) -> Tensor:
    if isinstance(gamma, Tensor):
        if gamma.ndim != 0:
            raise ValueError(f"gamma must be a float or a 0-d tensor, got shape {tuple(gamma.shape)}")
        gamma = gamma.detach()
    return torch.as_tensor(gamma, dtype=z.dtype, device=z.device)


def invariance_loss(z_a: Tensor, z_b: Tensor) -> Tensor:
    """Invariance s = mean((z_a - z_b)^2) over batch and dimensions."""
    _check_pair(z_a, z_b)
    return F.mse_loss(z_a, z_b)


def variance_loss(z: Tensor, gamma: float | Tensor = 1.0, eps: float = 1e-4) -> Tensor:
    """Variance v(z; gamma) = mean_k relu(gamma - sqrt(Var_b(z[:, k]) + eps)), unbiased variance."""
    _check(z)
    std = torch.sqrt(z.var(dim=0) + eps)  # (K,)
    return F.relu(_gamma_like(gamma, z) - std).mean()


def covariance_loss(z: Tensor) -> Tensor:
    """Covariance c(z) = sum_{k != l} Cov(z)_{kl}^2 / K, Cov normalised by B - 1."""
    _check(z)
    b, k = z.shape
    zc = z - z.mean(dim=0)  # (B, K)
    cov = (zc.T @ zc) / (b - 1)  # (K, K)
    off = cov - torch.diag_embed(torch.diagonal(cov))
    return off.pow(2).sum() / k


def _full_precision(z_a: Tensor) -> AbstractContextManager[Any]:
    # Statistics in bf16/fp16 are too coarse: compute in float32 with autocast switched off.
    if z_a.device.type in ("cuda", "cpu"):
        return torch.autocast(device_type=z_a.device.type, enabled=False)
    return nullcontext()


def _upcast(z: Tensor) -> Tensor:
    """float32 for half-precision inputs; float32 and float64 as they are."""
    return z.float() if z.dtype in (torch.float16, torch.bfloat16) else z


def vicreg_loss(
    z_a: Tensor,
    z_b: Tensor,
    *,
    gamma: float | Tensor = 1.0,
    sim_coeff: float = 25.0,
    std_coeff: float = 25.0,
    cov_coeff: float = 1.0,
    eps: float = 1e-4,
) -> tuple[Tensor, dict[str, Tensor]]:
    """VICReg: loss = sim * s + std * (v(z_a) + v(z_b)) / 2 + cov * (c(z_a) + c(z_b)).

    `gamma` is the variance target (a float or a 0-d tensor; never differentiated). Returns the loss and
    the detached parts {"invariance", "variance", "covariance"} (variance averaged, covariance summed).
    """
    _check_pair(z_a, z_b)
    with _full_precision(z_a):
        if z_a.dtype in (torch.float16, torch.bfloat16):
            z_a, z_b = z_a.float(), z_b.float()
        s = invariance_loss(z_a, z_b)
        v = (variance_loss(z_a, gamma, eps) + variance_loss(z_b, gamma, eps)) / 2
        c = covariance_loss(z_a) + covariance_loss(z_b)
        loss = sim_coeff * s + std_coeff * v + cov_coeff * c
    return loss, {"invariance": s.detach(), "variance": v.detach(), "covariance": c.detach()}


class VICRegLoss(nn.Module):
    """Holds the VICReg coefficients; the variance target `gamma` is given per call (it moves per batch)."""

    def __init__(self, sim_coeff: float = 25.0, std_coeff: float = 25.0, cov_coeff: float = 1.0,
                 eps: float = 1e-4) -> None:
        super().__init__()
        self.sim_coeff = sim_coeff
        self.std_coeff = std_coeff
        self.cov_coeff = cov_coeff
        self.eps = eps

    @classmethod
    def from_config(cls, cfg: LossConfig) -> VICRegLoss:
        return cls(sim_coeff=cfg.sim_coeff, std_coeff=cfg.std_coeff, cov_coeff=cfg.cov_coeff)

    def forward(self, z_a: Tensor, z_b: Tensor, gamma: float | Tensor = 1.0) -> tuple[Tensor, dict[str, Tensor]]:
        return vicreg_loss(z_a, z_b, gamma=gamma, sim_coeff=self.sim_coeff, std_coeff=self.std_coeff,
                           cov_coeff=self.cov_coeff, eps=self.eps)

    def extra_repr(self) -> str:
        return f"sim_coeff={self.sim_coeff}, std_coeff={self.std_coeff}, cov_coeff={self.cov_coeff}, eps={self.eps}"
