"""Encoders of the two views and the VICReg projector (docs/DESIGN.md §4).

Shapes: B batch, F explicit features, L window (days, oldest first), C channels of the implicit view,
H hidden width, D representation, K projector output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _check(x: Tensor, name: str, shape: tuple[int | None, ...], letters: str) -> None:
    ok = x.ndim == len(shape) and all(s is None or x.shape[i] == s for i, s in enumerate(shape))
    if not ok:
        want = ", ".join(letters[i] if s is None else f"{letters[i]}={s}" for i, s in enumerate(shape))
        raise ValueError(f"{name} must have shape ({want}), got {tuple(x.shape)}")


class ExplicitEncoder(nn.Module):
    """f_E: MLP (Linear-LayerNorm-GELU) x 2 -> Linear, (B, F) -> (B, D)."""

    def __init__(self, n_features: int, hidden: int, dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.n_features = n_features
        self.net = nn.Sequential(
            nn.Linear(n_features, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, dim, bias=False),  # feeds the projector's BatchNorm: a bias would get no gradient
        )

    def forward(self, x: Tensor) -> Tensor:
        _check(x, "explicit view", (None, self.n_features), "BF")
        return self.net(x)  # type: ignore[no-any-return]


class CausalConvBlock(nn.Module):
    """Residual block: dilated causal Conv1d -> LayerNorm over channels -> GELU -> dropout, (B, H, L) -> same.

    Normalisation is per time step, so output at day l depends on days <= l only.
    """

    def __init__(self, channels: int, dilation: int, kernel_size: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        self.pad = (kernel_size - 1) * dilation
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation)
        self.norm = nn.LayerNorm(channels)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: Tensor) -> Tensor:
        y = self.conv(F.pad(h, (self.pad, 0)))  # (B, H, L): left padding only, causal
        y = self.drop(F.gelu(self.norm(y.transpose(1, 2)))).transpose(1, 2)
        return h + y


class MomentInput(nn.Module):
    """Pointwise input projection, (B, C, L) -> (B, H, L), on the channels plus, when C >= 2, the same-day products
    of channel 0 (the company) with every other channel (the market, the statistical factors) and ret^2 - 1:
    co-movement and volatility bursts become first moments the encoder can average (without them the mean
    embedding does not recover planted sectors).
    """

    def __init__(self, n_channels: int, channels: int) -> None:
        super().__init__()
        self.moments = n_channels >= 2
        self.conv = nn.Conv1d(2 * n_channels if self.moments else n_channels, channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        if self.moments:
            x = torch.cat([x, x[:, :1] * x[:, 1:], x[:, :1] ** 2 - 1], dim=1)  # (B, 2C, L)
        return self.conv(x)  # type: ignore[no-any-return]


class ImplicitEncoder(nn.Module):
    """f_I: temporal conv encoder, (B, L, C) -> (B, D).

    Input projection, residual dilated causal conv blocks (dilations 1, 2, 4, ...), then the last step and
    the mean over the window are concatenated and mapped to D.
    """

    def __init__(self, n_channels: int, window: int, channels: int, layers: int, dim: int,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.n_channels = n_channels
        self.window = window
        self.inp = MomentInput(n_channels, channels)
        self.blocks = nn.ModuleList([CausalConvBlock(channels, 2**i, dropout=dropout) for i in range(layers)])
        self.norm = nn.LayerNorm(2 * channels)
        self.out = nn.Linear(2 * channels, dim, bias=False)  # feeds a BatchNorm (projector): no bias

    def forward(self, x: Tensor) -> Tensor:
        _check(x, "implicit view", (None, self.window, self.n_channels), "BLC")
        h = self.inp(x.transpose(1, 2))  # (B, H, L)
        for block in self.blocks:
            h = block(h)
        pooled = torch.cat([h[:, :, -1], h.mean(dim=2)], dim=1)  # (B, 2H)
        return self.out(self.norm(pooled))  # type: ignore[no-any-return]


class Projector(nn.Module):
    """g: the VICReg expander, Linear-BN-ReLU, Linear-BN-ReLU, Linear, (B, D) -> (B, K); no Linear has a bias
    (each before a BatchNorm would get an exactly-zero gradient; the last one's is VICReg's own choice).

    BatchNorm needs B >= 2 in training mode; under DDP convert it with nn.SyncBatchNorm if wanted.
    """

    def __init__(self, dim: int, hidden: int, out: int) -> None:
        super().__init__()
        self.dim = dim
        self.net = nn.Sequential(
            nn.Linear(dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, out, bias=False),
        )

    def forward(self, h: Tensor) -> Tensor:
        _check(h, "representation", (None, self.dim), "BD")
        return self.net(h)  # type: ignore[no-any-return]


class Predictor(nn.Module):
    """q: BYOL's online predictor, Linear-BN-ReLU-Linear, (B, K) -> (B, K)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.dim = dim
        self.net = nn.Sequential(nn.Linear(dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, dim))

    def forward(self, z: Tensor) -> Tensor:
        _check(z, "projection", (None, self.dim), "BK")
        return self.net(z)  # type: ignore[no-any-return]
