"""Autograd-aware collectives for losses under torch.distributed (docs/DESIGN.md §13).

Every rank computes the same loss from the gathered / reduced statistics. The backward of a gather
(or all-reduce) sums, over ranks, the gradients every rank's copy of the loss sends to the local shard;
DDP then averages parameter gradients over ranks, so the result equals the single-process gradient of
the same loss on the global batch. Without an initialised process group every helper is the identity.
"""

from __future__ import annotations

import warnings

import torch
import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    """True when torch.distributed is available and a process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def _nn_functional():  # type: ignore[no-untyped-def]
    # torch.distributed.nn.functional is the collective API whose all_gather backward also works on gloo
    # (it emulates reduce-scatter with all-to-all); torch >= 2.11 flags it deprecated with a FutureWarning.
    import torch.distributed.nn.functional as fn

    return fn


def all_reduce_sum(x: Tensor) -> Tensor:
    """Autograd-aware sum of `x` over ranks; identity when not distributed."""
    if not is_distributed():
        return x
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*deprecated.*")
        return _nn_functional().all_reduce(x, op=dist.ReduceOp.SUM)  # type: ignore[no-any-return]


def gather_cat(z: Tensor) -> Tensor:
    """Concatenate every rank's `z` (B_r, ...) along dim 0 in rank order, keeping the autograd graph.

    The batch sizes B_r may differ: sizes are exchanged first, each shard is padded to the largest,
    gathered, and the padding stripped. Identity when torch.distributed is not initialised.
    """
    if not is_distributed():
        return z
    if z.ndim < 1:
        raise ValueError(f"gather_cat needs a tensor with a batch dimension, got shape {tuple(z.shape)}")
    n = dist.get_world_size()
    size = torch.tensor([z.shape[0]], dtype=torch.long, device=z.device)
    sizes = [torch.zeros_like(size) for _ in range(n)]
    dist.all_gather(sizes, size)
    counts = [int(s.item()) for s in sizes]  # B_r for every rank
    b_max = max(counts)
    pad = b_max - z.shape[0]
    if pad:
        z = torch.cat([z, z.new_zeros((pad, *z.shape[1:]))], dim=0)  # (B_max, ...)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*deprecated.*")
        parts = _nn_functional().all_gather(z)  # world_size x (B_max, ...)
    return torch.cat([p[:c] for p, c in zip(parts, counts, strict=True)], dim=0)  # (sum B_r, ...)
