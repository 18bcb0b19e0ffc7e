"""Timing and peak memory of one benchmark case, each in a fresh child process.

`run_case("benchmarks.views_bench:polars_case", {...})` starts `python -m benchmarks.harness TARGET ARGS OUT`;
the child imports the case function, calls it with ARGS (JSON) and writes its dict of figures to OUT, adding
its peak resident memory (`ru_maxrss`, so the peak of this case alone), the memory right after its imports,
and the load average. Case functions time their own work with `measure`: the median of several runs after a
warm-up, wall-clock and process CPU time (CPU time is less inflated on a shared machine), with the load
average beside every figure so contention stays visible.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]  # the checkout: children run from here


def loadavg() -> list[float]:
    """1, 5 and 15-minute load averages (runnable processes; compare with the core count)."""
    return [round(x, 2) for x in os.getloadavg()]


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def measure(fn: Callable[[], Any], repeats: int = 3, warmup: int = 1, budget_s: float | None = None) -> dict[str, Any]:
    """Run `fn` `warmup` times untimed, then `repeats` timed runs (at least one; fewer once `budget_s` is spent).

    Returns median/min/max wall seconds, the median process CPU seconds, every run, and the load averages.
    """
    before = loadavg()
    for _ in range(warmup):
        fn()
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(max(1, repeats)):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        if budget_s is not None and sum(wall) > budget_s:
            break
    return {
        "median_s": statistics.median(wall), "min_s": min(wall), "max_s": max(wall),
        "median_cpu_s": statistics.median(cpu), "runs": len(wall), "warmup": warmup,
        "wall_s": [round(w, 4) for w in wall], "cpu_s": [round(c, 4) for c in cpu],
        "loadavg_before": before, "loadavg_after": loadavg(),
    }


def machine() -> dict[str, Any]:
    """The machine and software the figures were taken on (no torch import: the parent stays light)."""
    versions: dict[str, str | None] = {}
    for pkg in ("numpy", "polars", "pandas", "pyarrow", "torch"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "date": dt.date.today().isoformat(), "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "memory_gib": round(mem / 2**30, 1), "python": platform.python_version(), "versions": versions,
        "loadavg": loadavg(),
    }


def run_case(target: str, args: dict[str, Any], timeout_s: float = 1800.0) -> dict[str, Any]:
    """Run the case `module:function` with `args` in a fresh Python process; its figures, or an `error`."""
    fd, name = tempfile.mkstemp(prefix="dynmix-bench-", suffix=".json")
    os.close(fd)
    out = Path(name)
    cmd = [sys.executable, "-m", "benchmarks.harness", target, json.dumps(args), str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    head: dict[str, Any] = {"case": target, "args": args, "loadavg_start": loadavg()}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return head | {"error": f"not measured: timed out after {timeout_s:.0f} s"}
    head["process_s"] = round(time.perf_counter() - t0, 2)
    try:
        if proc.returncode != 0:
            why = "killed by SIGKILL (out of memory?)" if proc.returncode == -9 else f"exit {proc.returncode}"
            tail = "\n".join(proc.stderr.strip().splitlines()[-6:])
            return head | {"error": f"failed: {why}: {tail}"}
        return head | json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)


def _child(target: str, args_json: str, out: str) -> None:
    module, name = target.split(":")
    fn = getattr(importlib.import_module(module), name)
    baseline = peak_rss_mb()
    result = fn(**json.loads(args_json))
    result |= {"baseline_rss_mb": baseline, "peak_rss_mb": peak_rss_mb(), "loadavg_end": loadavg()}
    Path(out).write_text(json.dumps(result))


if __name__ == "__main__":
    _child(*sys.argv[1:4])
