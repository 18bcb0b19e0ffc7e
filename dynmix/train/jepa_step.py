"""The temporal-JEPA objective and its optimiser step (DESIGN §6), on date-blocked batches of the implicit view.

Shapes: B global batch, B_r this rank's share, H horizon, L window, C channels, D representation, N companies,
T dates.

A sample (i, t) is usable when the context window ending at t and the H target windows ending at t+1 .. t+H are
all full enough; the target of horizon h is the EMA target encoder applied to the window ending at t+h, so no
information after t+H reaches the loss. Under torch.distributed the prediction loss is a global mean over
all-reduced sums, VICReg sees `gather_cat`ed context representations and SIGReg all-reduces its statistics (with
directions seeded by the step, identical on every rank), so the loss is the same number on every rank and DDP's
gradient average equals the single-process gradient (see dynmix.train.trainer).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import Tensor, nn

from dynmix.config import JEPAConfig
from dynmix.losses.distributed import all_reduce_sum, gather_cat
from dynmix.losses.sigreg import SIGReg
from dynmix.losses.vicreg import covariance_loss, variance_loss
from dynmix.models.jepa import encode_targets, prediction_error
from dynmix.train.checkpoint import unwrap
from dynmix.train.dist import DistContext
from dynmix.train.ema import EMA
from dynmix.train.monitor import rep_stats
from dynmix.views.tensors import ViewTensors

REGS = ("sigreg", "vicreg")


def implicit_valid(vt: ViewTensors) -> Tensor:
    """(N, T) bool: the implicit window ending at t is full enough (explicit features not needed)."""
    started = torch.arange(len(vt.dates), device=vt.device) >= vt.window - 1  # (T,)
    return (vt.window_obs() >= vt.min_window_obs) & started[None, :]


def jepa_valid(vt: ViewTensors, horizon: int) -> Tensor:
    """(N, T) bool: the context window at t and every target window at t+1 .. t+H are valid."""
    iv = implicit_valid(vt)  # (N, T)
    ok = iv.clone()
    for h in range(1, horizon + 1):
        ok[:, :-h] &= iv[:, h:]
        ok[:, -h:] = False  # no window t+h inside the panel
    return ok


def future_windows(vt: ViewTensors, i: Tensor, t: Tensor, horizon: int) -> Tensor:
    """Implicit windows (B, H, L, C) ending at t+1 .. t+H of samples (i, t), each (B,); clamped at the last date."""
    offs = torch.arange(1, horizon + 1, device=t.device)  # (H,)
    tf = (t[:, None] + offs[None, :]).clamp_max(len(vt.dates) - 1)  # (B, H)
    w = vt.implicit_windows(i.repeat_interleave(horizon), tf.reshape(-1))  # (B*H, L, C)
    return w.reshape(i.shape[0], horizon, vt.window, -1)


class JEPAObjective:
    """(1 - λ) · prediction error on layer-normed targets + λ · SIGReg/VICReg of the context representations."""

    def __init__(self, cfg: JEPAConfig) -> None:
        if cfg.reg not in REGS:
            raise ValueError(f"unknown JEPA regulariser {cfg.reg!r}; expected one of {', '.join(REGS)}")
        prediction_error(torch.zeros(1), torch.zeros(1), cfg.loss)  # validates the loss name
        self.cfg = cfg
        self.sigreg = SIGReg(num_slices=cfg.sigreg_slices, seed=cfg.seed)

    def __call__(self, pred: Tensor, target: Tensor, context: Tensor, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        """pred, target (B_r, H, D), context (B_r, D) of this rank -> (loss, parts); global over ranks."""
        err = prediction_error(pred.float(), target, self.cfg.loss)  # (B_r, H, D)
        pred_loss = all_reduce_sum(err.sum()) / all_reduce_sum(torch.tensor(float(err.numel()), device=err.device))
        if self.cfg.reg == "sigreg":
            reg = self.sigreg(context.float(), step=step)  # directions seeded by the step: exact on resume
        else:
            z = gather_cat(context.float())  # (B, D)
            reg = 25.0 * variance_loss(z) + covariance_loss(z)  # VICReg's variance/covariance weights
        lam = self.cfg.reg_coeff
        loss = (1.0 - lam) * pred_loss + lam * reg
        return loss, {"pred_loss": pred_loss.detach(), "reg": reg.detach()}


class JEPAStep:
    """One optimiser step of the temporal JEPA; `step` counts optimiser steps so far (it drives the EMA)."""

    def __init__(self, model: nn.Module, ema: EMA, objective: JEPAObjective, optimizer: torch.optim.Optimizer,
                 scheduler: Any, vt: ViewTensors, *, ctx: DistContext | None = None, amp: bool = True) -> None:
        self.model = model  # possibly DDP-wrapped TemporalJEPA
        self.ema = ema  # target encoder: EMA of the context encoder
        self.objective = objective
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.vt = vt
        self.ctx = ctx or DistContext(0, 1, vt.device)
        self.amp = amp and vt.device.type == "cuda"
        self.horizon = int(unwrap(model).horizon)  # type: ignore[arg-type]
        self.step = 0

    def _autocast(self) -> AbstractContextManager[Any]:
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return nullcontext()

    def __call__(self, i: Tensor, t: Tensor, *, stats: bool = False) -> dict[str, Any]:
        """Train on the global batch (i, t), each (B,); returns detached 0-d tensors and floats."""
        self.model.train()
        i_r, t_r = self.ctx.shard(i, t)  # (B_r,)
        with self._autocast():
            target = encode_targets(self.ema.module, future_windows(self.vt, i_r, t_r, self.horizon))  # (B_r, H, D)
            out = self.model(self.vt.implicit_windows(i_r, t_r))
        loss, parts = self.objective(out["pred"], target, out["context"], self.step)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        lr = float(self.optimizer.param_groups[0]["lr"])
        momentum = self.ema.momentum(self.step)
        self.optimizer.step()
        self.scheduler.step()
        self.ema.update(unwrap(self.model).encoder, self.step)  # type: ignore[arg-type]
        self.step += 1
        result: dict[str, Any] = {"loss": loss.detach(), **parts, "lr": lr, "ema_momentum": momentum,
                                  "batch_size": int(i.numel())}
        if stats:
            result |= rep_stats(out["context"].detach(), "context")
        return result
