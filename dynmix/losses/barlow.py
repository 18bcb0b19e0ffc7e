"""Barlow Twins (Zbontar et al. 2021, github.com/facebookresearch/barlowtwins): redundancy reduction.

Standardise each projection dimension over the batch, take the (K, K) cross-correlation of the two views and push
it to the identity:

    c = z_a_norm^T z_b_norm / B,   loss = sum_k (1 - c_kk)^2 + lambda * sum_{k != l} c_kl^2

Shapes: B batch, K projector dimension. Standardised as the official script's affine-free BatchNorm does (biased
variance, eps 1e-5), so two identical decorrelated views give exactly c = I; normalised by the tensor's own
batch size.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dynmix.losses.vicreg import _check_pair, _full_precision, _upcast


def _standardise(z: Tensor, eps: float) -> Tensor:
    return (z - z.mean(dim=0)) / torch.sqrt(z.var(dim=0, unbiased=False) + eps)


def cross_correlation(z_a: Tensor, z_b: Tensor, eps: float = 1e-5) -> Tensor:
    """(K, K) cross-correlation of the batch-standardised projections."""
    _check_pair(z_a, z_b)
    a = _standardise(z_a, eps)  # (B, K)
    b = _standardise(z_b, eps)  # (B, K)
    return (a.T @ b) / z_a.shape[0]  # (K, K)


def barlow_twins_loss(z_a: Tensor, z_b: Tensor, *, lambd: float = 5e-3) -> tuple[Tensor, dict[str, Tensor]]:
    """(loss, detached parts {"on_diagonal", "off_diagonal"}) of the two projections (B, K) each."""
    with _full_precision(z_a):
        c = cross_correlation(_upcast(z_a), _upcast(z_b))
        diag = torch.diagonal(c)
        on = (1 - diag).pow(2).sum()
        off = c.pow(2).sum() - diag.pow(2).sum()
        loss = on + lambd * off
    return loss, {"on_diagonal": on.detach(), "off_diagonal": off.detach()}


class BarlowTwinsLoss(nn.Module):
    """Holds the off-diagonal weight lambda (5e-3 in the paper)."""

    def __init__(self, lambd: float = 5e-3) -> None:
        super().__init__()
        self.lambd = lambd

    def forward(self, z_a: Tensor, z_b: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        return barlow_twins_loss(z_a, z_b, lambd=self.lambd)

    def extra_repr(self) -> str:
        return f"lambd={self.lambd}"
