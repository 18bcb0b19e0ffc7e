"""`dynmix compare`: train objectives x seeds on the workspace's views with the same budget, score each run
(per-company means as in report.json, per-date scores by market regime) and summarise over seeds with a paired test
of every arm against VICReg with a static variance target.

An arm is an objective, for VICReg with its variance target: `vicreg:static` (also `vicreg`), `vicreg:market-vol`,
`vicreg:dispersion`, `sigreg`, `barlow`, `infonce`, `byol` (the other objectives keep the config's target where they
use one). Writes HOME/compare/compare.json
({arm: {score: {mean, sd, n, ci_lo, ci_hi[, diff, diff_sd, t, p]}}}), compare_runs.json (every seed's values, the
run ids and the settings) and compare.md. The default is small (5 arms, 3 seeds, 2 epochs); `full` trains every
arm for the config's epochs.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from dynmix.config import OBJECTIVES, VARIANCE_TARGETS, DynMIXConfig
from dynmix.errors import DynMIXError
from dynmix.evaluation.compare import markdown, overview, summarise
from dynmix.evaluation.regimes import MAX_DATES
from dynmix.evaluation.report import evaluate_run
from dynmix.io import write_json, write_text
from dynmix.runs.device import resolve_device
from dynmix.runs.rundir import RunDir
from dynmix.train.job import train
from dynmix.views.tensors import load_view_tensors
from dynmix.workspace import Workspace

BASELINE = "vicreg:static"
QUICK_ARMS = ("vicreg:static", "vicreg:market-vol", "barlow", "infonce", "byol")
ALL_ARMS = ("vicreg:static", "vicreg:market-vol", "vicreg:dispersion", "sigreg", "barlow", "infonce", "byol")
QUICK_EPOCHS = 2
# torch threads on a CPU: on the shared 2-core machine (2026-12-04, load 5-8) one epoch of vicreg on the embedded
# sample trained in 70 s with one thread against 190 s with torch's default two (which spin, 3x the CPU time).
# Another thread count sums in another order: the weights then differ in the last bits (max 0.015 after that epoch),
# not the scores to three decimals.
THREADS = 1
SECTOR_SCORES = ("knn_accuracy", "logreg_accuracy", "ari")
METHOD = "dynmix_implicit"  # the learned branch that never sees the sector
OVERVIEW = ("knn_accuracy", "ari", "spearman_future_corr", "pair_vol", "spearman_future_corr_calm",
            "spearman_future_corr_mid", "spearman_future_corr_stressed", "pair_vol_stressed", "precision_at_5_stressed",
            "train_seconds")  # the scores of compare.md's first table
REFERENCES = {"pca_loadings": "pca", "pearson": "pearson"}  # report.json's baselines shown beside the arms


def parse_arm(arm: str) -> tuple[str, str | None]:
    """(objective, variance target or None) of an arm name: `objective` or `objective:target`."""
    objective, _, target = arm.partition(":")
    if objective not in OBJECTIVES:
        raise DynMIXError(f"arm {arm!r}: unknown objective {objective!r}; expected one of {', '.join(OBJECTIVES)} "
                          f"(e.g. {', '.join(ALL_ARMS)})")
    if target and target not in VARIANCE_TARGETS:
        raise DynMIXError(f"arm {arm!r}: unknown variance target {target!r}; expected one of "
                          f"{', '.join(VARIANCE_TARGETS)}")
    if objective == "vicreg" and not target:
        target = "static"
    return objective, target or None


def arm_name(arm: str) -> str:
    """The arm's canonical name (`vicreg` -> `vicreg:static`)."""
    objective, target = parse_arm(arm)
    return f"{objective}:{target}" if target else objective


def arm_config(cfg: DynMIXConfig, arm: str, seed: int, epochs: int) -> DynMIXConfig:
    objective, target = parse_arm(arm)
    loss = replace(cfg.loss, objective=objective, variance_target=target or cfg.loss.variance_target)
    return replace(cfg, loss=loss, train=replace(cfg.train, seed=seed, epochs=epochs))


def _num(v: Any) -> float:
    return float("nan") if v is None else float(v)  # report.json writes NaN as null


def run_scores(report: dict[str, Any], method: str) -> dict[str, float]:
    """One run's flat scores: report.json's names for the per-company means, regime scores suffixed."""
    out: dict[str, float] = {}
    for section in ("sector", "similarity", "hedging"):
        values = report.get(section, {}).get(method) or {}
        for key, v in values.items():
            if section != "sector" or key in SECTOR_SCORES:
                out[key] = _num(v)
    regimes = report.get("regimes") or {}
    out |= {k: _num(v) for k, v in (regimes.get("scores", {}).get(method) or {}).items()}
    return out


def run_compare(ws: Workspace, cfg: DynMIXConfig, *, arms: tuple[str, ...] = QUICK_ARMS, seeds: int = 3,
                epochs: int | None = QUICK_EPOCHS, console: Console | None = None, threads: int = THREADS
                ) -> dict[str, Any]:
    """Train and score every arm x seed (seeds 0 .. seeds-1); write and return the summary.

    The views are read once for all runs, and the baselines' scores (PCA, correlation rows, random, Pearson;
    report.json's, also by regime) computed once and reused: each run's report.json is the same as `dynmix
    evaluate` writes. `threads`: torch's intra-op threads while training and embedding on a CPU (0: torch's own
    default); one thread by default, see `THREADS`.
    """
    if threads < 0:
        raise DynMIXError(f"--threads {threads}: expected 0 (torch's default) or a positive number of threads")
    device = resolve_device(cfg.train.device)
    n_before = torch.get_num_threads()
    if threads and device.type == "cpu":
        torch.set_num_threads(threads)
    try:
        return _run_compare(ws, cfg, arms, seeds, epochs, console or Console(highlight=False), device,
                            torch.get_num_threads() if device.type == "cpu" else None)
    finally:
        torch.set_num_threads(n_before)


