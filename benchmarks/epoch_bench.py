"""A measured training epoch: `Engine.fit` for one full epoch over a fixed span of training dates.

Each case first times `load_view_tensors` (the scaling curve's tensors figures; this fresh process's peak
memory right after it is the load's peak), then builds the trainer as `dynmix.train.job.train` does and runs
`warmup` untimed steps. The timed epoch is `Engine.fit(1)`: the date-blocked sampler, the index gathers,
model, loss, backward, optimiser, schedule and EMA of every step, and the statistics of its logging steps,
exactly what a training run does per epoch (minus writing metrics.jsonl and checkpoints).

The span is the last `epoch_dates` usable training dates of the market (0: every training date, a full
epoch of `dynmix train`), so that an epoch fits on a small CPU at every size. The batch is held near
`batch_samples` samples at every size: dates_per_batch = max(1, round(batch_samples / N)).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import Tensor

from benchmarks.harness import loadavg, measure, peak_rss_mb
from benchmarks.train_bench import config, make_trainer, sync
from benchmarks.views_bench import market_home
from dynmix.config import TrainConfig
from dynmix.runs.split import time_split
from dynmix.views.tensors import ViewTensors, load_view_tensors


def dates_per_batch_for(tickers: int, batch_samples: int) -> int:
    """Dates per batch that keep a batch near `batch_samples` samples with `tickers` companies."""
    return max(1, round(batch_samples / tickers))


def last_training_dates(vt: ViewTensors, cfg: TrainConfig, n: int) -> Tensor:
    """(T,) bool: the last `n` usable training dates (>= 2 valid companies); every one when n <= 0."""
    usable = time_split(vt, cfg).train_mask.cpu() & (vt.valid().sum(dim=0).cpu() >= 2)  # (T,)
    idx = torch.nonzero(usable).flatten()
    keep = torch.zeros_like(usable)
    keep[idx if n <= 0 else idx[-n:]] = True
    return keep


def epoch_case(home: str, tickers: int, years: float, epoch_dates: int, batch_samples: int, warmup: int = 1,
               device: str = "cpu", load_repeats: int = 1, load_warmup: int = 0,
               threads: int | None = None) -> dict[str, Any]:
    """Seconds, samples/s and memory of one measured epoch over the last `epoch_dates` training dates."""
    if threads:
        torch.set_num_threads(threads)
    views = market_home(home, tickers, years).views
    loaded: list[ViewTensors] = []

    def load() -> None:
        loaded.clear()  # one copy in memory at a time, as in a training run
        loaded.append(load_view_tensors(views, device))

    tensors = {"timing": measure(load, load_repeats, load_warmup), "peak_rss_mb": peak_rss_mb()}
    vt = loaded.pop()
    cfg = config(dates_per_batch_for(tickers, batch_samples))
    span = last_training_dates(vt, cfg.train, epoch_dates)
    trainer = make_trainer(vt, cfg, allowed=span)
    dev = trainer.views.device
    t0 = time.perf_counter()
    for k, (i, t) in enumerate(trainer.sampler.epoch(1)):  # warm-up on another order of the same dates
        if k >= warmup:
            break
        float(trainer.step_on(i, t)["loss"])
    sync(dev)
    warmup_s = time.perf_counter() - t0
    trainer.step = 0  # fit(1) runs epoch 0 from its first step
    samples = sum(int(i.numel()) for i, _ in trainer.sampler.epoch(0))  # the batches fit will draw
    before = loadavg()
    t0, c0 = time.perf_counter(), time.process_time()
    done = trainer.fit(1, log_every=cfg.train.log_every)
    sync(dev)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    dates = trainer.sampler.dates
    return {
        "device": str(dev), "threads": torch.get_num_threads(), "epoch_dates": int(dates.numel()),
        "epoch_dates_asked": epoch_dates, "first_date": str(vt.dates[int(dates.min())]),
        "last_date": str(vt.dates[int(dates.max())]), "dates_per_batch": cfg.train.dates_per_batch,
        "batch_samples_asked": batch_samples, "steps": trainer.steps_per_epoch, "warmup_steps": warmup,
        "warmup_s": warmup_s, "samples": samples, "batch_samples_mean": samples / trainer.steps_per_epoch,
        "epoch_s": wall, "epoch_cpu_s": cpu, "samples_per_s": samples / wall, "completed": done,
        "loadavg_before": before, "loadavg": loadavg(), "tensors": tensors,
        "max_batch_samples": trainer.sampler.max_samples,
    }
