"""Write the benchmark results: results.json (every raw figure) and RESULTS.md (tables).

Every table row carries the load average seen by its case, so figures taken on a busy machine read as such.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.scaling import QUANTITIES

NO_GPU = "not measured: no GPU available to this task"
NO_MULTI_GPU = ("not measured: no multi-GPU machine available. The DDP path (gloo on CPU) is exercised by "
                "tests/losses/test_distributed.py and tests/train.")


def _f(x: Any, digits: int = 2) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return f"{x:,}"


def _load(case: dict[str, Any]) -> str:
    load = case.get("loadavg_end") or case.get("loadavg_start")
    return " / ".join(f"{v:.1f}" for v in load) if load else "—"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |" for r in rows), ""]


def views_rows(polars: dict[int, dict[str, Any]], pandas: dict[int, dict[str, Any]], years: float) -> list[list[str]]:
    rows = []
    for n, pd_case in sorted(pandas.items()):
        pl_case = polars.get(n, {})
        if "error" in pl_case or "error" in pd_case:
            rows.append([f"{n:,} x {years:g} y", pl_case.get("error", ""), "", "", pd_case.get("error", ""),
                         "", "", "", "", _load(pd_case)])
            continue
        pl_s = pl_case["timing"]["median_s"]
        measured_on = pd_case["n_tickers"]
        pd_s = pd_case["timing"]["median_s"] * n / measured_on
        pd_cpu = pd_case["timing"]["median_cpu_s"] * n / measured_on
        subset = f"pandas time measured on {measured_on:,} tickers, x({n:,}/{measured_on:,})"
        label = "" if measured_on == n else f" ({subset})"
        rows.append([
            f"{n:,} x {years:g} y", f"{_f(pl_s)} ({pl_case['timing']['runs']} runs)",
            _f(pl_case["timing"]["median_cpu_s"]),
            _f(pl_case["peak_rss_mb"], 0), f"{_f(pd_s)}{label}", _f(pd_cpu), _f(pd_case["peak_rss_mb"], 0)
            + ("" if measured_on == n else f" (on {measured_on:,} tickers)"),
            f"{pd_s / pl_s:.1f}x ({pd_cpu / pl_case['timing']['median_cpu_s']:.1f}x)",
            f"{pl_case['n_tickers']:,} x {pl_case['n_dates']:,}",
            f"{_load(pl_case)}; {_load(pd_case)}",
        ])
    return rows


def train_rows(train: dict[int, dict[str, Any]]) -> list[list[str]]:
    rows = []
    for n, c in sorted(train.items()):
        if "error" in c:
            rows.append([f"{n:,}", c["error"], *[""] * 10, _load(c)])
            continue
        rows.append([
            f"{n:,}", f"{c['device']} ({c['threads']} threads)", str(c["dates_per_batch"]),
            _f(c["batch_samples_mean"], 0), _f(c["samples_per_s"], 0), _f(c["full_step_s"]["median"], 3),
            _f(c["model_step_s"]["median"], 3), _f(1e3 * c["sampler_s"]["median"], 1),
            _f(1e3 * c["gather_s"]["median"], 1),
            f"{100 * c['outside_model_share_parts']:.1f} % ({100 * c['outside_model_share']:.1f} %)",
            f"{c['steps_per_epoch']:,} x {_f(c['full_step_s']['mean'], 2)} = {_f(c['epoch_s_estimate'], 0)} (estimate)",
            _f(c["peak_rss_mb"], 0), _load(c),
        ])
    return rows


def scaling_rows(curve: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    points = [[f"{p['tickers']:,}", *(_f(p[q], 2 if q.endswith("_s") or q.endswith("estimate") else 0)
                                      for q in QUANTITIES), _f(p["dates_per_batch"])] for p in curve["points"]]
    fits = [[q, _f(f["slope"]), f["verdict"]] for q, f in curve["fits"].items()]
    return points, fits


def planning_rows(planning: dict[str, Any]) -> list[list[str]]:
    if "error" in planning:
        return [[planning["error"], *[""] * 6]]
    return [[r["device"], str(r["threads"]), f"{r['assets']:,}", _f(r["median_ms"], 1), _f(r["min_ms"], 1),
             _f(r["median_cpu_ms"], 1), _load(planning)] for r in planning["results"]]


def markdown(report: dict[str, Any]) -> str:
    m, a, cases = report["machine"], report["args"], report["cases"]
    years = a["years"]
    lines = [
        "# DynMIX benchmarks", "",
        f"Taken {m['date']} on {m['processor']}, {m['cpu_count']} cores, {m['memory_gib']} GiB, {m['platform']}; "
        f"python {m['python']}, " + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v) + ".",
        f"Command: `{report['command']}`. Load average (1/5/15 min) at the start: {m['loadavg']}; every row shows "
        f"the load its case saw (on {m['cpu_count']} cores, a load above that means the timings are inflated by "
        "other work on the machine). Times are medians after a warm-up; peak memory is the peak RSS of the case's "
        "own fresh process. Raw figures: results.json.", "",
    ]
    if cases.get("views_pandas"):
        lines += ["## 1. Views build: polars pipeline vs the pandas reference", ""]
        lines += _table(["market", "polars s", "polars CPU s", "polars peak MiB", "pandas s", "pandas CPU s",
                         "pandas peak MiB", "speed-up wall (CPU)", "N x T", "load (polars; pandas)"],
                        views_rows(cases["views_polars"], cases["views_pandas"], years))
    if cases.get("train"):
        lines += ["## 2. Training throughput (ModelConfig defaults)", "",
                  "Full step = sampler + index gathers + model/loss/backward/optimiser; model step = the same "
                  "batches gathered beforehand. Epoch time is an ESTIMATE: steps/epoch x mean measured step.", ""]
        lines += _table(["tickers", "device", "dates/batch", "B", "samples/s", "full step s", "model step s",
                         "sampler ms", "gathers ms", "outside model: parts (1 - model/full)", "epoch s", "peak MiB",
                         "load"],
                        train_rows(cases["train"]))
        lines += [f"GPU: {NO_GPU}." if not report.get("gpu_measured") else "", ""]
    if report.get("scaling"):
        points, fits = scaling_rows(report["scaling"])
        lines += [f"## 3. Scaling ({years:g} years of history)", ""]
        lines += _table(["tickers", *QUANTITIES, "dates/batch"], points)
        lines += ["Log-log slope of each quantity against N (1 = linear):", ""]
        lines += _table(["quantity", "slope", "growth"], fits)
    if report.get("planning"):
        lines += ["## 4. Planning: ms per PortfolioMPC.plan (S=512, 6 iterations, H=5)", ""]
        lines += _table(["device", "threads", "assets", "median ms", "min ms", "median CPU ms", "load"],
                        planning_rows(report["planning"]))
    lines += ["## 5. Several GPUs", "", NO_MULTI_GPU, ""]
    lines += [f"Notes: {n}" for n in report.get("notes", [])]
    return "\n".join(lines).rstrip() + "\n"


def write(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write results.json and RESULTS.md under `out_dir`; returns their paths."""
    from dynmix.io import write_json, write_text

    out_dir.mkdir(parents=True, exist_ok=True)
    js, md = out_dir / "results.json", out_dir / "RESULTS.md"
    cases = {kind: {str(n): c for n, c in by_n.items()} for kind, by_n in report["cases"].items()}
    write_json(json.loads(json.dumps({**report, "cases": cases}, default=str)), js)
    write_text(markdown(report), md)
    return js, md
