"""Exponential moving average of a model, with momentum a function of the step.

The momentum is linear from `momentum[0]` at step 0 to `momentum[1]` at `total_steps` (I-JEPA's 0.996 -> 1.0),
computed from the step number rather than drawn from a generator, so a resumed run continues exactly.
The JEPA target encoder is this EMA of the context encoder.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class EMA:
    """A frozen copy of `model` updated as `p_ema <- m(step) * p_ema + (1 - m(step)) * p`."""

    def __init__(self, model: nn.Module, momentum: tuple[float, float] = (0.996, 1.0), total_steps: int = 1) -> None:
        assert 0.0 <= momentum[0] <= 1.0 and 0.0 <= momentum[1] <= 1.0, f"momenta must lie in [0, 1], got {momentum}"
        self.module = copy.deepcopy(model).eval()
        self.module.requires_grad_(False)
        self.start, self.end = float(momentum[0]), float(momentum[1])
        self.total_steps = max(1, int(total_steps))

    def momentum(self, step: int) -> float:
        """Momentum used by the update made after optimiser step `step` (0-based)."""
        frac = min(1.0, max(0.0, step / self.total_steps))
        return self.start + (self.end - self.start) * frac

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        m = self.momentum(step)
        for p_ema, p in zip(self.module.parameters(), model.parameters(), strict=True):
            p_ema.lerp_(p.detach().to(p_ema.dtype), 1.0 - m)
        for b_ema, b in zip(self.module.buffers(), model.buffers(), strict=True):
            b_ema.copy_(b)  # running statistics and counters follow the live model

    def state_dict(self) -> dict[str, Any]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state)
