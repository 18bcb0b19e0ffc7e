"""`fit_jepa`: train the temporal JEPA of a run (DESIGN §6) into RUN/forecast/jepa.pt, with exact resume.

The context encoder starts from the run's trained f_I; the target encoder is its EMA (momentum 0.996 -> 1.0 by
step). Training uses date-blocked batches of training dates t whose targets t+1 .. t+H are training dates too,
AdamW with warm-up + cosine, atomic checkpoints {step, epoch, model, ema, optimizer, scheduler, config, rng,
views} read back with weights_only=True, a progress bar and RUN/forecast/jepa_metrics.jsonl. Runs under torchrun.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dynmix.config import DynMIXConfig, JEPAConfig, config_from_dict, load_config
from dynmix.errors import DynMIXError
from dynmix.models.encoders import ImplicitEncoder
from dynmix.models.jepa import TemporalJEPA
from dynmix.train.checkpoint import load_checkpoint, restore, save_checkpoint
from dynmix.train.dist import DistContext, setup_distributed
from dynmix.train.ema import EMA
from dynmix.train.jepa_step import JEPAObjective, JEPAStep, jepa_valid
from dynmix.train.recorder import Recorder
from dynmix.train.runs import load_run, views_signature
from dynmix.train.schedule import make_optimizer
from dynmix.train.threads import single_thread
from dynmix.train.world_run import train_last_index
from dynmix.views.tensors import DateBlockSampler, ViewTensors
from dynmix.workspace import Workspace

JEPA_FILE = Path("forecast") / "jepa.pt"
METRICS_FILE = Path("forecast") / "jepa_metrics.jsonl"
SaveFn = Callable[[int, int], None]  # (step, epoch) -> writes a checkpoint


class JEPARecorder(Recorder):
    """The trainer's recorder, showing the JEPA's loss parts and warning when the context representations collapse."""

    def bar_text(self, metrics: dict[str, Any]) -> str:
        return (f"epoch {metrics['epoch']}  loss {metrics['loss']:.4f}  pred {metrics['pred_loss']:.4f}  "
                f"reg {metrics['reg']:.4f}")

    def collapse(self, metrics: dict[str, Any]) -> str | None:
        erank = metrics.get("context_erank")
        if erank is None or (erank >= 2.0 and metrics["context_std_min"] >= 1e-3):
            return None
        return (f"JEPA context representations are collapsing (min std {metrics['context_std_min']:.2e}, "
                f"effective rank {erank:.2f}); raise jepa.reg_coeff")


def build_jepa(cfg: DynMIXConfig, vt: ViewTensors) -> tuple[TemporalJEPA, ImplicitEncoder]:
    """An untrained (JEPA, target encoder) pair shaped by the run's model config and the views."""
    m, j = cfg.model, cfg.jepa

    def encoder() -> ImplicitEncoder:
        return ImplicitEncoder(len(vt.channels), vt.window, m.implicit_channels, m.implicit_layers, m.dim, m.dropout)

    return TemporalJEPA(encoder(), m.dim, j.horizon, j.predictor_hidden, j.horizon_dim), encoder()


def load_jepa(run_dir: str | Path, vt: ViewTensors, device: str | torch.device = "cpu"
              ) -> tuple[DynMIXConfig, TemporalJEPA, ImplicitEncoder, dict[str, Any]]:
    """(config, JEPA, target encoder, checkpoint) of RUN/forecast/jepa.pt, both modules in eval mode."""
    ckpt = load_checkpoint(Path(run_dir) / JEPA_FILE, device)
    cfg = config_from_dict(ckpt["config"])
    model, target = build_jepa(cfg, vt)
    model.load_state_dict(ckpt["model"])
    target.load_state_dict(ckpt["ema"])
    return cfg, model.to(device).eval(), target.to(device).eval(), ckpt


def _stamp(run_dir: Path, vt: ViewTensors, train_last: int) -> dict[str, Any]:
    """What jepa.pt depends on besides its config: the views, the split and the DynMIX checkpoint step."""
    dyn_step = int(load_checkpoint(run_dir / "checkpoint.pt", "cpu")["step"])
    return {**views_signature(vt), "train_end": vt.dates[train_last].isoformat(), "dynmix_step": dyn_step}


def make_sampler(vt: ViewTensors, j: JEPAConfig, train_last: int) -> DateBlockSampler:
    """Date-blocked batches of (i, t), every window valid, t + H <= the last training date, every k-th date."""
    if j.date_stride < 1:
        raise DynMIXError(f"jepa.date_stride must be >= 1, got {j.date_stride}")
    t = torch.arange(len(vt.dates), device=vt.device)  # (T,)
    allowed = (t <= train_last - j.horizon) & (t % j.date_stride == 0)
    return DateBlockSampler(jepa_valid(vt, j.horizon), allowed, j.dates_per_batch, seed=j.seed)


