"""Optimiser and learning-rate schedule: AdamW with linear warm-up then cosine decay to zero.

The schedule is a `LambdaLR` over a picklable callable, so its state goes into the checkpoint and a resumed
run continues on the same curve.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dynmix.config import TrainConfig


class WarmupCosine:
    """lr multiplier at `step`: linear 0 -> 1 over `warmup` steps, then cosine 1 -> 0 until `total` steps."""

    def __init__(self, total: int, warmup: int) -> None:
        assert total >= 1 and 0 <= warmup <= total, f"need 0 <= warmup <= total, total >= 1; got {warmup}, {total}"
        self.total = total
        self.warmup = warmup

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        span = max(1, self.total - self.warmup)
        progress = min(1.0, (step - self.warmup) / span)
        return 0.5 * (1.0 + math.cos(math.pi * progress))


def make_optimizer(model: nn.Module, cfg: TrainConfig, total_steps: int
                   ) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (no weight decay on biases and norm parameters) and its warm-up + cosine `LambdaLR`."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr)
    warmup = int(round(cfg.warmup_frac * total_steps))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, WarmupCosine(total_steps, min(warmup, total_steps)))
    return opt, sched
