"""`python -m benchmarks --gpu`: every GPU figure of the scale work in one run, written to RESULTS.md section 12.

Cases, each in a fresh process (benchmarks/harness.py), in this order, until `--gpu-budget` seconds are spent (a
case that would start later is reported as not run):

    eager          benchmarks.gpu_check at 500 and 5,000 companies x 25 y: samples/s, the share of a step outside the
                   model, peak GPU memory, the export rate; two whole epochs at 500 (~3.1 M samples each)
    plans          ms per PortfolioMPC.plan at 500 and 2,000 assets, eager and `plan.compile` (CUDA graphs)
    torch.compile  the same as eager through torch.compile (`train.compile`); the warm-up and the first epoch hold
                   compiles
    CUDA graphs    torch.compile(mode="reduce-overhead") at 500: CUDA graphs, recorded per batch shape

Raw figures go to OUT/gpu/DATE-check.json; the section between its markers in OUT/RESULTS.md is replaced (or
appended), the rest of the file kept. `--quick` is the tiny CPU mode of the tests: a small model and market, the
compiled case traced with torch.compile's eager backend, no CUDA graphs and no compiled plans (those need minutes of
compilation on a CPU; tests/planning covers `plan.compile`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import textwrap
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks.harness import run_case

BEGIN = "<!-- gpu-check: written by `python -m benchmarks --gpu`; edits here are replaced by its next run -->"
END = "<!-- /gpu-check -->"
TITLE = "## 12. GPU check (`python -m benchmarks --gpu`)"
EPOCH_AIM_S, OUTSIDE_AIM, PLAN_AIM_MS = 5.0, 0.10, 5.0  # issue 17's aims at 500 companies / assets
CHECK = "benchmarks.gpu_check:check_case"
SETUP = ("Random view tensors of the default views' shapes (26 explicit features, 10 of them sector columns kept per "
         "company; 14 implicit channels; 60-day windows; every company alive every day), the default model, VICReg "
         "with the market-vol target, AdamW; the real sampler with the automatic batch cap (16 dates a batch). Step "
         "= median of the timed steps after the warm-up (the warm-up holds compiles); *outside* = drawing and "
         "gathering the batch over (that + the step); *epochs* = every date once each, the sampler included (the "
         "first compiled epoch also recompiles for the epoch's last, smaller batch).")
PLANS = "benchmarks.planning:device_case"


def cases(device: str, quick: bool) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, target, arguments) of every case, in running order."""
    if quick:
        base: dict[str, Any] = dict(companies=[40], years=0.5, device=device, steps=2, warmup=1, embed_dates=4,
                                    epochs=1, epoch_companies=[40], tiny=True)
        return [("eager", CHECK, base),
                ("plans", PLANS, dict(assets=[20], repeats=2, device=device, compiled=[False])),
                ("torch.compile", CHECK, base | dict(compile_model=True, backend="eager"))]
    base = dict(companies=[500, 5000], years=25.0, device=device, steps=10, warmup=3, embed_dates=64, epochs=2,
                epoch_companies=[500])
    return [("eager", CHECK, base),  # the cheap cases first: a spent budget cuts the compiled ones
            ("plans", PLANS, dict(assets=[500, 2000], repeats=7, device=device, compiled=[False, True])),
            ("torch.compile", CHECK, base | dict(compile_model=True, warmup=5)),
            ("CUDA graphs", CHECK, base | dict(companies=[500], compile_model=True, mode="reduce-overhead",
                                               warmup=5))]


def run(device: str, quick: bool, budget_s: float, console: Console) -> dict[str, Any]:
    """Every case within `budget_s` seconds; the report that `section` renders."""
    t0, done = time.perf_counter(), []
    for label, target, kwargs in cases(device, quick):
        left = budget_s - (time.perf_counter() - t0)
        if left < 10:
            done.append({"label": label, "error": f"not run: the {budget_s:.0f} s budget was spent"})
            continue
        with console.status(f"gpu check: {label} ..."):
            res = run_case(target, kwargs, timeout_s=left)
        done.append({"label": label} | res)
        console.print(f"{label:14s} {res.get('error') or 'done'} ({res.get('process_s', '?')} s)")
    first = next((c for c in done if "device_name" in c), {})
    return {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "device": device,
            "device_name": first.get("device_name", device), "torch": first.get("torch"), "cpu_count": os.cpu_count(),
            "quick": quick, "budget_s": budget_s, "wall_s": round(time.perf_counter() - t0, 1), "cases": done}


def _f(x: float | None, fmt: str) -> str:
    return "—" if x is None else format(x, fmt)


def _check_rows(report: dict[str, Any]) -> list[list[str]]:
    rows = []
    for case in report["cases"]:
        if case["label"] == "plans":
            continue
        if "error" in case:
            rows.append([case["label"], "—", case["error"], *["—"] * 6])
            continue
        for c in case["checks"]:
            if "error" in c:
                rows.append([case["label"], f"{c['companies']:,}", c["error"], *["—"] * 6])
                continue
            epochs = ", ".join(f"{e:.2f}" for e in c.get("epoch_s", [])) or "not run"
            if "epoch_samples" in c:
                epochs += f" ({c['epoch_samples']:,} samples, {c['epoch_steps']} steps)"
            rows.append([case["label"], f"{c['companies']:,}", c["mode"], _f(1e3 * c["median_step_s"], ".1f"),
                         _f(c["samples_per_s"], ",.0f"), f"{100 * c['outside_model_share']:.1f} %",
                         _f(c["peak_device_mib"], ",.0f"), _f(c["embed_rows_per_s"], ",.0f"), epochs])
    return rows


