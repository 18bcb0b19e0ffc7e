"""The user's commands, each timed in a fresh process: wall time, CPU time and peak resident memory.

    python -m benchmarks.commands --home H -- views build --no-progress
    python -m benchmarks.commands --home H --label "train smoke" -- train --max-steps 3 --device cpu --no-progress

Runs `dynmix --home HOME ARGS` (the console script's entry point, `dynmix.cli.main`) in a child process (cold
start: the imports are timed too), reads the child's peak RSS from `getrusage(RUSAGE_CHILDREN)` of a wrapper
process that runs only that child, and appends one row to benchmarks/commands.json; RESULTS.md shows those
rows (section 6).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.harness import ROOT, loadavg

OUT = Path(__file__).parent / "commands.json"
_WRAPPER = """
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
proc = subprocess.run(json.loads(sys.argv[1]), capture_output=True, text=True)
wall = time.perf_counter() - t0
use = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": proc.returncode, "wall_s": wall, "cpu_s": use.ru_utime + use.ru_stime,
                  "peak_rss_mb": use.ru_maxrss / 1024, "tail": (proc.stdout + proc.stderr)[-2000:]}))
"""


def measure_command(home: Path, args: list[str], timeout_s: float = 3600.0) -> dict[str, Any]:
    """Run `dynmix --home HOME ARGS` in a fresh process; its wall/CPU seconds, peak RSS (MiB) and output tail."""
    cmd = [sys.executable, "-c", "from dynmix.cli import main; main()", "--home", str(home), *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    before = loadavg()
    out = subprocess.run([sys.executable, "-c", _WRAPPER, json.dumps(cmd)], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=timeout_s, check=True)
    res: dict[str, Any] = json.loads(out.stdout)
    return res | {"loadavg_before": before, "loadavg_after": loadavg()}


def rows_markdown(rows: list[dict[str, Any]]) -> list[str]:
    """Section 6 of RESULTS.md: one line per measured command."""
    if not rows:
        return []
    lines = ["## 6. Commands as the user runs them", "",
             "Each in a fresh process (cold start, imports included), `python -m benchmarks.commands` (rows noted "
             "`/usr/bin/time -v` were measured with it); peak RSS of the command's process. Load average (1/5/15 "
             "min) before and after; on 2 cores shared with other jobs a load above 2 inflates the times.", "",
             "| date | command | market | wall s | CPU s | peak MiB | exit | load before; after | note |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lb, la = (" / ".join(f"{x:.1f}" for x in r[k]) for k in ("loadavg_before", "loadavg_after"))
        lines.append(f"| {r['date']} | `dynmix {' '.join(r['args'])}` | {r['market']} | {r['wall_s']:.1f} | "
                     f"{r['cpu_s']:.1f} | {r['peak_rss_mb']:,.0f} | {r['rc']} | {lb}; {la} | {r.get('note', '')} |")
    return [*lines, ""]


def read_rows(path: Path = OUT) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text())) if path.exists() else []


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.commands", description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, required=True, help="the workspace (a market from views_bench.prepare_case)")
    ap.add_argument("--market", default="", help="what the workspace holds, e.g. '5,000 x 25 y'")
    ap.add_argument("--note", default="", help="a note for the row")
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("args", nargs=argparse.REMAINDER, help="-- then the dynmix arguments")
    a = ap.parse_args(argv)
    args = a.args[1:] if a.args[:1] == ["--"] else a.args
    res = measure_command(a.home, args, a.timeout)
    row = {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"), "args": args, "market": a.market,
           "note": a.note, **{k: v for k, v in res.items() if k != "tail"}}
    from dynmix.io import write_json

    write_json([*read_rows(), row], OUT)
    print(json.dumps(row), "\n", res["tail"][-600:])


if __name__ == "__main__":
    main()