def run_loop(step_fn: JEPAStep, sampler: DateBlockSampler, epochs: int, recorder: Recorder, *,
             max_steps: int | None = None, log_every: int = 10, checkpoint_every: int = 0,
             save: SaveFn | None = None) -> bool:
    """Trainer.fit's loop for the JEPA step: resumes from `step_fn.step`; True when all epochs are done."""
    spe = len(sampler)
    total = epochs * spe
    stop = total if max_steps is None else min(total, max_steps)
    recorder.start(total, step_fn.step)
    with recorder:
        t0, samples = time.perf_counter(), 0
        while step_fn.step < stop:
            epoch, skip = divmod(step_fn.step, spe)
            for k, (i, t) in enumerate(sampler.epoch(epoch)):
                if k < skip:
                    continue  # trained on before the resume
                step_no, epoch_end = step_fn.step + 1, k == spe - 1
                logging_now = step_no % log_every == 0 or epoch_end
                out = step_fn(i, t, stats=logging_now)
                samples += out.pop("batch_size")
                recorder.advance()
                if logging_now:
                    dt = max(time.perf_counter() - t0, 1e-9)
                    line: dict[str, Any] = {"step": step_no, "epoch": epoch, "epoch_end": epoch_end}
                    recorder.log(line | {key: float(v) for key, v in out.items()} | {"samples_per_s": samples / dt})
                    t0, samples = time.perf_counter(), 0
                if save is not None and (step_no == stop or (checkpoint_every and step_no % checkpoint_every == 0)):
                    save(step_no, epoch)
                if step_fn.step >= stop:
                    break
    return step_fn.step >= total


def fit_jepa(ws: Workspace, run_dir: str | Path, *, epochs: int | None = None, resume: bool = False,
             progress: bool = True, max_steps: int | None = None) -> Path:
    """Train the run's temporal JEPA into RUN/forecast/jepa.pt and return that path.

    A complete, current jepa.pt is reused. `resume` continues an unfinished one exactly (with its saved config);
    without it an unfinished or stale one (views, split or DynMIX checkpoint changed) is trained again from the
    start. `epochs` overrides jepa.epochs of a new training; `max_steps` stops early with a checkpoint.
    """
    run_dir = Path(run_dir)
    ctx = setup_distributed(load_config(run_dir / "config.toml").train.device)
    try:
        return _fit(ws, run_dir, ctx, epochs, resume, progress, max_steps)
    finally:
        ctx.close()


def _fit(ws: Workspace, run_dir: Path, ctx: DistContext, epochs: int | None, resume: bool, progress: bool,
         max_steps: int | None) -> Path:
    cfg, dynmix_model, vt = load_run(run_dir, ctx.device, views_dir=ws.views)
    if epochs is not None:
        cfg = replace(cfg, jepa=replace(cfg.jepa, epochs=epochs))
    train_last = train_last_index(run_dir, cfg, vt)
    stamp = _stamp(run_dir, vt, train_last)
    path = run_dir / JEPA_FILE
    ckpt = load_checkpoint(path, ctx.device) if path.exists() else None
    if ckpt is not None:
        saved = config_from_dict(ckpt["config"])
        if ckpt["views"] != stamp:
            if resume:
                raise DynMIXError(f"{path}: the views, split or DynMIX checkpoint changed since it was trained; "
                                  "cannot resume (run without resume to train the JEPA again)")
            ckpt = None
        elif int(ckpt["step"]) >= saved.jepa.epochs * len(make_sampler(vt, saved.jepa, train_last)):
            return path  # complete and current: reused
        elif resume:
            cfg = replace(cfg, jepa=saved.jepa)
        else:
            ckpt = None
    return _train(run_dir, cfg, dynmix_model.f_i, vt, ctx, train_last, stamp, ckpt, progress, max_steps)


def _train(run_dir: Path, cfg: DynMIXConfig, f_i: nn.Module, vt: ViewTensors, ctx: DistContext, train_last: int,
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
    if ckpt is not None:
        restore(ckpt, model=model, ema=ema, optimizer=optimizer, scheduler=scheduler)
    net: nn.Module = model
    if ctx.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    step_fn = JEPAStep(net, ema, JEPAObjective(j), optimizer, scheduler, vt, ctx=ctx, amp=cfg.train.amp)
    step_fn.step = start = int(ckpt["step"]) if ckpt is not None else 0
    recorder = JEPARecorder(run_dir / METRICS_FILE, enabled=ctx.is_main, progress=progress)
    recorder.truncate(start)
    recorder.info(f"JEPA of run {run_dir.name}: {sampler.dates.numel()} training dates, {len(sampler)} steps/epoch x "
                  f"{j.epochs} epochs, horizon {j.horizon}, device {ctx.device}"
                  + (f", resuming at step {start}" if start else ""))
    path = run_dir / JEPA_FILE

    def save(step: int, epoch: int) -> None:
        if ctx.is_main:
            save_checkpoint(path, step=step, epoch=epoch, model=model, ema=ema, optimizer=optimizer,
                            scheduler=scheduler, config=cfg.to_dict(), views=stamp)

    try:
        with single_thread(ctx.device.type == "cpu"):  # small batches: one thread is faster (dynmix.train.threads)
            run_loop(step_fn, sampler, j.epochs, recorder, max_steps=max_steps, log_every=j.log_every,
                     checkpoint_every=j.checkpoint_every, save=save)
    except KeyboardInterrupt as e:
        raise DynMIXError(f"JEPA training interrupted at step {step_fn.step}; {path} keeps the last checkpoint: "
                          "continue with fit_jepa(..., resume=True)") from e
    ctx.barrier()
    return path
