"""`train(ws, cfg)`: one DynMIX training run end to end, from HOME/views to a complete HOME/runs/<run-id>/.

Used by `dynmix train` (also under torchrun) and by the pipelines. It builds the collaborators (model, objective,
variance target, sampler, optimiser, EMA), writes the run's config, split, gamma and views record, trains with
the engine and exports the embeddings with the final model.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import polars as pl
import torch

from dynmix.config import DynMIXConfig
from dynmix.errors import DynMIXError
from dynmix.losses.variance_target import STRATEGIES, VarianceTarget
from dynmix.models.dynmix import DynMIX
from dynmix.runs.device import DistContext, setup_distributed
from dynmix.runs.memory import embed_dates_per_batch, max_batch_samples
from dynmix.runs.models import checkpoint_config
from dynmix.runs.rundir import RunDir
from dynmix.runs.split import Split, time_split
from dynmix.runs.viewstamp import check_views, views_record
from dynmix.train.ema import EMA
from dynmix.train.embed import export_embeddings
from dynmix.train.pair import pair_objective
from dynmix.train.schedule import make_optimizer
from dynmix.train.session import Session, run_session
from dynmix.train.syncbn import convert_global_batchnorm
from dynmix.views.tensors import DateBlockSampler, ViewTensors, load_view_tensors
from dynmix.workspace import Workspace


def train(ws: Workspace, cfg: DynMIXConfig, *, resume: str | Path | None = None, run_name: str | None = None,
          progress: bool = True, max_steps: int | None = None, views: ViewTensors | None = None) -> Path:
    """Train a DynMIX run; returns its folder.

    `resume`: a run id, folder or 'latest' to continue exactly from its checkpoint (its saved config is used;
    only `cfg.train.device` is taken from `cfg`). `run_name`: the tag of a new run id (default: the variance
    target, or the objective when not vicreg). `max_steps`: stop (with a checkpoint) after this many optimiser
    steps in all; resume later, or export the embeddings of the model so far with `dynmix embed`. `views`: the
    tensors of HOME/views already loaded on the run's device (`dynmix compare` loads them once for all its runs);
    None reads them.
    """
    if cfg.loss.variance_target not in STRATEGIES:
        raise DynMIXError(f"unknown variance target {cfg.loss.variance_target!r}; expected one of "
                          f"{', '.join(STRATEGIES)}")
    pair_objective(cfg.loss.objective)  # an unknown objective fails before any work
    ctx = setup_distributed(cfg.train.device)
    try:
        return _train(ws, cfg, ctx, resume, run_name, progress, max_steps, views)
    finally:
        ctx.close()


def default_run_name(cfg: DynMIXConfig) -> str:
    """The run id's tag: the variance target for vicreg ('market-vol'), else the objective ('byol')."""
    return cfg.loss.variance_target if cfg.loss.objective == "vicreg" else cfg.loss.objective


def _cap_text(sampler: DateBlockSampler, cap: int | None, how: str) -> str:
    """The info line's note on the batch cap: whether the largest date block is sampled down to it."""
    if cap is None:
        return ""
    largest = sampler.largest_block()
    if largest <= cap:
        return f", batches of up to {largest:,} samples (cap {cap:,}, {how})"
    return (f", batches sampled to <= {cap:,} samples within their dates ({how}; the largest date block holds "
            f"{largest:,})")


def _write_run_files(rd: RunDir, cfg: DynMIXConfig, vt: ViewTensors, split: Split, target: VarianceTarget,
                     record: dict[str, object]) -> None:
    rd.write_config(cfg)
    rd.write_split(split.to_json())
    rd.write_views_record(record)
    rd.write_gamma(pl.DataFrame({
        "date": pl.Series(vt.dates, dtype=pl.Date),
        "gamma": target.schedule().cpu().numpy(),
        "market_vol": vt.market_vol.cpu().numpy(),
        "dispersion": vt.dispersion.cpu().numpy(),
        "train": split.train_mask.cpu().numpy(),
    }))


