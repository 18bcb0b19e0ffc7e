"""Planner designs side by side on one run's walk-forward: `python -m benchmarks.planning_designs --home WS
[--run latest] [--designs baseline,simple,shrunk] [--costs 0,10,25] [--reps 1000] [--out FILE]`.

Each design is the run's [plan] config with a few fields replaced (DESIGNS); every design is judged on the same
test period, costs and bootstrap seed as `dynmix plan`, nothing is written to the run. The designs are fixed
here in advance; none is chosen by its test-period result. Writes benchmarks/out/planning_designs.json (one
entry per design: the planning section) and prints Sharpe, vol, turnover and p per strategy and cost level.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "out" / "planning_designs.json"

# name -> PlanConfig fields replaced on the run's [plan]; `raw_log` is the planner before 2026-12-03's input fix
DESIGNS: dict[str, dict[str, Any]] = {
    "simple": {"shrink_mu": False},  # μ̂, Σ̂ in simple returns, μ̂ as the model says
    "shrunk": {"shrink_mu": True},  # ... and μ̂ replaced by its skill-scaled alpha (the default)
    "min_risk": {"objective": "min_risk"},  # μ̂ unused: risk and costs only
    "min_risk_budget": {"objective": "min_risk", "turnover_budget": 0.05},  # and at most 5 % traded per day
    "target_vol": {"objective": "target_vol", "target_vol": 0.12},  # hold 12 % a year
    "capped": {"max_weight": 0.10},  # shrunk mean-variance, no weight above 10 %
    "cold": {"warm_start": False},  # shrunk mean-variance without the warm start
    "no_hold_check": {"hold_check": False},  # the sampled plan even when holding costs less by its own measure
    "seed1": {"seed": 1},  # the default with another sampling seed: how much of a figure is the planner's noise
    "seed2": {"seed": 2},
}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from dynmix.planning.service import run_plan
    from dynmix.runs.rundir import RunDir
    from dynmix.workspace import Workspace

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", required=True, type=Path)
    ap.add_argument("--run", default="latest")
    ap.add_argument("--designs", default=",".join(DESIGNS))
    ap.add_argument("--costs", default="0,10,25")
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    ws = Workspace(args.home)
    rd = RunDir.resolve(ws, args.run)
    from dynmix.config import load_config

    base = load_config(rd.config_path).plan
    costs = tuple(float(c) for c in args.costs.split(",") if c)
    out: dict[str, Any] = {"run": rd.name, "machine": platform.platform(), "date": time.strftime("%Y-%m-%d"),
                           "designs": {}}
    for name in args.designs.split(","):
        if name not in DESIGNS:
            raise SystemExit(f"unknown design {name!r}; expected some of {', '.join(DESIGNS)}")
        t0 = time.perf_counter()
        res = run_plan(ws, rd, progress=False, costs_bps=costs, reps=args.reps,
                       plan=replace(base, **DESIGNS[name]), write=False)
        out["designs"][name] = {"fields": DESIGNS[name], "seconds": time.perf_counter() - t0, **res}
        section = res["planning"]
        print(f"== {name} {DESIGNS[name]} ({out['designs'][name]['seconds']:.0f} s)", flush=True)
        for level, table in section["by_cost"].items():
            for strategy in ("world_mpc", "world_hierarchical", "sample_mpc", "equal_weight"):
                r = table[strategy]
                print(f"  {level:>3} bps {strategy:18s} sharpe {r['sharpe']:.3f} [{r['sharpe_lo']:.2f}, "
                      f"{r['sharpe_hi']:.2f}] vol {r['ann_vol']:.3f} turnover {r['turnover']:.2f} "
                      f"p {r.get('p', float('nan')):.2f}", flush=True)
        print(f"  skill {section['skill']}  ms/plan {section['ms_per_plan']}", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1, default=str))
    return out


if __name__ == "__main__":
    main()
