"""Training throughput of the default DynMIX model (ModelConfig defaults), one case per market size.

The case first times `load_view_tensors` (the scaling curve's tensors figures: this fresh process's peak memory
right after it is the load's peak).
The trainer is assembled from the public pieces exactly as `dynmix.train.job.train` does (model, VICReg loss,
variance target, date-blocked sampler, AdamW + schedule, EMA, `Trainer`), without writing a run folder. Three
timings over the same batches, after `warmup` untimed steps:

    full step     next batch from the sampler + `Trainer.train_step` (index gathers of both views included)
    model step    `Trainer.train_step` on the same batches gathered beforehand (the step minus sampler and gathers)
    parts         the sampler alone and the gathers alone (`Trainer.batch`)

Full and model steps alternate batch by batch. The share of a step spent outside the model is given two ways:
1 - model / full over those batches, and (sampler + gathers) / full (the parts timed directly; steadier on a
busy machine). The epoch time is an
ESTIMATE: steps per epoch x the mean measured full step (labelled so in the results).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from typing import Any

import torch

from benchmarks.harness import loadavg, measure, peak_rss_mb
from benchmarks.views_bench import market_home
from dynmix.config import DynMIXConfig
from dynmix.losses.variance_target import VarianceTarget
from dynmix.losses.vicreg import VICRegLoss
from dynmix.models.dynmix import DynMIX
from dynmix.train import EMA, Trainer
from dynmix.train.schedule import make_optimizer
from dynmix.train.split import time_split
from dynmix.views.tensors import DateBlockSampler, load_view_tensors


def make_trainer(home: str, tickers: int, years: float, cfg: DynMIXConfig, device: str) -> Trainer:
    vt = load_view_tensors(market_home(home, tickers, years).views, device)
    split = time_split(vt, cfg.train)
    target = VarianceTarget.from_config(cfg.loss, vt.market_vol, vt.dispersion, split.train_mask).to(vt.device)
    sampler = DateBlockSampler(vt.valid(), split.train_mask, cfg.train.dates_per_batch, seed=cfg.train.seed)
    total = cfg.train.epochs * len(sampler)
    torch.manual_seed(cfg.train.seed)
    model = DynMIX(cfg.model, len(vt.feature_names), len(vt.channels), vt.window).to(vt.device)
    optimizer, scheduler = make_optimizer(model, cfg.train, total)
    return Trainer(model, VICRegLoss.from_config(cfg.loss), target, sampler, optimizer, scheduler, vt,
                   ema=EMA(model, cfg.train.ema_momentum, total), amp=cfg.train.amp)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_case(home: str, tickers: int, years: float, steps: int, warmup: int, device: str = "cpu",
               dates_per_batch: int | None = None, load_repeats: int = 1, load_warmup: int = 0,
               threads: int | None = None) -> dict[str, Any]:
    """Time load_view_tensors first (its peak memory is this process's peak right after), then the steps.

    `threads`: torch intra-op threads (default: torch's own choice, one per core).
    """
    if threads:
        torch.set_num_threads(threads)
    views = market_home(home, tickers, years).views
    tensors = {"timing": measure(lambda: load_view_tensors(views, device), load_repeats, load_warmup),
               "peak_rss_mb": peak_rss_mb()}
    cfg = DynMIXConfig()
    if dates_per_batch is not None:
        cfg = replace(cfg, train=replace(cfg.train, dates_per_batch=dates_per_batch))
    trainer = make_trainer(home, tickers, years, cfg, device)
    dev = trainer.views.device
    batches, sampler_s = [], []
    it = trainer.sampler.epoch(0)
    for _ in range(warmup + steps):
        t0 = time.perf_counter()
        batches.append(next(it))
        _sync(dev)
        sampler_s.append(time.perf_counter() - t0)
    for i, t in batches[:warmup]:
        float(trainer.train_step(i, t)["loss"])  # warm-up: allocator, kernels, optimiser state
    timed = batches[warmup:]
    full, model, gather = [], [], []
    for k, (i, t) in enumerate(timed):  # interleaved, so a change in the machine's load hits both alike
        full.append(sampler_s[warmup + k] + _step(trainer, i, t))
        t0 = time.perf_counter()
        pre = {key: v.clone() for key, v in trainer.batch(i, t).items()}
        _sync(dev)
        gather.append(time.perf_counter() - t0)
        trainer.batch = lambda _i, _t, pre=pre: pre  # type: ignore[method-assign, misc]
        model.append(_step(trainer, i, t))
        del trainer.batch
    samples = [int(i.numel()) for i, _ in timed]
    spe = trainer.steps_per_epoch
    return {
        "device": str(dev), "threads": torch.get_num_threads(), "cuda_available": torch.cuda.is_available(),
        "dates_per_batch": cfg.train.dates_per_batch, "steps": steps, "warmup_steps": warmup,
        "batch_samples_mean": statistics.mean(samples), "samples_per_s": sum(samples) / sum(full),
        "full_step_s": _stats(full), "model_step_s": _stats(model), "sampler_s": _stats(sampler_s[warmup:]),
        "gather_s": _stats(gather), "outside_model_share": 1.0 - sum(model) / sum(full),
        "outside_model_share_parts": (sum(sampler_s[warmup:]) + sum(gather)) / sum(full),
        "steps_per_epoch": spe, "epoch_s_estimate": spe * statistics.mean(full),
        "tensors": tensors, "loadavg": loadavg(),
    }


def _step(trainer: Trainer, i: torch.Tensor, t: torch.Tensor) -> float:
    t0 = time.perf_counter()
    float(trainer.train_step(i, t)["loss"])  # float(): waits for the step to finish
    return time.perf_counter() - t0


def _stats(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "mean": statistics.mean(xs), "min": min(xs), "max": max(xs)}
