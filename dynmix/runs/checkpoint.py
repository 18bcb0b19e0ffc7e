"""The one checkpoint format, `{step, epoch, model, ema, optimizer, scheduler, config, rng, views, meta}`, atomic.

Everything is a tensor, a number, a string or a list/dict of those (the config as a plain dict, RNG states as
uint8 tensors), so `torch.load(..., weights_only=True)` reads it back. Writes go through a temporary file and
`os.replace`, so an interrupted save leaves the previous checkpoint intact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from dynmix.errors import DynMIXError
from dynmix.io import atomic_write

KEYS = ("step", "epoch", "model", "ema", "optimizer", "scheduler", "config", "rng")


def rng_state() -> dict[str, Any]:
    """The torch RNG states (CPU and, when present, every CUDA device) as tensors."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under a DDP / torch.compile wrapper."""
    inner = getattr(model, "module", model)
    return getattr(inner, "_orig_mod", inner)  # type: ignore[no-any-return]


def save_checkpoint(path: str | Path, *, step: int, epoch: int, model: nn.Module, ema: Any,
                    optimizer: torch.optim.Optimizer, scheduler: Any, config: dict[str, Any],
                    views: dict[str, Any], meta: dict[str, Any] | None = None) -> Path:
    """Write the checkpoint atomically. `views` records what it was trained on (views signature and stamp, and
    for a model derived from a run the run's split and step); `meta` holds other plain data (e.g. model sizes).
    """
    obj = {
        "step": int(step),
        "epoch": int(epoch),
        "model": unwrap(model).state_dict(),
        "ema": ema.state_dict() if ema is not None else {},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "config": config,
        "rng": rng_state(),
        "views": views,
        "meta": meta or {},
    }
    return atomic_write(path, lambda p: torch.save(obj, p))


def restore(ckpt: dict[str, Any], *, model: nn.Module, ema: Any, optimizer: Any, scheduler: Any) -> None:
    """Put a loaded checkpoint's model, EMA, optimiser, scheduler and RNG state back (an exact resume)."""
    model.load_state_dict(ckpt["model"])
    if ema is not None:
        ema.load_state_dict(ckpt["ema"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    set_rng_state(ckpt["rng"])


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with `weights_only=True`; a missing or unreadable file is a DynMIXError."""
    path = Path(path)
    if not path.exists():
        raise DynMIXError(f"no checkpoint at {path}: did the run save one (it does every checkpoint_every steps)?")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # a torn or foreign file
        raise DynMIXError(f"checkpoint {path} could not be read ({type(e).__name__}: {e})") from e
    missing = [k for k in KEYS if k not in ckpt]
    if missing:
        raise DynMIXError(f"checkpoint {path} lacks {missing}; expected keys {list(KEYS)}")
    return ckpt  # type: ignore[no-any-return]
