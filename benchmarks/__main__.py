"""`python -m benchmarks [--sizes 100,500,1000,5000] [--years 25] [--quick] [--only views,train,scaling,planning]`.

Runs every benchmark case in its own fresh process (benchmarks/harness.py) on synthetic markets written to a
temporary workspace, then writes benchmarks/RESULTS.md (tables) and benchmarks/results.json (raw figures).
Every figure is measured; nothing is extrapolated or estimated.

    views     build_views (polars) vs the pandas reference (skip it: --no-pandas), both at --views-sizes
    train     training throughput of the default model at --train-size (CPU; share of a step outside the model);
              with --compile also eager vs torch.compile steps (benchmarks/compile_bench.py)
    scaling   views time, load_view_tensors time, one measured training epoch and peak memory at --sizes;
              the epoch spans the last --epoch-dates training dates with batches of about --batch-samples
              samples (dates per batch = max(1, round(batch_samples / N))); log-log fits
    planning  ms per portfolio plan for --assets, via benchmarks/planning.py

`--gpu` instead runs the GPU check (benchmarks/gpu_suite.py: training steps, epochs, torch.compile, CUDA graphs and
plans on CUDA in at most --gpu-budget seconds) and writes RESULTS.md section 12 only; `--gpu --quick` is its tiny
CPU mode. `--quick` uses tiny sizes (the smoke test). A throughput batch of more than --max-batch samples (16 dates x N
companies) would not fit in memory on a small machine: that case then uses fewer dates per batch, and says so.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks import results, scaling
from benchmarks.harness import machine, run_case

KINDS = ("views", "train", "scaling", "planning")
FULL = dict(sizes="100,500,1000,5000", views_sizes="500,5000", train_size=500, years=25.0, repeats=3, warmup=1,
            train_steps=3, train_warmup=1, dates_per_batch=16, assets="20,500,2000", plan_repeats=7,
            epoch_dates=64, batch_samples=8000, compile_warmup=3)
QUICK = dict(sizes="20,40", views_sizes="40", train_size=40, years=2.0, repeats=1, warmup=0, train_steps=1,
             train_warmup=1, dates_per_batch=2, assets="20", plan_repeats=1, epoch_dates=8, batch_samples=200,
             compile_warmup=2)
DEFAULT_DPB = 16  # TrainConfig.dates_per_batch


def planning_case(assets: list[int], repeats: int, factors: int = 5, threads: int | None = None) -> dict[str, Any]:
    """ms per plan via benchmarks.planning.time_plan, on CPU (and CUDA if present); `threads`: torch's CPU threads."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    from benchmarks.planning import time_plan
    from dynmix.config import PlanConfig

    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    with torch.inference_mode():
        rows = [time_plan(PlanConfig(), n, factors, d, repeats) for d in devices for n in assets]
    return {"results": rows}


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    ap.add_argument("--only", default=",".join(KINDS), help="comma-separated subset of " + ",".join(KINDS))
    for key, kind in (("sizes", str), ("views_sizes", str), ("train_size", int), ("years", float),
                      ("repeats", int), ("warmup", int), ("train_steps", int), ("train_warmup", int),
                      ("dates_per_batch", int), ("assets", str), ("plan_repeats", int), ("epoch_dates", int),
                      ("batch_samples", int), ("compile_warmup", int)):
        ap.add_argument("--" + key.replace("_", "-"), type=kind, default=None,
                        help=f"default {FULL[key]} ({QUICK[key]} with --quick)")
    ap.add_argument("--no-pandas", action="store_true", help="skip the pandas reference of the views case")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile against eager (train case)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: one per core)")
    ap.add_argument("--max-batch", type=int, default=20_000, help="largest training batch (samples) to run")
    ap.add_argument("--budget", type=float, default=120.0, help="seconds of timed runs per views case after the first")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds before a case is given up")
    ap.add_argument("--home", type=Path, default=None, help="workspace for the markets (default: a temporary one)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent, help="folder of RESULTS.md and results.json")
    ap.add_argument("--gpu", action="store_true", help="run the GPU check instead (RESULTS.md section 12)")
    ap.add_argument("--gpu-budget", type=float, default=480.0, help="seconds the GPU check may take (all cases)")
    ap.add_argument("--device", default=None, help="device of the GPU check (default: cuda; cpu with --quick)")
    args = ap.parse_args(argv)
    profile = QUICK if args.quick else FULL
    for key, value in profile.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.sizes, args.views_sizes, args.assets = _ints(args.sizes), _ints(args.views_sizes), _ints(args.assets)
    args.only = [k.strip() for k in args.only.split(",") if k.strip()]
    unknown = sorted(set(args.only) - set(KINDS))
    if unknown:
        ap.error(f"--only {','.join(unknown)}: expected some of {','.join(KINDS)}")
    return args


def run(args: argparse.Namespace, home: Path, console: Console) -> dict[str, Any]:
    """Every case the arguments ask for; returns the report that results.write takes."""
    only, y = set(args.only), args.years
    views_at = set(args.views_sizes if "views" in only else [])
    scaling_at = set(args.sizes if "scaling" in only else [])
    train_at = {args.train_size} if "train" in only else set()
    cases: dict[str, dict[int, dict[str, Any]]] = {k: {} for k in ("views_polars", "views_pandas", "train",
                                                                   "compile", "epoch")}
    notes: list[str] = []
    base = {"home": str(home), "years": y}

    def case(kind: str, n: int | None, target: str, **kw: Any) -> dict[str, Any]:
        with console.status(f"{kind} {'' if n is None else f'{n:,} tickers'} ..."):
            res = run_case(target, kw, args.timeout)
        console.print(f"{kind:13s} {'' if n is None else f'{n:>6,}'}  " + _headline(res))
        if n is not None:
            cases[kind][n] = res
        return res

    needed = sorted(views_at | scaling_at | train_at)
    if needed:
        case("markets", None, "benchmarks.views_bench:prepare_case", home=str(home), sizes=needed, years=y)
    for n in needed:
        timed = n in (views_at | scaling_at)  # else built once, for the training cases
        case("views_polars", n, "benchmarks.views_bench:polars_case", **base, tickers=n,
             repeats=args.repeats if timed else 1, warmup=args.warmup if timed else 0, budget_s=args.budget)
        if n in views_at and not args.no_pandas:
            case("views_pandas", n, "benchmarks.views_bench:pandas_case", **base, tickers=n, repeats=args.repeats,
                 warmup=args.warmup, budget_s=args.budget)
        if n in scaling_at:  # also times load_view_tensors (the scaling curve's tensors figures)
            case("epoch", n, "benchmarks.epoch_bench:epoch_case", **base, tickers=n, epoch_dates=args.epoch_dates,
                 batch_samples=args.batch_samples, warmup=args.train_warmup, load_repeats=args.repeats,
                 load_warmup=args.warmup, threads=args.threads)
        if n in train_at:
            dpb = _throughput_dpb(args, n, notes)
            case("train", n, "benchmarks.train_bench:train_case", **base, tickers=n, steps=args.train_steps,
                 warmup=args.train_warmup, dates_per_batch=dpb, threads=args.threads)
            if args.compile:
                case("compile", n, "benchmarks.compile_bench:compile_case", **base, tickers=n,
                     steps=args.train_steps, warmup=args.compile_warmup, dates_per_batch=dpb, threads=args.threads)
    if views_at and args.no_pandas:
        notes.append("the pandas reference was skipped (--no-pandas)")
    report: dict[str, Any] = {"cases": cases, "notes": notes}
    if "scaling" in only:
        report["scaling"] = scaling.curve(cases, args.sizes)
    if "planning" in only:
        report["planning"] = case("planning", None, "benchmarks.__main__:planning_case", assets=args.assets,
                                  repeats=args.plan_repeats, threads=args.threads)
    trained = [*cases["train"].values(), *cases["epoch"].values()]
    report["gpu_measured"] = any(c.get("device", "").startswith("cuda") for c in trained)
    return report


def _throughput_dpb(args: argparse.Namespace, n: int, notes: list[str]) -> int:
    """Dates per batch of the throughput case: --dates-per-batch, fewer when the batch exceeds --max-batch."""
    dpb = args.dates_per_batch
    if n * dpb > args.max_batch:
        dpb = max(1, args.max_batch // n)
        notes.append(f"the throughput case at {n:,} tickers used {dpb} dates per batch, not {args.dates_per_batch}: "
                     f"{args.dates_per_batch} x {n:,} samples exceeds --max-batch {args.max_batch:,} "
                     "(activation memory of this machine)")
    if dpb != DEFAULT_DPB:
        notes.append(f"the throughput case used {dpb} dates per batch: TrainConfig's default is {DEFAULT_DPB}")
    return dpb


def _headline(res: dict[str, Any]) -> str:
    if "error" in res:
        return f"[red]{res['error']}[/]"
    bits = [f"{res['timing']['median_s']:.2f} s"] if "timing" in res else []
    if "epoch_s" in res:
        bits.append(f"epoch {res['epoch_s']:.2f} s")
    if "samples_per_s" in res:
        bits.append(f"{res['samples_per_s']:,.0f} samples/s")
    if "eager" in res:
        bits.append(f"compiled {res.get('speedup', 0):.2f}x eager" if "speedup" in res else res["compiled"]["error"])
    bits.append(f"peak {res.get('peak_rss_mb', 0):,.0f} MiB, load {res.get('loadavg_end')}")
    return ", ".join(bits)


def gpu(args: argparse.Namespace, argv: list[str]) -> None:
    """The GPU check (benchmarks/gpu_suite.py); a clear error where the device is missing."""
    import torch

    from benchmarks import gpu_suite

    device = args.device or ("cpu" if args.quick else "cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("python -m benchmarks --gpu: no CUDA device here (torch sees none). The check measures a GPU; "
                 "`--gpu --quick` runs its tiny CPU mode.")
    gpu_suite.main(device, args.quick, args.gpu_budget, args.out, " ".join(["python -m benchmarks", *argv]))


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.gpu:
        gpu(args, sys.argv[1:] if argv is None else argv)
        return
    console = Console()
    host = machine()  # load average before any case
    home = args.home or Path(tempfile.mkdtemp(prefix="dynmix-bench-"))
    try:
        report = run(args, home, console)
    finally:
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)
    report |= {"machine": host, "command": " ".join(["python -m benchmarks", *(argv or sys.argv[1:])]),
               "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    js, md = results.write(report, args.out)
    console.print(f"wrote {md} and {js}")


if __name__ == "__main__":
    main()
