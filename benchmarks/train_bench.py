"""Training throughput of the default DynMIX model (ModelConfig defaults) at one market size.

The trainer is assembled from the public pieces exactly as `dynmix.train.job.train` does (model, VICReg loss,
variance target, date-blocked sampler, AdamW + schedule, EMA, the engine), without writing a run folder. Three
timings over the same batches, after `warmup` untimed steps:

    full step     next batch from the sampler + `Engine.train_step` (index gathers of both views included)
    model step    `Engine.train_step` on the same batches gathered beforehand (the step minus sampler and gathers)
    parts         the sampler alone and the gathers alone (`PairObjective.batch`)

Full and model steps alternate batch by batch. The share of a step spent outside the model is given two ways:
1 - model / full over those batches, and (sampler + gathers) / full (the parts timed directly; steadier on a
busy machine). Epoch times are measured by benchmarks/epoch_bench.py, not derived from these steps.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from benchmarks.harness import loadavg
from benchmarks.views_bench import market_home
from dynmix.config import DynMIXConfig
from dynmix.losses.variance_target import VarianceTarget
from dynmix.models.dynmix import DynMIX
from dynmix.runs.device import DistContext
from dynmix.runs.memory import max_batch_samples
from dynmix.runs.split import time_split
from dynmix.train import EMA, Engine
from dynmix.train.pair import VICRegObjective
from dynmix.train.schedule import make_optimizer
from dynmix.views.tensors import DateBlockSampler, ViewTensors, load_view_tensors


class Trainer(Engine):
    """The engine with DynMIX's VICReg objective, as dynmix.train.job assembles it; a step takes (i, t)."""

    objective: VICRegObjective

    @property
    def views(self) -> ViewTensors:
        return self.objective.views

    def batch(self, i: Tensor, t: Tensor) -> dict[str, Tensor]:
        return self.objective.batch(i, t)

    def step_on(self, i: Tensor, t: Tensor) -> dict[str, Any]:
        return self.train_step((i, t))


def make_trainer(vt: ViewTensors, cfg: DynMIXConfig, allowed: Tensor | None = None,
                 compile_model: bool = False) -> Trainer:
    """A Trainer as `dynmix.train.job` builds it; `allowed` (T,) bool narrows the sampler's dates (default: the
    training dates of the split); `compile_model` wraps the model in `torch.compile`, as the session's `wrap` does.
    """
    split = time_split(vt, cfg.train)
    target = VarianceTarget.from_config(cfg.loss, vt.market_vol, vt.dispersion, split.train_mask).to(vt.device)
    dates = split.train_mask if allowed is None else allowed.to(vt.device)
    cap, _how = max_batch_samples(cfg.train, cfg.model, vt.window, vt.device)  # as the job: auto from the free memory
    sampler = DateBlockSampler(vt.valid(), dates, cfg.train.dates_per_batch, seed=cfg.train.seed, max_samples=cap)
    total = cfg.train.epochs * len(sampler)
    torch.manual_seed(cfg.train.seed)
    model = DynMIX(cfg.model, len(vt.feature_names), len(vt.channels), vt.window).to(vt.device)
    optimizer, scheduler = make_optimizer(model, cfg.train, total)
    objective = VICRegObjective(model, cfg.loss, vt, target, DistContext(0, 1, vt.device), amp=cfg.train.amp)
    objective.net = torch.compile(model) if compile_model else model  # type: ignore[assignment]
    return Trainer(objective, sampler, optimizer, scheduler, ema=EMA(model, cfg.train.ema_momentum, total))


def config(dates_per_batch: int | None = None) -> DynMIXConfig:
    """The default config, with `dates_per_batch` when given."""
    cfg = DynMIXConfig()
    return cfg if dates_per_batch is None else replace(cfg, train=replace(cfg.train, dates_per_batch=dates_per_batch))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_case(home: str, tickers: int, years: float, steps: int, warmup: int, device: str = "cpu",
               dates_per_batch: int | None = None, threads: int | None = None) -> dict[str, Any]:
    """Time `steps` full and model steps after `warmup` untimed ones. `threads`: torch intra-op threads."""
    if threads:
        torch.set_num_threads(threads)
    cfg = config(dates_per_batch)
    trainer = make_trainer(load_view_tensors(market_home(home, tickers, years).views, device), cfg)
    dev = trainer.views.device
    batches, sampler_s = [], []
    it = trainer.sampler.epoch(0)
    for _ in range(warmup + steps):
        t0 = time.perf_counter()
        batches.append(next(it))
        sync(dev)
        sampler_s.append(time.perf_counter() - t0)
    for i, t in batches[:warmup]:
        float(trainer.step_on(i, t)["loss"])  # warm-up: allocator, kernels, optimiser state
    timed = batches[warmup:]
    full, model, gather = [], [], []
    for k, (i, t) in enumerate(timed):  # interleaved, so a change in the machine's load hits both alike
        full.append(sampler_s[warmup + k] + step_s(trainer, i, t))
        t0 = time.perf_counter()
        pre = {key: v.clone() for key, v in trainer.batch(i, t).items()}
        sync(dev)
        gather.append(time.perf_counter() - t0)
        trainer.objective.batch = lambda _i, _t, pre=pre: pre  # type: ignore[method-assign, misc]
        model.append(step_s(trainer, i, t))
        del trainer.objective.batch
    samples = [int(i.numel()) for i, _ in timed]
    return {
        "device": str(dev), "threads": torch.get_num_threads(), "cuda_available": torch.cuda.is_available(),
        "dates_per_batch": cfg.train.dates_per_batch, "steps": steps, "warmup_steps": warmup,
        "batch_samples_mean": statistics.mean(samples), "samples_per_s": sum(samples) / sum(full),
        "full_step_s": stats(full), "model_step_s": stats(model), "sampler_s": stats(sampler_s[warmup:]),
        "gather_s": stats(gather), "outside_model_share": 1.0 - sum(model) / sum(full),
        "outside_model_share_parts": (sum(sampler_s[warmup:]) + sum(gather)) / sum(full), "loadavg": loadavg(),
    }


def step_s(trainer: Trainer, i: torch.Tensor, t: torch.Tensor) -> float:
    """Seconds of one `Engine.train_step` on (i, t)."""
    t0 = time.perf_counter()
    float(trainer.step_on(i, t)["loss"])  # float(): waits for the step to finish
    return time.perf_counter() - t0


def stats(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "mean": statistics.mean(xs), "min": min(xs), "max": max(xs)}
