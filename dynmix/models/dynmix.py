"""DynMIX: two encoders into one representation space, two projectors for the loss (docs/DESIGN.md §4-5).

Shapes: B batch, F explicit features, L window, C implicit channels, D representation, K projector.
The model never computes the loss (the trainer combines `forward`'s outputs with `dynmix.losses`).
"""

from __future__ import annotations

from torch import Tensor, nn

from dynmix.config import ModelConfig
from dynmix.models.encoders import ExplicitEncoder, ImplicitEncoder, Predictor, Projector


class DynMIX(nn.Module):
    """f_E / f_I encode the explicit / implicit view to D; g_E / g_I expand each to K for the pair loss.

    With `predictor` (the BYOL objective), q_E / q_I predict, from each view's projection, the other view's.
    """

    def __init__(self, cfg: ModelConfig, n_features: int, n_channels: int, window: int, *,
                 predictor: bool = False) -> None:
        super().__init__()
        self.cfg = cfg
        self.f_e = ExplicitEncoder(n_features, cfg.explicit_hidden, cfg.dim, cfg.dropout)
        self.f_i = ImplicitEncoder(n_channels, window, cfg.implicit_width, cfg.implicit_layers, cfg.dim,
                                   cfg.dropout)
        self.g_e = Projector(cfg.dim, cfg.projector_hidden, cfg.projector_dim)
        self.g_i = Projector(cfg.dim, cfg.projector_hidden, cfg.projector_dim)
        self.q_e = Predictor(cfg.projector_dim, cfg.projector_hidden) if predictor else None
        self.q_i = Predictor(cfg.projector_dim, cfg.projector_hidden) if predictor else None

    def embed(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Representations {"explicit", "implicit", "fused"}, each (B, D), of a batch with
        "explicit" (B, F) and "implicit" (B, L, C); fused = (explicit + implicit) / 2.
        """
        missing = {"explicit", "implicit"} - set(batch)
        if missing:
            raise KeyError(f"batch lacks {sorted(missing)}; expected keys 'explicit' (B, F) and 'implicit' (B, L, C)")
        x_e, x_i = batch["explicit"], batch["implicit"]
        if x_e.shape[0] != x_i.shape[0]:
            raise ValueError(f"explicit and implicit batches differ in size: {x_e.shape[0]} vs {x_i.shape[0]}")
        h_e = self.f_e(x_e)  # (B, D)
        h_i = self.f_i(x_i)  # (B, D)
        return {"explicit": h_e, "implicit": h_i, "fused": (h_e + h_i) / 2}

    def project(self, reps: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """(z_e, z_i), each (B, K), from the representations of `embed`."""
        return self.g_e(reps["explicit"]), self.g_i(reps["implicit"])

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The three representations (B, D) plus "z_explicit" and "z_implicit" (B, K) (and, with a predictor,
        "p_explicit" and "p_implicit" (B, K): inside forward, so DDP syncs the predictors' gradients too).
        """
        reps = self.embed(batch)
        z_e, z_i = self.project(reps)
        out = {**reps, "z_explicit": z_e, "z_implicit": z_i}
        if self.q_e is not None and self.q_i is not None:
            out |= {"p_explicit": self.q_e(z_e), "p_implicit": self.q_i(z_i)}
        return out
