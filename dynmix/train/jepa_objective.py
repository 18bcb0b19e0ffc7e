"""The temporal-JEPA objective of the engine, on date-blocked batches of the implicit view.

Shapes: B global batch, B_r this rank's share, H horizon, L window, C channels, D representation, N companies,
T dates.

A sample (i, t) is usable when the context window ending at t and the H target windows ending at t+1 .. t+H are
all full enough; the target of horizon h is the EMA target encoder applied to the window ending at t+h, so no
information after t+H reaches the loss. Under torch.distributed the prediction loss is a global mean over
all-reduced sums, VICReg sees `gather_cat`ed context representations and SIGReg all-reduces its statistics (with
directions seeded by the step, identical on every rank), so the loss is the same number on every rank and DDP's
gradient average equals the single-process gradient (see dynmix.train.loop).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from dynmix.config import JEPAConfig
from dynmix.losses.distributed import all_reduce_sum, gather_cat
from dynmix.losses.sigreg import SIGReg
from dynmix.losses.vicreg import covariance_loss, variance_loss
from dynmix.models.jepa import encode_targets, prediction_error
from dynmix.runs.device import DistContext
from dynmix.train.ema import EMA
from dynmix.train.loop import Objective, autocast
from dynmix.train.monitor import rep_stats
from dynmix.views.tensors import ViewTensors

REGS = ("sigreg", "vicreg")


def jepa_valid(vt: ViewTensors, horizon: int) -> Tensor:
    """(N, T) bool: the context window at t and every target window at t+1 .. t+H are valid."""
    iv = vt.implicit_valid()  # (N, T)
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


class JEPALoss:
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


class JEPAObjective(Objective):
    """One step of the temporal JEPA: the context encoder and predictor learn to predict the EMA target encoder's
    representations of the next H windows; the engine's EMA (`ema`) is that target encoder.
    """

    def __init__(self, model: nn.Module, ema: EMA, cfg: JEPAConfig, vt: ViewTensors, ctx: DistContext, *,
                 amp: bool = True) -> None:
        self.model = model  # TemporalJEPA
        self.ema = ema
        self.loss = JEPALoss(cfg)
        self.horizon = cfg.horizon
        self.vt = vt
        self.ctx = ctx
        self.amp = amp

    def ema_module(self) -> nn.Module:
        return self.model.encoder  # type: ignore[return-value]

    def step(self, batch: Any, step: int, stats: bool) -> tuple[Tensor, dict[str, Any]]:
        i, t = batch
        i_r, t_r = self.ctx.shard(i, t)  # (B_r,)
        with autocast(self.vt.device, self.amp):
            target = encode_targets(self.ema.module, future_windows(self.vt, i_r, t_r, self.horizon))  # (B_r, H, D)
            out = self.net(self.vt.implicit_windows(i_r, t_r))
        loss, parts = self.loss(out["pred"], target, out["context"], step)
        logs: dict[str, Any] = dict(parts)
        if stats:
            logs |= rep_stats(out["context"].detach(), "context")
        return loss, logs

    def bar_text(self, line: dict[str, Any]) -> str:
        return f"epoch {line['epoch']}  loss {line['loss']:.4f}  pred {line['pred_loss']:.4f}  reg {line['reg']:.4f}"

    def collapse(self, line: dict[str, Any]) -> str | None:
        erank = line.get("context_erank")
        if erank is None or (erank >= 2.0 and line["context_std_min"] >= 1e-3):
            return None
        return (f"JEPA context representations are collapsing (min std {line['context_std_min']:.2e}, "
                f"effective rank {erank:.2f}); raise jepa.reg_coeff")
