"""A prepared device check of the scale work: bounded batches and the embeddings export on one accelerator.

    python -m benchmarks.gpu_check --out gpu_check.json            # on a CUDA machine (a few minutes)
    python -m benchmarks.gpu_check --tiny --device cpu --out x.json  # the same code, tiny, on a CPU (the tests)

For each company count (default 500 and 5,000, 25 years of trading days) it builds random view tensors of the real
shapes (F explicit features, C implicit channels, L-day windows; no views build needed), then with the default model
and the VICReg objective: the automatic `max_batch_samples` of the device, training steps on date-blocked batches
sampled to that cap (samples/s, median step seconds, the share of a step spent drawing and gathering the batch, peak
device memory), the embeddings export rate (company-days/s) and, at --epoch-companies, --epochs whole timed epochs;
`--compile` runs the model through torch.compile as `train.compile` does, `--compile-mode reduce-overhead` as CUDA
graphs. Figures go to `--out` as JSON with the device, the date and the versions. `python -m benchmarks --gpu`
(benchmarks/gpu_suite.py) runs this check in every mode with the planner's and writes RESULTS.md section 12.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from dynmix.config import LossConfig, ModelConfig, TrainConfig
from dynmix.losses.variance_target import VarianceTarget
from dynmix.models.dynmix import DynMIX
from dynmix.runs.device import DistContext
from dynmix.runs.memory import bytes_per_sample, max_batch_samples
from dynmix.train.embed import embed_blocks
from dynmix.train.pair import VICRegObjective
from dynmix.train.session import wrap
from dynmix.views.tensors import DateBlockSampler, ViewTensors

DAYS_PER_YEAR = 252
F, S, C, L = 26, 10, 14, 60  # explicit features (S of them sectors), implicit channels (2 + 12 factors), window


def random_views(n: int, t: int, device: torch.device, seed: int = 0, window: int = L) -> ViewTensors:
    """View tensors of the default views' shapes with random values (sectors kept per company, as loaded), every
    company alive on every date.
    """
    g = torch.Generator().manual_seed(seed)
    dates = [dt.date(2000, 1, 3) + dt.timedelta(days=k) for k in range(t)]
    names = [f"f{k}" for k in range(F - S)] + [f"sector_{k}" for k in range(S)]
    vt = ViewTensors(
        tickers=[f"C{k:05d}" for k in range(n)], dates=dates, feature_names=names,
        channels=[f"c{k}" for k in range(C)], window=window, min_window_obs=window - 15,
        explicit=torch.randn(n, t, F - S, generator=g), explicit_mask=torch.ones(n, t, dtype=torch.bool),
        returns=torch.randn(n, t, 2, generator=g), returns_mask=torch.ones(n, t, dtype=torch.bool),
        raw_returns=torch.randn(n, t, generator=g) * 0.01, market_vol=torch.rand(t, generator=g) * 0.2 + 0.1,
        dispersion=torch.rand(t, generator=g) * 0.02 + 0.01, factors=torch.randn(t, C - 2, generator=g),
        sectors=4.0 * torch.eye(S)[torch.randint(0, S, (n,), generator=g)])
    return vt.to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


TINY_MODEL = ModelConfig(dim=8, explicit_hidden=16, implicit_width=8, implicit_layers=2, projector_dim=16,
                         projector_hidden=16)


def check(n: int, years: float, device: torch.device, model_cfg: ModelConfig, steps: int, warmup: int,
          embed_dates: int, epochs: int = 0, compile_model: bool = False, mode: str | None = None,
          backend: str = "inductor") -> dict[str, Any]:
    """Steps, the export rate and `epochs` whole timed epochs (every date once each) at `n` companies.

    `compile_model` with `mode` None: torch.compile as `train.compile` runs it; `mode="reduce-overhead"`: as CUDA
    graphs (re-recorded per batch shape). `backend="eager"` traces without generating code (the fast CPU test).
    """
    t_days = max(L + 2, int(years * DAYS_PER_YEAR))
    vt = random_views(n, t_days, device, window=min(L, t_days - 2))
    train = TrainConfig(device=device.type)
    cap, how = max_batch_samples(train, model_cfg, vt.window, device)
    allowed = torch.ones(t_days, dtype=torch.bool, device=device)
    sampler = DateBlockSampler(vt.valid(), allowed, train.dates_per_batch, seed=0, max_samples=cap)
    torch.manual_seed(0)
    model = DynMIX(model_cfg, F, C, vt.window).to(device)
    target = VarianceTarget("market-vol", vt.market_vol, vt.dispersion, allowed.cpu()).to(device)
    ctx = DistContext(0, 1, device)
    obj = VICRegObjective(model, LossConfig(), vt, target, ctx, amp=train.amp)
    obj.net = wrap(model, ctx, False)  # as the engine runs it on one device; `train.compile` = mode None, inductor
    if compile_model:
        obj.net = torch.compile(obj.net, mode=mode, backend=backend)  # type: ignore[assignment]
    graphs = compile_model and mode == "reduce-overhead" and device.type == "cuda"
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def train_step(i: torch.Tensor, t: torch.Tensor, k: int) -> None:
        if graphs:  # a new step: the last step's graph outputs may be overwritten
            torch.compiler.cudagraph_mark_step_begin()
        loss, _ = obj.step((i, t), k, False)
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()

    batches = sampler.epoch(0)
    step_s, draw_s, sizes = [], [], []
    for k in range(warmup + steps):
        _sync(device)
        t0 = time.perf_counter()
        i, t = next(batches)
        obj.batch(i, t)  # the gathers alone, timed as the part of a step outside the model
        _sync(device)
        t1 = time.perf_counter()
        train_step(i, t, k)
        _sync(device)
        if k >= warmup:
            step_s.append(time.perf_counter() - t1)
            draw_s.append(t1 - t0)
            sizes.append(int(i.numel()))
    whole: dict[str, Any] = {}
    done = warmup + steps
    for e in range(1, epochs + 1):  # every batch of an epoch, the sampler's draws and the gathers included
        _sync(device)
        t0, n_steps, n_samples = time.perf_counter(), 0, 0
        for i, t in sampler.epoch(e):
            train_step(i, t, done)
            n_steps, n_samples, done = n_steps + 1, n_samples + int(i.numel()), done + 1
        _sync(device)
        whole = {"epoch_s": [*whole.get("epoch_s", []), time.perf_counter() - t0], "epoch_steps": n_steps,
                 "epoch_samples": n_samples}
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    model.eval()
    _sync(device)
    t0, rows = time.perf_counter(), 0
    sub = ViewTensors(**{**vt.__dict__, "explicit_mask": vt.explicit_mask.clone()})
    sub.explicit_mask[:, vt.window - 1 + embed_dates:] = False  # the first `embed_dates` usable dates only
    for i, _t, _reps in embed_blocks(model, sub, max(1, min(32, 2 * cap // n)), amp=train.amp):
        rows += int(i.numel())
    _sync(device)
    embed_s = time.perf_counter() - t0
    step = statistics.median(step_s)
    return {
        "companies": n, "dates": t_days, "compiled": compile_model, "mode": _mode(compile_model, mode, backend),
        "cap": cap, "cap_how": how,
        "bytes_per_sample_estimate": bytes_per_sample(model_cfg, vt.window), "largest_block": sampler.largest_block(),
        "median_batch": statistics.median(sizes), "median_step_s": step,
        "samples_per_s": statistics.median(sizes) / step if step > 0 else None,
        "outside_model_share": statistics.median(draw_s) / (step + statistics.median(draw_s)),
        "peak_device_mib": peak, "embed_rows": rows, "embed_rows_per_s": rows / embed_s if embed_s > 0 else None,
        **whole,
    }


def _mode(compile_model: bool, mode: str | None, backend: str) -> str:
    if not compile_model:
        return "eager"
    return f"torch.compile ({backend}{'' if mode is None else ', ' + mode})"


def check_case(companies: list[int], years: float, device: str, steps: int, warmup: int, embed_dates: int,
               epochs: int, epoch_companies: list[int], compile_model: bool = False, mode: str | None = None,
               backend: str = "inductor", tiny: bool = False) -> dict[str, Any]:
    """`check` at every company count, in one process (benchmarks.harness.run_case); a size that fails is an
    `error` row and the next still runs.
    """
    dev, rows = torch.device(device), []
    for n in companies:
        try:
            rows.append(check(n, years, dev, TINY_MODEL if tiny else ModelConfig(), steps, warmup, embed_dates,
                              epochs if n in epoch_companies else 0, compile_model, mode, backend))
        except Exception as e:  # noqa: BLE001 - the report says what failed (out of memory, a compile error)
            reason = " ".join(str(e).split())[:300]
            rows.append({"companies": n, "mode": _mode(compile_model, mode, backend),
                         "error": f"{type(e).__name__}: {reason}"})
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return {"device": str(dev), "device_name": _device_name(dev), "torch": torch.__version__, "checks": rows}


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    ap.add_argument("--companies", default="500,5000", help="comma-separated company counts")
    ap.add_argument("--years", type=float, default=25.0)
    ap.add_argument("--steps", type=int, default=10, help="timed training steps per size")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--embed-dates", type=int, default=64, help="dates of the timed embeddings export")
    ap.add_argument("--epoch-companies", default="500", help="company counts that also time whole epochs")
    ap.add_argument("--epochs", type=int, default=1, help="whole epochs timed at --epoch-companies")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (the warm-up holds the compile)")
    ap.add_argument("--compile-mode", default=None, help="torch.compile mode (reduce-overhead: CUDA graphs)")
    ap.add_argument("--tiny", action="store_true", help="a small model and market (the CPU test)")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    device = torch.device(a.device)
    model_cfg = ModelConfig()
    sizes = [int(s) for s in a.companies.split(",") if s]
    if a.tiny:
        model_cfg = TINY_MODEL
        sizes, a.years, a.steps, a.warmup, a.embed_dates, a.epoch_companies = [40], 0.5, 2, 1, 4, "40"
    with_epoch = {int(s) for s in a.epoch_companies.split(",") if s}
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "device": str(device),
        "device_name": _device_name(device),
        "torch": torch.__version__, "tiny": a.tiny,
        "checks": [check(n, a.years, device, model_cfg, a.steps, a.warmup, a.embed_dates,
                         a.epochs if n in with_epoch else 0, a.compile or a.compile_mode is not None,
                         a.compile_mode)
                   for n in sizes],
    }
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