def _plan_rows(report: dict[str, Any]) -> list[list[str]]:
    rows = []
    for case in report["cases"]:
        if case["label"] != "plans":
            continue
        if "error" in case:
            return [[case["error"], *["—"] * 5]]
        for r in case["results"]:
            mode = "plan.compile" if r["compiled"] else "eager"
            if "error" in r:
                rows.append([f"{r['assets']:,}", mode, r["error"], "—", "—", "—"])
                continue
            rows.append([f"{r['assets']:,}", mode, f"{r['median_ms']:.2f}", f"{r['min_ms']:.2f}-{r['max_ms']:.2f}",
                         f"{r['median_cpu_ms']:.2f}", f"{r['warmup_s']:.1f}"])
    return rows


def aims(report: dict[str, Any]) -> list[str]:
    """The issue's GPU aims read off the figures at 500 companies / assets: met, not met, or not measured."""
    if report["quick"]:
        return ["- Not read off a smoke run."]
    checks = [c for case in report["cases"] for c in case.get("checks", []) if "error" not in c
              and c["companies"] == 500]
    epochs = [(min(c["epoch_s"]), c["mode"]) for c in checks if c.get("epoch_s")]
    outside = [c["outside_model_share"] for c in checks]
    plans = [(r["median_ms"], "plan.compile" if r["compiled"] else "eager") for case in report["cases"]
             for r in case.get("results", []) if "error" not in r and r["assets"] == 500]

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    lines = []
    if epochs:
        best, how = min(epochs)
        lines.append(f"- Epoch over 500 x 25 y <= {EPOCH_AIM_S:g} s: {verdict(best <= EPOCH_AIM_S)} "
                     f"(fastest epoch {best:.2f} s, {how}).")
    if outside:
        lines.append(f"- <= {100 * OUTSIDE_AIM:g} % of a step outside the model: "
                     f"{verdict(max(outside) <= OUTSIDE_AIM)} (largest {100 * max(outside):.1f} %).")
    if plans:
        best_ms, how = min(plans)
        lines.append(f"- <= {PLAN_AIM_MS:g} ms per plan at 500 assets: {verdict(best_ms <= PLAN_AIM_MS)} "
                     f"({best_ms:.2f} ms, {how}).")
    return lines or ["- Nothing measured."]


def section(report: dict[str, Any], command: str, raw: str) -> list[str]:
    """RESULTS.md section 12, between its markers; `raw`: where the JSON lies."""
    r = report
    head = (f"Taken {r['date']} on {r['device_name']} ({r['device']}), {r['cpu_count']} CPU cores, torch "
            f"{r['torch']}; `{command}` in {r['wall_s']:.0f} s of a {r['budget_s']:.0f} s budget. Raw figures: "
            f"{raw}.")
    if r["quick"]:
        head += " **A tiny smoke run (`--quick`): not a GPU figure.**"
    repeats = next((c["args"]["repeats"] for c in r["cases"] if c["label"] == "plans" and "args" in c), "?")
    lines = [BEGIN, TITLE, "", *_wrap(head), "",
             *_wrap(SETUP), ""]
    lines += _table(["case", "companies", "mode", "step ms", "samples/s", "outside the model", "peak GPU MiB",
                     "export company-days/s", "epochs s"], _check_rows(r))
    lines += [*_wrap(f"PortfolioMPC.plan (S = 512, 6 iterations, H = 5, k = 5, long-only; median of {repeats} after a "
                     "warm-up that holds the compile): eager, and `plan.compile = true` (torch.compile of the "
                     "iterations; CUDA graphs on a GPU)."), ""]
    lines += _table(["assets", "plan", "median ms", "range ms", "CPU ms", "warm-up s"], _plan_rows(r))
    lines += ["**Aims** (issue 17, at 500 companies / assets):", "", *aims(r), "", END]
    return lines


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, 118, break_on_hyphens=False, break_long_words=False)


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(x) + " |" for x in rows), ""]


def write(report: dict[str, Any], out_dir: Path, command: str) -> tuple[Path, Path]:
    """OUT/gpu/DATE-check.json and section 12 of OUT/RESULTS.md (replaced between its markers, else appended)."""
    from dynmix.io import write_json, write_text

    js = out_dir / "gpu" / f"{report['date'][:10]}-check{'-quick' if report['quick'] else ''}.json"
    js.parent.mkdir(parents=True, exist_ok=True)
    write_json(report | {"command": command}, js)
    md = out_dir / "RESULTS.md"
    text = md.read_text() if md.exists() else "# DynMIX benchmarks\n"
    block = "\n".join(section(report, command, os.path.relpath(js)))
    if BEGIN in text and END in text:
        before, rest = text.split(BEGIN, 1)
        text = before + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    write_text(text, md)
    return js, md


def main(device: str, quick: bool, budget_s: float, out_dir: Path, command: str) -> dict[str, Any]:
    console = Console()
    report = run(device, quick, budget_s, console)
    js, md = write(report, out_dir, command)
    console.print(f"wrote {md} (section 12) and {js}")
    return json.loads(js.read_text())
