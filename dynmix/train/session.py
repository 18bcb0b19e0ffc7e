"""The one set-up around the engine: wrapping (DDP, torch.compile), resume, checkpoints, metrics, Ctrl+C.

A stage (dynmix.train.job, .jepa, .world) builds its model, objective, sampler, optimiser, schedule and EMA, then
hands them to `run_session` with a `Session` saying where the checkpoint and metrics go. Checkpoints have one
format (dynmix.runs.checkpoint): {step, epoch, model, ema, optimizer, scheduler, config, rng, views, meta}.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dynmix.errors import Interrupted
from dynmix.runs.checkpoint import restore, save_checkpoint
from dynmix.runs.device import DistContext
from dynmix.runs.threads import single_thread
from dynmix.train.ema import EMA
from dynmix.train.loop import Engine, Objective, Sampler
from dynmix.train.recorder import Recorder


@dataclass
class Session:
    """What one training saves and shows, and how it continues."""

    checkpoint: Path  # the checkpoint file (written atomically, on the main rank)
    metrics: Path  # its metrics.jsonl
    config: dict[str, Any]  # the resolved config, saved in the checkpoint
    stamp: dict[str, Any]  # what it was trained on (views record, ...): the checkpoint's "views"
    epochs: int
    log_every: int = 10
    checkpoint_every: int = 0
    label: str = "train"  # the progress bar's label
    resume_hint: str = ""  # the command that continues this training
    compile: bool = False  # torch.compile the model as run
    one_thread: bool = False  # small tensors on a CPU: one torch thread (dynmix.runs.threads)
    meta: dict[str, Any] = field(default_factory=dict)  # extra plain data saved in the checkpoint


def wrap(model: nn.Module, ctx: DistContext, compile_model: bool) -> nn.Module:
    """The model as run: DDP across processes, then torch.compile when asked."""
    net: nn.Module = model
    if ctx.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP  # only under torchrun

        ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        net = DDP(model, device_ids=ids)
    if compile_model:  # CUDA or CPU (inductor needs a C++ compiler on CPU)
        net = torch.compile(net)  # type: ignore[assignment]
    return net


def run_session(s: Session, objective: Objective, sampler: Sampler, optimizer: torch.optim.Optimizer,
                scheduler: Any, ctx: DistContext, *, ema: EMA | None = None, ckpt: dict[str, Any] | None = None,
                progress: bool = True, max_steps: int | None = None, info: str = "") -> Engine:
    """Restore `ckpt` (an exact resume) or start at step 0, train to the end or `max_steps`, save checkpoints.

    Returns the engine (its `step`; `done` tells whether every epoch ran).
    """
    model = objective.model
    if ckpt is not None:
        restore(ckpt, model=model, ema=ema, optimizer=optimizer, scheduler=scheduler)
    objective.net = wrap(model, ctx, s.compile)
    recorder = Recorder(s.metrics, enabled=ctx.is_main, progress=progress, label=s.label,
                        bar_text=objective.bar_text, collapse=objective.collapse)
    engine = Engine(objective, sampler, optimizer, scheduler, ema=ema, recorder=recorder)
    engine.step = start = int(ckpt["step"]) if ckpt is not None else 0
    recorder.truncate(start)
    recorder.info(info + (f", resuming at step {start}" if start else ""))
    last_saved = [start]

    def save(step: int, epoch: int) -> None:
        if ctx.is_main:
            save_checkpoint(s.checkpoint, step=step, epoch=epoch, model=model, ema=ema, optimizer=optimizer,
                            scheduler=scheduler, config=s.config, views=s.stamp, meta=s.meta)
        last_saved[0] = step

    try:
        with single_thread(s.one_thread and ctx.device.type == "cpu"):
            engine.done = engine.fit(s.epochs, max_steps=max_steps, log_every=s.log_every,
                                     checkpoint_every=s.checkpoint_every, save=save)
    except KeyboardInterrupt as e:
        raise Interrupted(f"at step {engine.step}; the checkpoint of step {last_saved[0]} in {s.checkpoint} is "
                          f"kept: continue with `{s.resume_hint}`") from e
    if not engine.done:
        recorder.info(f"stopped at step {engine.step} of {s.epochs * len(sampler)}: continue with `{s.resume_hint}`")
    return engine
