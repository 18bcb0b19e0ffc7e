"""BYOL (Grill et al. 2020): an online predictor regresses the projection of an EMA target network.

    L(p, z) = mean_b (2 - 2 cos(p_b, z_b)),  z from the target (no gradient)
    loss = (L(p_a, z_b') + L(p_b, z_a')) / 2     p_x: online prediction of view x, z_x': target projection of x

Shapes: B batch, K projector dimension. The target is the engine's EMA of the online model (dynmix.train.ema,
momentum 0.996 -> 1 over training); this module only computes the regression and never differentiates the target.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from dynmix.losses.vicreg import _check_pair, _full_precision, _upcast


def byol_regression(p: Tensor, z: Tensor) -> Tensor:
    """mean_b (2 - 2 cos(p_b, z_b)) with `z` detached."""
    _check_pair(p, z)
    return (2 - 2 * F.cosine_similarity(p, z.detach(), dim=1)).mean()


def byol_loss(p_a: Tensor, p_b: Tensor, z_a_target: Tensor, z_b_target: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """Symmetric BYOL: each view's prediction regresses the other view's target projection."""
    with _full_precision(p_a):
        ab = byol_regression(_upcast(p_a), _upcast(z_b_target))
        ba = byol_regression(_upcast(p_b), _upcast(z_a_target))
        loss = (ab + ba) / 2
    return loss, {"regression_ab": ab.detach(), "regression_ba": ba.detach()}
