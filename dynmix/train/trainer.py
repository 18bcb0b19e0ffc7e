"""The DynMIX training loop (DESIGN §5, §8): date-blocked batches gathered from device-resident views.

Shapes: B global batch, B_r this rank's share, F features, L window, C channels, D representation, K projector.

The trainer receives its collaborators (STYLE 3): the model, the loss, the variance target, the sampler, the
optimiser and its schedule, the EMA and a recorder. A step returns a dict of detached scalars (STYLE 12).

Several processes (torchrun, DDP): every rank draws the same global batch (same seed), runs the model on its
contiguous shard, and `gather_cat`s the projections so VICReg sees the global batch; the loss is therefore the
same number on every rank. Gradients: the gather's backward sums over ranks the gradient each rank's copy of
the loss sends to the local shard, i.e. W * dL/dZ_r on rank r (W copies of the same L); rank r's parameter
gradient is W * (dL/dZ_r)(dZ_r/dθ), and DDP averages over ranks: (1/W) Σ_r W (dL/dZ_r)(dZ_r/dθ) = dL/dθ, the
single-process gradient of the loss on the global batch. No extra scaling is needed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import Tensor, nn

from dynmix.losses.distributed import gather_cat
from dynmix.train.checkpoint import unwrap
from dynmix.train.dist import DistContext
from dynmix.train.ema import EMA
from dynmix.train.monitor import rep_stats
from dynmix.train.recorder import Recorder
from dynmix.views.tensors import DateBlockSampler, ViewTensors

LossFn = Callable[..., tuple[Tensor, dict[str, Tensor]]]  # (z_a (B, K), z_b (B, K), gamma) -> (loss, parts)
SaveFn = Callable[[int, int], None]  # (step, epoch) -> writes a checkpoint


class Trainer:
    """Runs VICReg steps of `model` on date-blocked batches of `views`; `step` counts optimiser steps so far."""

    def __init__(self, model: nn.Module, loss_fn: LossFn, variance_target: Callable[[Tensor], Tensor],
                 sampler: DateBlockSampler, optimizer: torch.optim.Optimizer, scheduler: Any, views: ViewTensors,
                 *, ema: EMA | None = None, ctx: DistContext | None = None, amp: bool = True,
                 recorder: Recorder | None = None) -> None:
        self.model = model  # possibly DDP-wrapped
        self.loss_fn = loss_fn
        self.variance_target = variance_target
        self.sampler = sampler
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.views = views
        self.ema = ema
        self.ctx = ctx or DistContext(0, 1, views.device)
        self.amp = amp and views.device.type == "cuda"
        self.recorder = recorder or Recorder(None, enabled=False)
        self.step = 0

    @property
    def steps_per_epoch(self) -> int:
        return len(self.sampler)

    def _autocast(self) -> AbstractContextManager[Any]:
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return nullcontext()

    def batch(self, i: Tensor, t: Tensor) -> dict[str, Tensor]:
        """The two views of samples (i, t): explicit (B, F), implicit (B, L, C)."""
        return {"explicit": self.views.explicit_features(i, t), "implicit": self.views.implicit_windows(i, t)}

    def train_step(self, i: Tensor, t: Tensor, *, stats: bool = False) -> dict[str, Any]:
        """One optimiser step on the global batch (i, t), each (B,). Returns detached 0-d tensors and floats.

        With `stats`, adds the gradient norm and the per-dimension std and effective rank of this rank's explicit
        and implicit representations (an SVD: only on logging steps).
        """
        self.model.train()
        gamma = self.variance_target(t)  # 0-d, from the global batch's dates: the same on every rank
        i_r, t_r = self.ctx.shard(i, t)  # (B_r,)
        with self._autocast():
            out = self.model(self.batch(i_r, t_r))
        z_e = gather_cat(out["z_explicit"].float())  # (B, K)
        z_i = gather_cat(out["z_implicit"].float())  # (B, K)
        loss, parts = self.loss_fn(z_e, z_i, gamma)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = self._grad_norm() if stats else None  # after DDP's all-reduce: the global gradient
        lr = float(self.optimizer.param_groups[0]["lr"])
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(unwrap(self.model), self.step)
        self.step += 1
        result: dict[str, Any] = {"loss": loss.detach(), **parts, "gamma": gamma.detach(), "lr": lr,
                                  "batch_size": int(i.numel())}
        if stats:
            result["grad_norm"] = grad_norm
            result |= rep_stats(out["explicit"].detach(), "explicit") | rep_stats(out["implicit"].detach(), "implicit")
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
                for k, (i, t) in enumerate(self.sampler.epoch(epoch)):
                    if k < skip:
                        continue  # already trained on before the resume
                    step_no = self.step + 1
                    epoch_end = k == spe - 1
                    logging_now = step_no % log_every == 0 or epoch_end
                    out = self.train_step(i, t, stats=logging_now)
                    samples += out.pop("batch_size")
                    self.recorder.advance()
                    if logging_now:
                        dt = max(time.perf_counter() - t0, 1e-9)
                        line: dict[str, Any] = {"step": step_no, "epoch": epoch, "epoch_end": epoch_end}
                        line |= {key: float(v) for key, v in out.items()}
                        line["samples_per_s"] = samples / dt
                        self.recorder.log(line)
                        t0, samples = time.perf_counter(), 0
                    if save is not None and (step_no == stop or (checkpoint_every and step_no % checkpoint_every == 0)):
                        save(step_no, epoch)
                    if self.step >= stop:
                        break
        return self.step >= total