def _run_compare(ws: Workspace, cfg: DynMIXConfig, arms: tuple[str, ...], seeds: int, epochs: int | None,
                 console: Console, device: torch.device, threads: int | None) -> dict[str, Any]:
    arms = tuple(dict.fromkeys(arm_name(a) for a in arms))
    if seeds < 1:
        raise DynMIXError(f"--seeds {seeds}: expected at least 1 (3 or more for an interval and a paired test)")
    if not (ws.views / "views.json").exists():
        raise DynMIXError(f"no views in {ws.views}: build them first (`dynmix views build`)")
    n_epochs = epochs or cfg.train.epochs
    per_seed: dict[str, dict[str, list[float]]] = {}
    runs: dict[str, list[str]] = {}
    regimes: dict[str, Any] = {}
    t_start = time.perf_counter()
    views = load_view_tensors(ws.views, device)  # once: every run trains on the same tensors
    shared: dict[Any, Any] = {}  # the baselines' scores, computed for the first run (evaluate_run's `shared`)
    out: dict[str, Any] = {}
    for seed in range(seeds):
        for arm in arms:
            t0 = time.perf_counter()
            tag = arm.replace(":", "-")
            run = train(ws, arm_config(cfg, arm, seed, n_epochs), run_name=f"cmp-{tag}-s{seed}", progress=False,
                        views=views)
            seconds = time.perf_counter() - t0
            report = evaluate_run(ws, run, shared=shared)
            regimes = report.get("regimes") or {}
            scores = run_scores(report, METHOD) | {"train_seconds": seconds}
            for key, v in scores.items():
                per_seed.setdefault(arm, {}).setdefault(key, [float("nan")] * seeds)[seed] = v
            for ref, name in REFERENCES.items():  # seed-free: from the first run's report
                per_seed.setdefault(ref, {k: [v] for k, v in run_scores(report, name).items()})
            runs.setdefault(arm, []).append(RunDir.of(run).name)
            console.print(f"{arm} seed {seed}: train {seconds:.0f} s, train + evaluate "
                          f"{time.perf_counter() - t0:.0f} s, ARI {scores.get('ari', float('nan')):.3f}, "
                          f"Spearman stressed {scores.get('spearman_future_corr_stressed', float('nan')):.3f}",
                          markup=False)
        # written after every seed, so that a comparison stopped part-way keeps its complete seeds
        out = _write(ws, arms, seeds, seed + 1, n_epochs, per_seed, runs, regimes, time.perf_counter() - t_start,
                     threads)
    console.print(f"comparison: {out['path'] / 'compare.md'}", markup=False)
    return out


def _write(ws: Workspace, arms: tuple[str, ...], seeds: int, done: int, n_epochs: int,
           per_seed: dict[str, dict[str, list[float]]], runs: dict[str, list[str]], regimes: dict[str, Any],
           total: float, threads: int | None = None) -> dict[str, Any]:
    """Summarise the seeds done so far (the seeds not run yet are NaN: n counts the finite ones) and write
    compare.json, compare_runs.json and compare.md.
    """
    summary = summarise(per_seed, BASELINE if BASELINE in arms else None)
    out_dir = ws.home / "compare"
    meta = {"arms": list(arms), "seeds": seeds, "seeds_done": done, "epochs": n_epochs, "baseline": BASELINE,
            "method": METHOD, "regime_dates": regimes.get("n_dates"), "regime_thresholds": regimes.get("thresholds"),
            "total_seconds": total, "torch_threads": threads,
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    write_json(summary, out_dir / "compare.json")
    write_json({"settings": meta, "per_seed": per_seed, "runs": runs}, out_dir / "compare_runs.json")
    names = [s for s in next(iter(summary.values())) if s != "train_seconds"] + ["train_seconds"]
    partial = "" if done == seeds else f" (seeds done so far: {done} of {seeds})"
    head = (f"# Comparison: {len(arms)} arms x {seeds} seeds{partial}, {n_epochs} epochs ({METHOD}; per-company "
            f"means, then per-date scores by regime)\n\nmean ± sd over seeds, 95 % bootstrap interval of the mean, "
            f"paired difference vs {BASELINE} and its two-sided paired t-test p (seeds paired). Regime test dates: "
            f"{regimes.get('n_dates')} (at most {MAX_DATES} per regime scored). "
            f"Total {total:.0f} s.\n\n")
    main = [s for s in OVERVIEW if any(s in v for v in summary.values())]
    head += (f"## Overview (mean ± sd over seeds; * paired p < 0.05 vs {BASELINE})\n\n"
             f"{overview(summary, main, BASELINE)}\n## Every score\n\n")
    write_text(head + markdown(summary, names, BASELINE), out_dir / "compare.md")
    return {"summary": summary, "settings": meta, "path": Path(out_dir)}
