"""`fit_jepa`: train the temporal JEPA of a run into RUN/forecast/jepa.pt with the engine (exact resume).

The context encoder starts from the run's trained f_I; the target encoder is the engine's EMA of it (momentum
0.996 -> 1.0 by step). Training uses date-blocked batches of training dates t whose targets t+1 .. t+H are
training dates too, AdamW with warm-up + cosine, and RUN/forecast/jepa_metrics.jsonl. Runs under torchrun.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from dynmix.config import DynMIXConfig, JEPAConfig, config_from_dict
from dynmix.errors import DynMIXError
from dynmix.runs.checkpoint import load_checkpoint
from dynmix.runs.device import DistContext, setup_distributed
from dynmix.runs.models import build_jepa, derived_stamp, load_run, train_last_index
from dynmix.runs.rundir import RunDir, stale_keys
from dynmix.train.ema import EMA
from dynmix.train.jepa_objective import JEPAObjective, jepa_valid
from dynmix.train.schedule import make_optimizer
from dynmix.train.session import Session, run_session
from dynmix.views.tensors import DateBlockSampler, ViewTensors
from dynmix.workspace import Workspace


def make_sampler(vt: ViewTensors, j: JEPAConfig, train_last: int) -> DateBlockSampler:
    """Date-blocked batches of (i, t), every window valid, t + H <= the last training date, every k-th date."""
    if j.date_stride < 1:
        raise DynMIXError(f"jepa.date_stride must be >= 1, got {j.date_stride}")
    t = torch.arange(len(vt.dates), device=vt.device)  # (T,)
    allowed = (t <= train_last - j.horizon) & (t % j.date_stride == 0)
    return DateBlockSampler(jepa_valid(vt, j.horizon), allowed, j.dates_per_batch, seed=j.seed)


def fit_jepa(ws: Workspace, run_dir: str | Path | RunDir, *, epochs: int | None = None, resume: bool = False,
             progress: bool = True, max_steps: int | None = None) -> Path:
    """Train the run's temporal JEPA into RUN/forecast/jepa.pt and return that path.

    A complete, current jepa.pt is reused. `resume` continues an unfinished one exactly (with its saved config);
    without it an unfinished or stale one (views, split or DynMIX checkpoint changed) is trained again from the
    start. `epochs` overrides jepa.epochs of a new training; `max_steps` stops early with a checkpoint.
    """
    rd = RunDir.of(run_dir)
    ctx = setup_distributed(rd.read_config().train.device)
    try:
        return _fit(ws, rd, ctx, epochs, resume, progress, max_steps)
    finally:
        ctx.close()


def _fit(ws: Workspace, rd: RunDir, ctx: DistContext, epochs: int | None, resume: bool, progress: bool,
         max_steps: int | None) -> Path:
    cfg, dynmix_model, vt = load_run(rd, ctx.device, views_dir=ws.views)
    if epochs is not None:
        cfg = replace(cfg, jepa=replace(cfg.jepa, epochs=epochs))
    train_last = train_last_index(rd, cfg, vt)
    stamp = derived_stamp(rd, vt, ws.views, train_last)
    path = rd.jepa_path
    ckpt = load_checkpoint(path, ctx.device) if path.exists() else None
    if ckpt is not None:
        saved = config_from_dict(ckpt["config"])
        if stale := stale_keys(ckpt["views"], stamp):
            if resume:
                raise DynMIXError(f"{path}: {', '.join(stale)} changed since it was trained; cannot resume (train "
                                  "without --resume to train the JEPA again)")
            ckpt = None
        elif int(ckpt["step"]) >= saved.jepa.epochs * len(make_sampler(vt, saved.jepa, train_last)):
            return path  # complete and current: reused
        elif resume:
            cfg = replace(cfg, jepa=saved.jepa)
        else:
            ckpt = None
    return _train(rd, cfg, dynmix_model.f_i, vt, ctx, train_last, stamp, ckpt, progress, max_steps)


def _train(rd: RunDir, cfg: DynMIXConfig, f_i: torch.nn.Module, vt: ViewTensors, ctx: DistContext, train_last: int,
           stamp: dict[str, Any], ckpt: dict[str, Any] | None, progress: bool, max_steps: int | None) -> Path:
    j: JEPAConfig = cfg.jepa
    sampler = make_sampler(vt, j, train_last)
    total = j.epochs * len(sampler)
    torch.manual_seed(j.seed)
    model, _ = build_jepa(cfg, vt)
    model.encoder.load_state_dict(f_i.state_dict())  # context encoder starts from the run's trained f_I
    model.to(ctx.device)
    ema = EMA(model.encoder, j.ema_momentum, total)
    opt_cfg = replace(cfg.train, lr=j.lr, weight_decay=j.weight_decay, warmup_frac=j.warmup_frac)
    optimizer, scheduler = make_optimizer(model, opt_cfg, total)
    session = Session(rd.jepa_path, rd.jepa_metrics_path, cfg.to_dict(), stamp, j.epochs, j.log_every,
                      j.checkpoint_every, label="JEPA", one_thread=True,
                      resume_hint=f"dynmix train --stage jepa --resume {rd.name}")
    objective = JEPAObjective(model, ema, j, vt, ctx, amp=cfg.train.amp)
    info = (f"JEPA of run {rd.name}: {sampler.dates.numel()} training dates, {len(sampler)} steps/epoch x "
            f"{j.epochs} epochs, horizon {j.horizon}, device {ctx.device}")
    run_session(session, objective, sampler, optimizer, scheduler, ctx, ema=ema, ckpt=ckpt, progress=progress,
                max_steps=max_steps, info=info)
    ctx.barrier()
    return rd.jepa_path
