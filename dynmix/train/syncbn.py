"""BatchNorm over the global batch under torch.distributed, on any device and backend (gloo included).

`nn.SyncBatchNorm` only runs on GPUs; this one uses the autograd-aware `all_reduce_sum` of
`dynmix.losses.distributed`, so a CPU/gloo run normalises exactly like one process on the whole batch.
Backward: the all-reduce sums over ranks, like `gather_cat`, so every gradient reaching rank r is W times
its single-process value and DDP's average over the W ranks restores it (see dynmix/train/loop.py).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dynmix.losses.distributed import all_reduce_sum, is_distributed


class GlobalBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d on (B, C) whose training statistics are those of the batch gathered over every rank."""

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        assert x.ndim == 2, f"GlobalBatchNorm1d expects (B, C), got {tuple(x.shape)}"
        x = x.float()  # statistics in float32 (autocast would otherwise leave bf16 sums)
        n = all_reduce_sum(torch.tensor([float(x.shape[0])], device=x.device)).detach()  # global B
        mean = all_reduce_sum(x.sum(dim=0)) / n  # (C,)
        var = all_reduce_sum((x - mean).pow(2).sum(dim=0)) / n  # (C,) biased, used to normalise
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            assert self.num_batches_tracked is not None
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * n / (n - 1).clamp_min(1), m)  # unbiased, like BatchNorm
        y = (x - mean) * torch.rsqrt(var + self.eps)
        if self.affine:
            y = y * self.weight + self.bias
        return y


def convert_global_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm1d in `module` by a GlobalBatchNorm1d sharing its parameters and buffers.

    Call it before building the optimiser. The state_dict keys are unchanged (checkpoints stay compatible).
    """
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm1d) and not isinstance(child, GlobalBatchNorm1d):
            new = GlobalBatchNorm1d(child.num_features, child.eps, child.momentum, child.affine,
                                    child.track_running_stats, device=None, dtype=None)
            new.weight, new.bias = child.weight, child.bias
            for buf in ("running_mean", "running_var", "num_batches_tracked"):
                setattr(new, buf, getattr(child, buf))
            new.train(child.training)
            setattr(module, name, new)
        else:
            convert_global_batchnorm(child)
    return module

