"""`torch.compile` against eager: training steps of the default model, on the same batches, in one process.

Two trainers with the same seed and config, one with its model wrapped in `torch.compile` exactly as
`dynmix.train.job` does under `train.compile = true`. Each runs `warmup` untimed steps first; the compiled
trainer's warm-up holds the compilation, cold (inductor's caches off), and the recompilation for a dynamic
batch size (B varies with the companies alive), so its seconds are reported apart as the compile time.
The timed steps alternate eager and compiled batch by batch. A compilation that fails is recorded with its
error; the eager figures stay.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from benchmarks.harness import loadavg
from benchmarks.train_bench import Trainer, config, make_trainer, stats, step_s, sync
from benchmarks.views_bench import market_home
from dynmix.views.tensors import load_view_tensors


def _graphs() -> int:
    """Graphs dynamo has compiled so far in this process (a recompilation adds one)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def _failed(e: Exception) -> dict[str, str]:
    msg = " ".join(str(e).split())[:400]
    return {"error": f"torch.compile failed: {type(e).__name__}: {msg}"}


def _warm(trainer: Trainer, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[float, list[float]]:
    """Seconds of the warm-up steps, and their losses."""
    t0 = time.perf_counter()
    losses = [float(trainer.step_on(i, t)["loss"]) for i, t in batches]
    sync(trainer.views.device)
    return time.perf_counter() - t0, losses


def compile_case(home: str, tickers: int, years: float, steps: int, warmup: int, device: str = "cpu",
                 dates_per_batch: int | None = None, threads: int | None = None) -> dict[str, Any]:
    """Samples/s of eager and compiled steps after `warmup` steps each; the compiled warm-up's seconds."""
    if threads:
        torch.set_num_threads(threads)
    cfg = config(dates_per_batch)
    vt = load_view_tensors(market_home(home, tickers, years).views, device)
    eager = make_trainer(vt, cfg)
    it = eager.sampler.epoch(0)
    batches = [next(it) for _ in range(warmup + steps)]
    out: dict[str, Any] = {"device": str(vt.device), "threads": torch.get_num_threads(), "tickers": tickers,
                           "dates_per_batch": cfg.train.dates_per_batch, "steps": steps, "warmup_steps": warmup,
                           "batch_samples": [int(i.numel()) for i, _ in batches]}
    eager_warm, eager_losses = _warm(eager, batches[:warmup])
    try:
        import torch._inductor.config as inductor

        compiled = make_trainer(vt, cfg, compile_model=True)
        with inductor.patch(force_disable_caches=True):  # cold, as on a fresh machine (no cache of a past run)
            compiled_warm, compiled_losses = _warm(compiled, batches[:warmup])
        # same seed, same batches, no dropout: the compiled steps should give the eager losses
        out["warmup_loss_max_abs_diff"] = max((abs(a - b) for a, b in zip(eager_losses, compiled_losses, strict=True)),
                                              default=None)
    except Exception as e:  # noqa: BLE001 - a failure of the compiler is a result to record
        out["compiled"], compiled = _failed(e), None
    graphs = _graphs() if compiled is not None else 0
    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    for i, t in batches[warmup:]:  # interleaved: a change in the machine's load hits both alike
        times["eager"].append(step_s(eager, i, t))
        if compiled is not None:
            try:
                times["compiled"].append(step_s(compiled, i, t))
            except Exception as e:  # noqa: BLE001 - e.g. a recompilation that fails
                out["compiled"], compiled = _failed(e), None
    samples = sum(int(i.numel()) for i, _ in batches[warmup:])
    out["eager"] = {"warmup_s": eager_warm, "step_s": stats(times["eager"]),
                    "samples_per_s": samples / sum(times["eager"])}
    if compiled is not None:
        out["compiled"] = {"warmup_s": compiled_warm, "step_s": stats(times["compiled"]),
                           "samples_per_s": samples / sum(times["compiled"]),
                           "recompiles_in_timed_steps": _graphs() - graphs}
        out["speedup"] = out["compiled"]["samples_per_s"] / out["eager"]["samples_per_s"]
        out["compile_s"] = compiled_warm - eager_warm  # the compiled warm-up beyond the eager one
    return out | {"loadavg": loadavg()}