def _train(ws: Workspace, cfg: DynMIXConfig, ctx: DistContext, resume: str | Path | None, run_name: str | None,
           progress: bool, max_steps: int | None, views: ViewTensors | None = None) -> Path:
    ckpt = None
    if resume is not None:
        rd = RunDir.resolve(ws, resume, complete=False)
        ckpt = rd.read_checkpoint(ctx.device)
        saved = checkpoint_config(rd, ckpt)  # the checkpoint's own config, not the editable config.toml
        cfg = replace(saved, train=replace(saved.train, device=cfg.train.device))
    vt = views if views is not None and views.device == ctx.device else load_view_tensors(ws.views, ctx.device)
    if ckpt is not None:
        check_views(ckpt.get("views", {}), vt, ws.views, f"run {rd.name}", exact=True)
    split = time_split(vt, cfg.train)
    target = VarianceTarget.from_config(cfg.loss, vt.market_vol, vt.dispersion, split.train_mask).to(ctx.device)
    if ckpt is not None:  # the cap the run started with (none before there was one): the same batches again
        cap, how = ckpt.get("meta", {}).get("max_batch_samples"), "as the run started"
    else:
        cap, how = max_batch_samples(cfg.train, cfg.model, vt.window, ctx.device, ctx.world_size)
        cap = ctx.broadcast(cap)  # every rank draws the same batches
    sampler = DateBlockSampler(vt.valid(), split.train_mask, cfg.train.dates_per_batch, seed=cfg.train.seed,
                               max_samples=cap)
    total = cfg.train.epochs * len(sampler)

    torch.manual_seed(cfg.train.seed)
    model = DynMIX(cfg.model, len(vt.feature_names), len(vt.channels), vt.window,
                   predictor=cfg.loss.objective == "byol").to(ctx.device)
    if ctx.world_size > 1:
        convert_global_batchnorm(model)  # projector BatchNorm over the global batch, as in one process
    optimizer, scheduler = make_optimizer(model, cfg.train, total)
    ema = EMA(model, cfg.train.ema_momentum, total)
    record = views_record(vt, ws.views)
    if ckpt is None:
        name = str(RunDir.create(ws, run_name or default_run_name(cfg)).path) if ctx.is_main else None
        rd = RunDir(Path(ctx.broadcast(name)))
        if ctx.is_main:
            rd.mark_incomplete()  # until the end: `latest` skips it, `train --resume RUN` continues it
            _write_run_files(rd, cfg, vt, split, target, record)

    t = cfg.train
    session = Session(rd.checkpoint_path, rd.metrics_path, cfg.to_dict(), record, t.epochs, t.log_every,
                      t.checkpoint_every, resume_hint=f"dynmix train --resume {rd.name}", compile=t.compile,
                      meta={"max_batch_samples": cap})
    objective = pair_objective(cfg.loss.objective)(model, cfg.loss, vt, target, ctx, amp=t.amp, ema=ema)
    info = (f"run {rd.path}: {split.n_train_dates} training dates ({split.train_start} .. {split.train_end}), "
            f"{len(sampler)} steps/epoch x {t.epochs} epochs, device {ctx.device}"
            + (f" x {ctx.world_size} processes" if ctx.world_size > 1 else "")
            + _cap_text(sampler, cap, how))
    engine = run_session(session, objective, sampler, optimizer, scheduler, ctx, ema=ema, ckpt=ckpt,
                         progress=progress, max_steps=max_steps, info=info)
    if engine.done and ctx.is_main:
        export_embeddings(model, vt, rd.embeddings_dir,
                          embed_dates_per_batch(t, cfg.model, vt.window, len(vt.tickers), ctx.device), t.amp)
        rd.mark_complete()
        engine.recorder.info(f"done: {rd.path}")
    elif ctx.is_main:
        engine.recorder.info(f"`dynmix embed {rd.name}` exports the embeddings of the model at step {engine.step}")
    ctx.barrier()
    return rd.path
