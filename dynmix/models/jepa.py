"""Temporal JEPA (docs/DESIGN.md §7): a context encoder f_I and a horizon-conditioned predictor.

Shapes: B batch, L window, C channels, D representation, H horizon, E horizon embedding.

The context encoder reads the implicit window ending at t; the predictor maps its representation to the target
representations of the windows ending at t+1 .. t+H. The target encoder is an EMA copy of the context encoder
(`dynmix.train.ema.EMA`), held by the training step, never by this module; the model never computes the loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dynmix.models.encoders import ImplicitEncoder


class HorizonPredictor(nn.Module):
    """(B, D) context representation -> (B, H, D) predicted target representations, one per horizon h = 1..H.

    The horizon enters as a learned embedding (H, E) concatenated to the context; an MLP (Linear-LayerNorm-GELU
    x 2 -> Linear) maps each (context, horizon) pair to D.
    """

    def __init__(self, dim: int, horizon: int, hidden: int, horizon_dim: int = 16) -> None:
        super().__init__()
        assert horizon >= 1, f"horizon must be >= 1, got {horizon}"
        self.dim, self.horizon = dim, horizon
        self.horizon_emb = nn.Embedding(horizon, horizon_dim)
        self.net = nn.Sequential(
            nn.Linear(dim + horizon_dim, hidden), nn.LayerNorm(hidden), nn.GELU(),
            nn.Linear(hidden, hidden), nn.LayerNorm(hidden), nn.GELU(),
            nn.Linear(hidden, dim),
        )

    def forward(self, h: Tensor) -> Tensor:
        if h.ndim != 2 or h.shape[1] != self.dim:
            raise ValueError(f"context representation must have shape (B, D={self.dim}), got {tuple(h.shape)}")
        b = h.shape[0]
        e = self.horizon_emb.weight  # (H, E)
        x = torch.cat([h[:, None, :].expand(b, self.horizon, self.dim),
                       e[None, :, :].expand(b, self.horizon, e.shape[1])], dim=2)  # (B, H, D + E)
        return self.net(x)  # type: ignore[no-any-return]  # (B, H, D)


class TemporalJEPA(nn.Module):
    """Context encoder f_I (B, L, C) -> (B, D) and predictor (B, D) -> (B, H, D)."""

    def __init__(self, encoder: ImplicitEncoder, dim: int, horizon: int, hidden: int, horizon_dim: int = 16) -> None:
        super().__init__()
        self.encoder = encoder
        self.predictor = HorizonPredictor(dim, horizon, hidden, horizon_dim)

    @property
    def horizon(self) -> int:
        return self.predictor.horizon

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """{"context": (B, D), "pred": (B, H, D)} for the implicit windows `x` (B, L, C) ending at t."""
        z = self.encoder(x)  # (B, D)
        return {"context": z, "pred": self.predictor(z)}


@torch.no_grad()
def encode_targets(target_encoder: nn.Module, windows: Tensor) -> Tensor:
    """Layer-normed target representations (B, H, D) of future windows (B, H, L, C); no gradient flows."""
    assert windows.ndim == 4, f"future windows must be (B, H, L, C), got {tuple(windows.shape)}"
    b, h, l_, c = windows.shape
    z = target_encoder(windows.reshape(b * h, l_, c))  # (B*H, D)
    z = z.float().reshape(b, h, -1)  # (B, H, D)
    return F.layer_norm(z, z.shape[-1:])


def prediction_error(pred: Tensor, target: Tensor, kind: str = "smooth_l1") -> Tensor:
    """Elementwise prediction error (same shape as `pred`): smooth-L1 (beta 1) or squared error."""
    if pred.shape != target.shape:
        raise ValueError(f"pred and target differ in shape: {tuple(pred.shape)} vs {tuple(target.shape)}")
    if kind == "smooth_l1":
        return F.smooth_l1_loss(pred, target, reduction="none")
    if kind == "mse":
        return F.mse_loss(pred, target, reduction="none")
    raise ValueError(f"unknown JEPA loss {kind!r}; expected smooth_l1 or mse")
