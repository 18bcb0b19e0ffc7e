"""Milliseconds per portfolio plan: `python -m benchmarks.planning [--assets 20 500 2000] [--repeats 7]`.

A plan is PortfolioMPC.plan with the default PlanConfig (S=512 samples, 6 iterations, 64 elites, H=5) on a
random k=5 factor forecast. Median of `repeats` runs after one warm-up, on CPU (1 thread and torch's
default) and on CUDA when available; wall-clock and process CPU time (the latter is less sensitive to a
shared machine). `--compile` also times `plan.compile = true` (torch.compile; CUDA graphs on a GPU), whose
warm-up holds the compilation. Writes benchmarks/out/planning.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from dynmix.config import PlanConfig
from dynmix.io import write_json
from dynmix.models.risk import StaticRiskModel
from dynmix.planning.portfolio import PortfolioMPC

OUT = Path(__file__).parent / "out" / "planning.json"


def forecast_model(n_assets: int, factors: int, device: torch.device, seed: int = 0) -> StaticRiskModel:
    g = torch.Generator().manual_seed(seed)
    mu = 5e-4 * torch.randn(n_assets, generator=g)
    loadings = 0.01 * torch.randn(n_assets, factors, generator=g)
    sigma = 0.01 + 0.01 * torch.rand(n_assets, generator=g)
    return StaticRiskModel(mu.to(device), loadings.to(device), sigma.to(device))


def time_plan(cfg: PlanConfig, n_assets: int, factors: int, device: torch.device, repeats: int) -> dict:
    mpc = PortfolioMPC(cfg)
    forecast = forecast_model(n_assets, factors, device).forecast(cfg.horizon)
    w_prev = torch.full((n_assets,), 1.0 / n_assets, device=device)
    t0 = time.perf_counter()
    plan = mpc.plan(forecast, w_prev)  # warm-up (allocator, kernels; the compilation with plan.compile)
    if device.type == "cuda":
        torch.cuda.synchronize()
    warmup_s = time.perf_counter() - t0
    times, cpu = [], []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        plan = mpc.plan(forecast, w_prev, prev_mean=plan.mean)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(1e3 * (time.perf_counter() - t0))
        cpu.append(1e3 * (time.process_time() - c0))
    return {"device": device.type, "threads": torch.get_num_threads(), "assets": n_assets,
            "compiled": cfg.compile, "warmup_s": warmup_s,
            "median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times),
            "median_cpu_ms": statistics.median(cpu), "repeats": repeats}


def device_case(assets: list[int], repeats: int, device: str, compiled: list[bool], factors: int = 5
                ) -> dict[str, Any]:
    """ms per plan on one device, eager and/or `plan.compile`, for benchmarks.harness.run_case (a fresh process);
    a mode that fails is an `error` row.
    """
    dev, rows = torch.device(device), []
    with torch.inference_mode():
        for n in assets:
            for c in compiled:
                try:
                    rows.append(time_plan(replace(PlanConfig(), compile=c), n, factors, dev, repeats))
                except Exception as e:  # noqa: BLE001 - the report says what failed
                    rows.append({"device": dev.type, "assets": n, "compiled": c,
                                 "error": f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"})
    return {"results": rows}


def time_hierarchical(cfg: PlanConfig, n_assets: int, factors: int, device: torch.device, repeats: int,
                      rep_dim: int = 64) -> dict:
    """The hierarchical planner's rebalance at a month start: groups (k-means on random embeddings), the
    strategic plan on the monthly aggregate of a strategic_days x strategic_horizon daily forecast, then the
    tactical plan tracking its target; and a tracking-only rebalance (the other weeks)."""
    from dynmix.planning.hierarchy import aggregate, group_assets, group_forecast, strategic_config, within_weights

    model = forecast_model(n_assets, factors, device)
    long = model.forecast(cfg.strategic_days * cfg.strategic_horizon)
    short = model.forecast(cfg.horizon)
    reps = torch.randn(n_assets, rep_dim, generator=torch.Generator().manual_seed(1)).numpy()
    tactical, strategic = PortfolioMPC(cfg), PortfolioMPC(strategic_config(cfg))
    w_prev = torch.full((n_assets,), 1.0 / n_assets, device=device)

    def month_start() -> torch.Tensor:
        monthly = aggregate(long, cfg.strategic_days)
        labels = group_assets(reps, cfg.groups, cfg.seed)
        within = within_weights(monthly, labels).to(device)
        prev_g = within.new_zeros(within.shape[0]).index_add_(0, torch.as_tensor(labels, device=device), w_prev)
        target = strategic.plan(group_forecast(monthly, within), prev_g).first @ within
        tactical.plan(short, w_prev, target=target)
        return target

    target = month_start()  # warm-up
    out: dict = {"device": device.type, "threads": torch.get_num_threads(), "assets": n_assets,
                 "planner": "hierarchical", "repeats": repeats}
    for name, fn in (("month_start", month_start), ("tracking", lambda: tactical.plan(short, w_prev, target=target))):
        times = []
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(1e3 * (time.perf_counter() - t0))
        out[f"{name}_median_ms"] = statistics.median(times)
    # a month of ~4.3 weekly rebalances: one month start, the rest tracking
    out["mean_ms_per_rebalance"] = (out["month_start_median_ms"] + 3.3 * out["tracking_median_ms"]) / 4.3
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assets", type=int, nargs="+", default=[20, 500, 2000])
    ap.add_argument("--factors", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, torch.get_num_threads()],
                    help="CPU intra-op threads to try (default: 1 and torch's default)")
    ap.add_argument("--long-short", action="store_true", help="plan long-short weights (gross limit 1.5)")
    ap.add_argument("--hierarchical", action="store_true",
                    help="also time the hierarchical planner (month start and tracking rebalances)")
    ap.add_argument("--compile", action="store_true", help="also time plan.compile = true (torch.compile)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    cfg = PlanConfig()
    if args.long_short:
        cfg = replace(cfg, long_only=False, gross_limit=1.5)
    configs = [cfg, replace(cfg, compile=True)] if args.compile else [cfg]
    devices = [torch.device(d) for d in args.devices if d == "cpu" or torch.cuda.is_available()]
    rows = []
    with torch.inference_mode():
        for device in devices:
            for threads in sorted(set(args.threads)) if device.type == "cpu" else [torch.get_num_threads()]:
                torch.set_num_threads(threads)
                for n in args.assets:
                    rows += [time_plan(c, n, args.factors, device, args.repeats) for c in configs]
    table = Table(title=f"PortfolioMPC.plan: S={cfg.samples}, iterations={cfg.iterations}, H={cfg.horizon}, "
                        f"k={args.factors}, {'long-short' if args.long_short else 'long-only'}")
    for col in ("device", "threads", "assets", "mode", "median ms", "min ms", "max ms", "median CPU ms", "warm-up s"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["device"], str(r["threads"]), str(r["assets"]), "compiled" if r["compiled"] else "eager",
                      f"{r['median_ms']:.1f}", f"{r['min_ms']:.1f}", f"{r['max_ms']:.1f}", f"{r['median_cpu_ms']:.1f}",
                      f"{r['warmup_s']:.1f}")
    Console().print(table)
    hier = []
    if args.hierarchical:
        with torch.inference_mode():
            for device in devices:
                torch.set_num_threads(min(args.threads) if device.type == "cpu" else torch.get_num_threads())
                hier += [time_hierarchical(cfg, n, args.factors, device, args.repeats) for n in args.assets]
        for r in hier:
            Console().print(f"hierarchical {r['device']} {r['threads']} thread(s) {r['assets']} assets: month start "
                            f"{r['month_start_median_ms']:.1f} ms, tracking {r['tracking_median_ms']:.1f} ms, mean "
                            f"per weekly rebalance {r['mean_ms_per_rebalance']:.1f} ms")
    machine = {
        "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(), "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    write_json({"benchmark": "planning", "config": asdict(cfg), "factors": args.factors, "machine": machine,
                "results": rows, "hierarchical": hier}, args.out)
    Console().print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
