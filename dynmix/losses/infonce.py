"""InfoNCE, symmetric and cross-view (CLIP's form of SimCLR's NT-Xent; van den Oord et al. 2018).

Sample b of one view is the positive of sample b of the other; every other sample of the other view is a negative:

    s = normalize(z_a) normalize(z_b)^T / tau                          (B, B) cosine similarities
    loss = (CE(s, arange(B)) + CE(s^T, arange(B))) / 2

Shapes: B batch, K projector dimension. SimCLR's NT-Xent (lightly's `NTXentLoss`) also uses the other samples of the
same view as negatives; with two different views (explicit features, return windows) the cross-view form keeps each
softmax over one kind of input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dynmix.losses.vicreg import _check_pair, _full_precision, _upcast


def info_nce_loss(z_a: Tensor, z_b: Tensor, *, temperature: float = 0.1) -> tuple[Tensor, dict[str, Tensor]]:
    """(loss, detached parts {"positive_sim", "top1"}) of the two projections (B, K) each."""
    _check_pair(z_a, z_b)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    with _full_precision(z_a):
        a, b = F.normalize(_upcast(z_a), dim=1), F.normalize(_upcast(z_b), dim=1)  # (B, K)
        logits = a @ b.T / temperature  # (B, B)
        target = torch.arange(a.shape[0], device=a.device)
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    with torch.no_grad():
        positive = torch.diagonal(logits).mean() * temperature
        top1 = (logits.argmax(dim=1) == target).float().mean()
    return loss, {"positive_sim": positive, "top1": top1}


class InfoNCELoss(nn.Module):
    """Holds the temperature tau."""

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, z_a: Tensor, z_b: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        return info_nce_loss(z_a, z_b, temperature=self.temperature)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"
