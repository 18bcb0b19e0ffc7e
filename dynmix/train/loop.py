"""The training engine: one loop for every model (the DynMIX encoders, the temporal JEPA, the world model).

The engine knows nothing about a model's loss: an `Objective` turns a batch into the loss and a dict of detached
scalars to log. The engine owns what every training shares: the optimiser and schedule steps, gradient clipping,
the EMA update, the step counter that makes a resume exact (an epoch's batches are a function of the epoch
number, so a resumed run skips what it already trained on), metrics lines, progress and checkpoints.

Several processes (torchrun, DDP): every rank draws the same global batch; an objective runs its model on this
rank's shard and makes the loss the same number on every rank (gathers, all-reduces), so DDP's gradient average
equals the single-process gradient of the loss on the global batch (see dynmix.train.pair).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from dynmix.train.ema import EMA
from dynmix.train.recorder import Recorder

SaveFn = Callable[[int, int], None]  # (step, epoch) -> writes a checkpoint


class Sampler(Protocol):
    """Batches of one epoch, a function of the epoch number only (so a resume can replay the order)."""

    def __len__(self) -> int: ...

    def epoch(self, epoch: int) -> Iterator[Any]: ...


class Objective:
    """What the engine trains. A subclass sets `model` (the module whose parameters the optimiser steps and the
    checkpoint saves) and implements `step`; the engine sets `net`, the model as run (DDP / torch.compile wrapped).
    """

    model: nn.Module
    net: nn.Module
    grad_clip: float | None = None  # clip the gradient's global norm to this (None: no clipping)

    def step(self, batch: Any, step: int, stats: bool) -> tuple[Tensor, dict[str, Any]]:
        """(loss, detached scalars to log) of one global batch; `stats`: this step is logged, add diagnostics."""
        raise NotImplementedError

    def ema_module(self) -> nn.Module:
        """The live module the engine's EMA (when there is one) follows: by default the whole model."""
        return self.model

    def samples(self, batch: Any) -> int:
        """Samples in a batch, for samples/s."""
        first = batch[0] if isinstance(batch, tuple | list) else batch
        return int(first.numel())

    def bar_text(self, line: dict[str, Any]) -> str:
        """The progress bar's text for one metrics line."""
        return f"epoch {line['epoch']}  loss {line['loss']:.4f}"

    def collapse(self, line: dict[str, Any]) -> str | None:
        """A warning when the logged representations collapse, else None."""
        return None


def autocast(device: torch.device, enabled: bool) -> AbstractContextManager[Any]:
    """bf16 autocast on CUDA when enabled; nothing on a CPU."""
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()


class Engine:
    """Steps `objective` over `sampler`'s batches; `step` counts optimiser steps so far (a resume sets it)."""

    def __init__(self, objective: Objective, sampler: Sampler, optimizer: torch.optim.Optimizer, scheduler: Any, *,
                 ema: EMA | None = None, recorder: Recorder | None = None) -> None:
        self.objective = objective
        if not hasattr(objective, "net"):
            objective.net = objective.model
        self.sampler = sampler
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.ema = ema
        self.recorder = recorder or Recorder(None, enabled=False)
        self.step = 0
        self.done = False  # every epoch ran (set by the session)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.sampler)

    def train_step(self, batch: Any, *, stats: bool = False) -> dict[str, Any]:
        """One optimiser step on a global batch. Returns detached 0-d tensors and floats."""
        obj = self.objective
        obj.net.train()
        loss, logs = obj.step(batch, self.step, stats)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        grad_norm: Tensor | None = None
        if obj.grad_clip is not None:
            grad_norm = torch.nn.utils.clip_grad_norm_(obj.model.parameters(), obj.grad_clip)
        elif stats:
            grad_norm = self._grad_norm()  # after DDP's all-reduce: the global gradient
        lr = float(self.optimizer.param_groups[0]["lr"])
        self.optimizer.step()
        self.scheduler.step()
        result: dict[str, Any] = {"loss": loss.detach(), **logs, "lr": lr}
        if self.ema is not None:
            result["ema_momentum"] = self.ema.momentum(self.step)
            self.ema.update(obj.ema_module(), self.step)
        self.step += 1
        if stats and grad_norm is not None:
            result["grad_norm"] = grad_norm.detach()
        return result

    @torch.no_grad()
    def _grad_norm(self) -> Tensor:
        grads = [p.grad.float().pow(2).sum() for g in self.optimizer.param_groups for p in g["params"]
                 if p.grad is not None]
        return torch.stack(grads).sum().sqrt() if grads else torch.zeros(())

    def fit(self, epochs: int, *, max_steps: int | None = None, log_every: int = 10, checkpoint_every: int = 0,
            save: SaveFn | None = None) -> bool:
        """Train until `epochs` are done (or `max_steps` optimiser steps in all); resumes from `self.step`.

        Logs every `log_every` steps and at each epoch end, calls `save(step, epoch)` every `checkpoint_every`
        steps and when stopping. Returns True when all epochs are done.
        """
        spe = self.steps_per_epoch
        total = epochs * spe
        stop = total if max_steps is None else min(total, max_steps)
        self.recorder.start(total, self.step)
        with self.recorder:
            t0, samples = time.perf_counter(), 0
            while self.step < stop:
                epoch, skip = divmod(self.step, spe)
                for k, batch in enumerate(self.sampler.epoch(epoch)):
                    if k < skip:
                        continue  # already trained on before the resume
                    step_no, epoch_end = self.step + 1, k == spe - 1
                    logging_now = step_no % log_every == 0 or epoch_end
                    out = self.train_step(batch, stats=logging_now)
                    samples += self.objective.samples(batch)
                    self.recorder.advance()
                    if logging_now:
                        dt = max(time.perf_counter() - t0, 1e-9)
                        line: dict[str, Any] = {"step": step_no, "epoch": epoch, "epoch_end": epoch_end}
                        self.recorder.log(line | {key: float(v) for key, v in out.items()}
                                          | {"samples_per_s": samples / dt})
                        t0, samples = time.perf_counter(), 0
                    if save is not None and (step_no == stop or (checkpoint_every and step_no % checkpoint_every == 0)):
                        save(step_no, epoch)
                    if self.step >= stop:
                        break
        return self.step >= total
