"""SIGReg: sketched isotropic Gaussian regularisation (LeJEPA, github.com/rbalestr-lab/lejepa).

Project the embeddings (B, D) on M random unit directions and compare, per slice, the empirical
characteristic function of the projections with the standard normal one (Epps-Pulley statistic):

    err(t) = (mean_b cos(t x_b) - exp(-t^2/2))^2 + (mean_b sin(t x_b))^2
    stat   = N * integral over [-t_max, t_max] of err(t) exp(-t^2/2) dt      (trapezoid on t >= 0, doubled by symmetry)
    sigreg = mean over the M slices

Shapes: B batch, D embedding, M slices, P integration points. Under torch.distributed the cos/sin sums
and the batch size are all-reduced (autograd-aware), so N is the global batch and every rank gets the
statistic of the global batch; the directions must then be drawn from a generator seeded identically on
every rank (the `SIGReg` module seeds one from its step counter).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dynmix.losses.distributed import all_reduce_sum, is_distributed


def random_directions(d: int, m: int, generator: torch.Generator | None = None) -> Tensor:
    """(D, M) float32 matrix of Gaussian directions with unit-norm columns, on the generator's device."""
    device = generator.device if generator is not None else None
    a = torch.randn((d, m), generator=generator, device=device, dtype=torch.float32)  # (D, M)
    return a / a.norm(dim=0, keepdim=True)


def sigreg(
    z: Tensor,
    *,
    num_slices: int = 256,
    num_points: int = 17,
    t_max: float = 3.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """0-d SIGReg statistic of embeddings `z` (B, D); small when z looks like a standard Gaussian sample."""
    if z.ndim != 2:
        raise ValueError(f"z must be 2-D (B, D), got shape {tuple(z.shape)}")
    if num_points < 2 or num_slices < 1:
        raise ValueError(f"need num_points >= 2 and num_slices >= 1, got {num_points} and {num_slices}")
    b, d = z.shape
    if b < 1 and not is_distributed():
        raise ValueError("sigreg needs at least one sample in the batch")
    with torch.autocast(device_type=z.device.type, enabled=False):
        if z.dtype in (torch.float16, torch.bfloat16):
            z = z.float()
        a = random_directions(d, num_slices, generator).to(device=z.device, dtype=z.dtype)  # (D, M)
        x = z @ a  # (B, M)
        t = torch.linspace(0.0, t_max, num_points, device=z.device, dtype=z.dtype)  # (P,)
        phi = torch.exp(-0.5 * t**2)  # (P,) characteristic function of N(0, 1)
        dt = t_max / (num_points - 1)
        w = torch.full_like(t, 2 * dt)  # trapezoid weights, doubled for t < 0 by symmetry
        w[0] = w[-1] = dt
        xt = x.unsqueeze(-1) * t  # (B, M, P)
        cos_sum, sin_sum = xt.cos().sum(dim=0), xt.sin().sum(dim=0)  # (M, P)
        n = torch.tensor(float(b), device=z.device, dtype=z.dtype)
        if is_distributed():
            cos_sum, sin_sum = all_reduce_sum(cos_sum), all_reduce_sum(sin_sum)
            n = all_reduce_sum(n)
        err = (cos_sum / n - phi) ** 2 + (sin_sum / n) ** 2  # (M, P)
        stat = (err @ (w * phi)) * n  # (M,)
        return stat.mean()


class SIGReg(nn.Module):
    """SIGReg with directions redrawn every call from a generator seeded by `seed + step`.

    The step counter is a buffer, so it is saved in checkpoints (resume draws the same directions) and
    advances identically on every rank. Pass `step` explicitly to pin the directions.
    """

    step: Tensor

    def __init__(self, num_slices: int = 256, num_points: int = 17, t_max: float = 3.0, seed: int = 0) -> None:
        super().__init__()
        self.num_slices = num_slices
        self.num_points = num_points
        self.t_max = t_max
        self.seed = seed
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def forward(self, z: Tensor, step: int | None = None) -> Tensor:
        if step is None:
            step = int(self.step.item())
            self.step.add_(1)
        g = torch.Generator(device="cpu").manual_seed(self.seed + step)
        return sigreg(z, num_slices=self.num_slices, num_points=self.num_points, t_max=self.t_max, generator=g)

    def extra_repr(self) -> str:
        return f"num_slices={self.num_slices}, num_points={self.num_points}, t_max={self.t_max}, seed={self.seed}"
