"""Write the benchmark results: results.json (every raw figure) and RESULTS.md (tables).

Every table row carries the load average seen by its case, so figures taken on a busy machine read as such.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.commands import read_rows, rows_markdown
from benchmarks.scaling import QUANTITIES

KEPT = "\n## 7. "  # where the sections of other commands begin
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


def views_rows(polars: dict[int, dict[str, Any]], pandas: dict[int, dict[str, Any]], sizes: list[int],
               years: float) -> list[list[str]]:
    """One row per --views-sizes market: polars and pandas, each measured at that size (or why not)."""
    rows = []
    for n in sorted(sizes):
        pl_case = polars.get(n, {"error": "not measured"})
        pd_case = pandas.get(n, {"error": "not measured (--no-pandas)"})
        pl_ok, pd_ok = "error" not in pl_case, "error" not in pd_case
        pl_t, pd_t = pl_case.get("timing", {}), pd_case.get("timing", {})
        speedup = "—"
        if pl_ok and pd_ok:
            speedup = f"{pd_t['median_s'] / pl_t['median_s']:.1f}x ({pd_t['median_cpu_s'] / pl_t['median_cpu_s']:.1f}x)"
        rows.append([
            f"{n:,} x {years:g} y",
            f"{_f(pl_t['median_s'])} ({pl_t['runs']} runs)" if pl_ok else pl_case["error"],
            _f(pl_t.get("median_cpu_s")), _f(pl_case.get("peak_rss_mb"), 0),
            f"{_f(pd_t['median_s'])} ({pd_t['runs']} runs)" if pd_ok else pd_case["error"],
            _f(pd_t.get("median_cpu_s")), _f(pd_case.get("peak_rss_mb"), 0), speedup,
            f"{pl_case['n_tickers']:,} x {pl_case['n_dates']:,}" if pl_ok else "—",
            f"{_load(pl_case)}; {_load(pd_case)}",
        ])
    return rows


def train_rows(train: dict[int, dict[str, Any]]) -> list[list[str]]:
    rows = []
    for n, c in sorted(train.items()):
        if "error" in c:
            rows.append([f"{n:,}", c["error"], *[""] * 9, _load(c)])
            continue
        rows.append([
            f"{n:,}", f"{c['device']} ({c['threads']} threads)", str(c["dates_per_batch"]),
            _f(c["batch_samples_mean"], 0), _f(c["samples_per_s"], 0), _f(c["full_step_s"]["median"], 3),
            _f(c["model_step_s"]["median"], 3), _f(1e3 * c["sampler_s"]["median"], 1),
            _f(1e3 * c["gather_s"]["median"], 1),
            f"{100 * c['outside_model_share_parts']:.1f} % ({100 * c['outside_model_share']:.1f} %)",
            _f(c["peak_rss_mb"], 0), _load(c),
        ])
    return rows


def compile_rows(compiled: dict[int, dict[str, Any]]) -> list[list[str]]:
    """Eager and torch.compile rows per size: samples/s, median step, warm-up (compilation) seconds."""
    rows = []
    for n, c in sorted(compiled.items()):
        if "error" in c:
            rows.append([f"{n:,}", "—", c["error"], *[""] * 5, _load(c)])
            continue
        head = [f"{n:,}", f"{c['device']} ({c['threads']} threads)"]
        e, k = c["eager"], c["compiled"]
        rows.append([*head, "eager", _f(e["samples_per_s"], 0), _f(e["step_s"]["median"], 3),
                     f"{_f(e['warmup_s'], 1)} ({c['warmup_steps']} steps)", "1.00x", "—", _load(c)])
        if "error" in k:
            rows.append([*head, "torch.compile", k["error"], "", "", "not measured", "—", _load(c)])
        else:
            rows.append([*head, "torch.compile", _f(k["samples_per_s"], 0), _f(k["step_s"]["median"], 3),
                         f"{_f(k['warmup_s'], 1)} ({c['warmup_steps']} steps; compile ~{_f(c['compile_s'], 1)})",
                         f"{c['speedup']:.2f}x", str(k["recompiles_in_timed_steps"]), _load(c)])
    return rows


def scaling_rows(curve: dict[str, Any], epoch: dict[int, dict[str, Any]]) -> tuple[list[list[str]], list[list[str]]]:
    points = []
    for p in curve["points"]:
        span = "—" if p["epoch_dates"] is None else (
            f"{p['epoch_dates']:,} dates in {p['steps']:,} steps of <= {p['dates_per_batch']} dates "
            f"(B {_f(p['batch_samples_mean'], 0)}; {p['samples']:,} samples)")
        points.append([f"{p['tickers']:,}", *(_f(p[q], 2 if unit == "s" else 0) for q, (_k, _p, unit)
                                              in QUANTITIES.items()),
                       _f(p["samples_per_s"], 0), p["error"] or span, _load(epoch.get(p["tickers"], {}))])
    fits = [[q, _f(f["slope"]), f["verdict"]] for q, f in curve["fits"].items()]
    return points, fits


def planning_rows(planning: dict[str, Any]) -> list[list[str]]:
    if "error" in planning:
        return [[planning["error"], *[""] * 6]]
    return [[r["device"], str(r["threads"]), f"{r['assets']:,}", _f(r["median_ms"], 1), _f(r["min_ms"], 1),
             _f(r["median_cpu_ms"], 1), _load(planning)] for r in planning["results"]]


def compile_section(compiled: dict[int, dict[str, Any]], gpu: bool) -> list[str]:
    lines = ["### torch.compile and CUDA graphs", ""]
    if compiled:
        lines += ["Eager and `torch.compile` (the `train.compile` flag) steps on the same batches, interleaved, "
                  "after warm-up steps; the compiled warm-up holds the (cold) compilation.", ""]
        lines += _table(["tickers", "device", "mode", "samples/s", "median step s", "warm-up s", "speed-up",
                         "recompiles (timed)", "load"], compile_rows(compiled))
        diffs = {n: c.get("warmup_loss_max_abs_diff") for n, c in sorted(compiled.items())}
        lines += ["Largest |eager - compiled| loss over the warm-up steps (same seed and batches): "
                  + ", ".join(f"{_f(d, 6)} at {n:,} tickers" for n, d in diffs.items())
                  + ".", ""]
    else:
        lines += ["torch.compile: not measured in this run (`--compile`).", ""]
    return lines + ([f"CUDA graphs: {NO_GPU}.", ""] if not gpu else ["CUDA graphs: not measured.", ""])


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
    if "views" in a["only"] and a["views_sizes"]:
        lines += ["## 1. Views build: polars pipeline vs the pandas reference", "",
                  "Both measured on the same market at every size, both building whole-window views "
                  "(`partial_history = false`: the reference has no partial-history mode, and the default build's "
                  "partial history does more work), so the two produce the same numbers.", ""]
        lines += _table(["market", "polars s", "polars CPU s", "polars peak MiB", "pandas s", "pandas CPU s",
                         "pandas peak MiB", "speed-up wall (CPU)", "N x T", "load (polars; pandas)"],
                        views_rows(cases["views_polars"], cases.get("views_pandas", {}), a["views_sizes"], years))
    if cases.get("train"):
        lines += ["## 2. Training throughput (ModelConfig defaults)", "",
                  "Full step = sampler + index gathers + model/loss/backward/optimiser; model step = the same "
                  "batches gathered beforehand. Epoch times: section 3 (measured).", ""]
        lines += _table(["tickers", "device", "dates/batch", "B", "samples/s", "full step s", "model step s",
                         "sampler ms", "gathers ms", "outside model: parts (1 - model/full)", "peak MiB", "load"],
                        train_rows(cases["train"]))
        lines += [f"GPU: {NO_GPU}." if not report.get("gpu_measured") else "", ""]
        lines += compile_section(cases.get("compile", {}), bool(report.get("gpu_measured")))
    if report.get("scaling"):
        points, fits = scaling_rows(report["scaling"], cases.get("epoch", {}))
        lines += [f"## 3. Scaling ({years:g} years of history)", "",
                  f"epoch = one measured epoch (`Engine.fit`: sampler, gathers, model, loss, backward, optimiser, "
                  f"EMA) over the last {a['epoch_dates'] or 'all'} training dates of each market, after "
                  f"{a['train_warmup']} warm-up step(s); batches held near {a['batch_samples']:,} samples: "
                  f"dates per batch = max(1, round({a['batch_samples']:,} / N)). Its samples grow as N, so a "
                  "linear epoch time is a constant samples/s. tensors = load_view_tensors.", ""]
        lines += _table(["tickers", *QUANTITIES, "epoch samples/s", "epoch span", "load (epoch)"], points)
        lines += ["Log-log slope of each quantity against N (1 = linear):", ""]
        lines += _table(["quantity", "slope", "growth"], fits)
    if report.get("planning"):
        lines += ["## 4. Planning: ms per PortfolioMPC.plan (S=512, 6 iterations, H=5)", ""]
        lines += _table(["device", "threads", "assets", "median ms", "min ms", "median CPU ms", "load"],
                        planning_rows(report["planning"]))
    lines += ["## 5. Several GPUs", "", NO_MULTI_GPU, ""]
    lines += rows_markdown(read_rows())  # section 6: benchmarks/commands.json (python -m benchmarks.commands)
    lines += [f"Notes: {n}" for n in report.get("notes", [])]
    return "\n".join(lines).rstrip() + "\n"


def write(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write results.json and RESULTS.md under `out_dir`; returns their paths. RESULTS.md's sections from `KEPT` on
    (written by other commands: the comparison, the dashboard and 20,000-company runs, the GPU check) are kept.
    """
    from dynmix.io import write_json, write_text

    out_dir.mkdir(parents=True, exist_ok=True)
    js, md = out_dir / "results.json", out_dir / "RESULTS.md"
    cases = {kind: {str(n): c for n, c in by_n.items()} for kind, by_n in report["cases"].items()}
    write_json(json.loads(json.dumps({**report, "cases": cases}, default=str)), js)
    text, old = markdown(report), md.read_text() if md.exists() else ""
    if KEPT in old:
        text = text.rstrip("\n") + "\n\n" + old[old.index(KEPT) + 1 :]
    write_text(text, md)
    return js, md
