"""`train(ws, cfg)`: one training run end to end, from HOME/views to a complete HOME/runs/<run-id>/.

Used by `dynmix train` (also under torchrun) and by the pipelines. It builds the collaborators (model, loss,
variance target, sampler, optimiser, EMA), writes config.toml, split.json and gamma.parquet, trains with
checkpoints, and exports embeddings.parquet with the final model.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import polars as pl
import torch
from torch import nn

from dynmix.config import DynMIXConfig, load_config, save_config
from dynmix.errors import DynMIXError
from dynmix.io import write_json, write_parquet
from dynmix.losses.variance_target import STRATEGIES, VarianceTarget
from dynmix.losses.vicreg import VICRegLoss
from dynmix.models.dynmix import DynMIX
from dynmix.train.checkpoint import load_checkpoint, restore, save_checkpoint
from dynmix.train.dist import DistContext, setup_distributed
from dynmix.train.ema import EMA
from dynmix.train.embed import export_embeddings
from dynmix.train.recorder import Recorder
from dynmix.train.runs import new_run_dir, resolve_run, views_signature
from dynmix.train.schedule import make_optimizer
from dynmix.train.split import Split, time_split
from dynmix.train.syncbn import convert_global_batchnorm
from dynmix.train.trainer import Trainer
from dynmix.views.tensors import DateBlockSampler, ViewTensors, load_view_tensors
from dynmix.workspace import Workspace


def train(ws: Workspace, cfg: DynMIXConfig, *, resume: str | Path | None = None, run_name: str | None = None,
          progress: bool = True, max_steps: int | None = None) -> Path:
    """Train a DynMIX run; returns its folder.

    `resume`: a run id, folder or 'latest' to continue exactly from its checkpoint (its saved config is used;
    only `cfg.train.device` is taken from `cfg`). `run_name`: the tag of a new run id (default: the variance
    target). `max_steps`: stop (with a checkpoint) after this many optimiser steps in all; resume later.
    """
    if cfg.loss.variance_target not in STRATEGIES:
        raise DynMIXError(f"unknown variance target {cfg.loss.variance_target!r}; expected one of "
                          f"{', '.join(STRATEGIES)}")
    ctx = setup_distributed(cfg.train.device)
    try:
        return _train(ws, cfg, ctx, resume, run_name, progress, max_steps)
    finally:
        ctx.close()


def _write_run_files(run_dir: Path, cfg: DynMIXConfig, vt: ViewTensors, split: Split, target: VarianceTarget) -> None:
    save_config(cfg, run_dir / "config.toml")
    write_json(split.to_json(), run_dir / "split.json")
    write_parquet(pl.DataFrame({
        "date": pl.Series(vt.dates, dtype=pl.Date),
        "gamma": target.schedule().cpu().numpy(),
        "market_vol": vt.market_vol.cpu().numpy(),
        "dispersion": vt.dispersion.cpu().numpy(),
        "train": split.train_mask.cpu().numpy(),
    }), run_dir / "gamma.parquet")


def _wrap(model: nn.Module, cfg: DynMIXConfig, ctx: DistContext) -> nn.Module:
    net: nn.Module = model
    if ctx.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        net = DDP(model, device_ids=ids)  # every parameter reaches the loss (fused = mean of the two views)
    if cfg.train.compile:  # CUDA or CPU (inductor needs a C++ compiler on CPU); benchmarks/RESULTS.md §2
        net = torch.compile(net)  # type: ignore[assignment]
    return net


def _train(ws: Workspace, cfg: DynMIXConfig, ctx: DistContext, resume: str | Path | None, run_name: str | None,
           progress: bool, max_steps: int | None) -> Path:
    ckpt = None
    if resume is not None:
        run_dir = resolve_run(ws, resume)
        saved = load_config(run_dir / "config.toml")
        cfg = replace(saved, train=replace(saved.train, device=cfg.train.device))
        ckpt = load_checkpoint(run_dir / "checkpoint.pt", ctx.device)
    vt = load_view_tensors(ws.views, ctx.device)
    if ckpt is not None and ckpt.get("views") and ckpt["views"] != views_signature(vt):
        raise DynMIXError(f"the views in {ws.views} changed since run {run_dir.name} started; cannot resume")
    split = time_split(vt, cfg.train)
    target = VarianceTarget.from_config(cfg.loss, vt.market_vol, vt.dispersion, split.train_mask).to(ctx.device)
    sampler = DateBlockSampler(vt.valid(), split.train_mask, cfg.train.dates_per_batch, seed=cfg.train.seed)
    total = cfg.train.epochs * len(sampler)

    torch.manual_seed(cfg.train.seed)
    model = DynMIX(cfg.model, len(vt.feature_names), len(vt.channels), vt.window).to(ctx.device)
    if ctx.world_size > 1:
        convert_global_batchnorm(model)  # projector BatchNorm over the global batch, as in one process
    optimizer, scheduler = make_optimizer(model, cfg.train, total)
    ema = EMA(model, cfg.train.ema_momentum, total)
    if ckpt is not None:
        restore(ckpt, model=model, ema=ema, optimizer=optimizer, scheduler=scheduler)
    else:
        name = str(new_run_dir(ws, run_name or cfg.loss.variance_target)) if ctx.is_main else None
        run_dir = Path(ctx.broadcast(name))
        if ctx.is_main:
            _write_run_files(run_dir, cfg, vt, split, target)

    recorder = Recorder(run_dir / "metrics.jsonl", enabled=ctx.is_main, progress=progress)
    start = int(ckpt["step"]) if ckpt is not None else 0
    recorder.truncate(start)
    recorder.info(f"run {run_dir}: {split.n_train_dates} training dates ({split.train_start} .. {split.train_end}), "
                  f"{len(sampler)} steps/epoch x {cfg.train.epochs} epochs, device {ctx.device}"
                  + (f" x {ctx.world_size} processes" if ctx.world_size > 1 else "")
                  + (f", resuming at step {start}" if start else ""))
    views = views_signature(vt)
    last_saved = [start]

    def save(step: int, epoch: int) -> None:
        if ctx.is_main:
            save_checkpoint(run_dir / "checkpoint.pt", step=step, epoch=epoch, model=model, ema=ema,
                            optimizer=optimizer, scheduler=scheduler, config=cfg.to_dict(), views=views)
        last_saved[0] = step

    trainer = Trainer(_wrap(model, cfg, ctx), VICRegLoss.from_config(cfg.loss), target, sampler, optimizer,
                      scheduler, vt, ema=ema, ctx=ctx, amp=cfg.train.amp, recorder=recorder)
    trainer.step = start
    try:
        done = trainer.fit(cfg.train.epochs, max_steps=max_steps, log_every=cfg.train.log_every,
                           checkpoint_every=cfg.train.checkpoint_every, save=save)
    except KeyboardInterrupt as e:
        raise DynMIXError(f"interrupted at step {trainer.step}; the checkpoint of step {last_saved[0]} in {run_dir} "
                          f"is kept: continue with `dynmix train --resume {run_dir.name}`") from e
    if done and ctx.is_main:
        export_embeddings(model, vt, run_dir / "embeddings.parquet", 2 * cfg.train.dates_per_batch, cfg.train.amp)
        recorder.info(f"done: {run_dir}")
    elif not done:
        recorder.info(f"stopped at step {trainer.step} of {total}: continue with "
                      f"`dynmix train --resume {run_dir.name}`")
    ctx.barrier()
    return run_dir
