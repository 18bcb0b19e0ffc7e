"""Device choice and the torch.distributed context (torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_*).

Backend nccl on CUDA, gloo on CPU. Without torchrun (WORLD_SIZE unset or 1) everything is a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from dynmix.config import DEVICES as CONFIG_DEVICES
from dynmix.errors import DynMIXError

DEVICES = CONFIG_DEVICES


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """'auto' -> CUDA when available else CPU; 'cuda' without a GPU is an error."""
    if name not in DEVICES:
        raise DynMIXError(f"unknown device {name!r}; expected one of {', '.join(DEVICES)}")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DynMIXError("--device cuda was asked for but torch sees no CUDA GPU (use --device cpu or auto)")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    device: torch.device
    owns_group: bool = False  # this context initialised the process group and tears it down

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, i: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """The contiguous share for this rank of the global (B,) sample indices (sizes differ by at most one)."""
        if self.world_size == 1:
            return i, t
        return i.tensor_split(self.world_size)[self.rank], t.tensor_split(self.world_size)[self.rank]

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's value of a picklable object, on every rank."""
        if self.world_size == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def setup_distributed(device: str) -> DistContext:
    """Join the torchrun process group when WORLD_SIZE > 1 (or reuse one already initialised)."""
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        return DistContext(rank, world, resolve_device(device, int(os.environ.get("LOCAL_RANK", rank))))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(0, 1, resolve_device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size(), dev, owns_group=True)
