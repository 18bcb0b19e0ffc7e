"""The harness: timing, per-case child processes, log-log fits, and a smoke run of `python -m benchmarks --quick`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import scaling
from benchmarks.__main__ import main, planning_case
from benchmarks.harness import measure, run_case


def test_measure_warms_up_then_times_each_run() -> None:
    calls: list[int] = []
    t = measure(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(calls) == 5 and t["runs"] == 3 and t["warmup"] == 2 and len(t["wall_s"]) == 3
    assert t["min_s"] <= t["median_s"] <= t["max_s"] and len(t["loadavg_before"]) == 3


def test_measure_stops_when_the_budget_is_spent() -> None:
    assert measure(lambda: sum(range(10_000)), repeats=50, warmup=0, budget_s=0.0)["runs"] == 1


def test_run_case_reports_peak_memory_or_the_error() -> None:
    ok = run_case("benchmarks.harness:machine", {}, timeout_s=60)
    assert ok["cpu_count"] >= 1 and ok["peak_rss_mb"] >= ok["baseline_rss_mb"] > 0 and len(ok["loadavg_end"]) == 3
    bad = run_case("benchmarks.scaling:verdict", {"nope": 1}, timeout_s=60)
    assert "error" in bad and "TypeError" in bad["error"]


def test_loglog_slope_and_verdict() -> None:
    xs = [100, 500, 1000, 5000]
    assert scaling.loglog_slope(xs, [3.0 * x for x in xs]) == pytest.approx(1.0)
    assert scaling.loglog_slope(xs, [x**2 for x in xs]) == pytest.approx(2.0)
    assert scaling.loglog_slope([100], [1.0]) is None and scaling.loglog_slope(xs, [None, 1.0, None, None]) is None
    assert [scaling.verdict(b) for b in (0.5, 1.05, 1.4, None)] == [
        "sub-linear", "linear", "super-linear", "not enough points"]


def test_planning_case_times_every_size() -> None:
    rows = planning_case([5, 8], repeats=1, threads=1)["results"]
    assert [r["assets"] for r in rows if r["device"] == "cpu"] == [5, 8]
    assert all(r["median_ms"] > 0 for r in rows)


def test_quick_run_writes_results(tmp_path: Path) -> None:
    main(["--quick", "--only", "views,train,scaling", "--threads", "1", "--home", str(tmp_path / "home"),
          "--out", str(tmp_path)])
    report = json.loads((tmp_path / "results.json").read_text())
    views, train = report["cases"]["views_pandas"]["40"], report["cases"]["train"]["40"]
    assert "error" not in views and views["n_tickers"] == 40 and views["timing"]["median_s"] > 0
    assert report["cases"]["views_polars"]["40"]["n_tickers"] == 40
    assert train["samples_per_s"] > 0 and 0 < train["outside_model_share_parts"] < 1 and train["threads"] == 1
    assert "epoch_s_estimate" not in train and "steps_per_epoch" not in train
    epoch = report["cases"]["epoch"]["40"]  # 8 dates, round(200 / 40) = 5 dates per batch: 2 steps
    assert epoch["completed"] and epoch["epoch_dates"] == 8 and epoch["dates_per_batch"] == 5 and epoch["steps"] == 2
    assert epoch["epoch_s"] > 0 and epoch["samples_per_s"] == pytest.approx(epoch["samples"] / epoch["epoch_s"])
    assert epoch["tensors"]["peak_rss_mb"] <= epoch["peak_rss_mb"] and epoch["first_date"] <= epoch["last_date"]
    assert report["cases"]["epoch"]["20"]["dates_per_batch"] == 10
    points = report["scaling"]["points"]
    assert [p["tickers"] for p in points] == [20, 40] and points[1]["epoch_s"] == epoch["epoch_s"]
    assert report["scaling"]["fits"]["views_s"]["slope"] is not None
    assert report["scaling"]["fits"]["epoch_s"]["slope"] is not None and "epoch_s_estimate" not in points[0]
    md = (tmp_path / "RESULTS.md").read_text()
    assert "estimate" not in md.lower() and "tickers, x(" not in md and "one measured epoch" in md
    assert "round(200 / N)" in md and "8 dates in 2 steps of <= 5 dates" in md
    assert "torch.compile: not measured in this run" in md and "CUDA graphs: not measured: no GPU" in md
    assert "not measured: no GPU available" in md and "not measured: no multi-GPU machine" in md


def test_a_command_is_measured_in_a_fresh_process_and_shown_in_section_6(tmp_path: Path) -> None:
    from benchmarks.commands import measure_command, rows_markdown

    res = measure_command(tmp_path / "ws", ["views", "build", "--no-progress"], timeout_s=300)
    assert res["rc"] == 1 and "dynmix data sample" in res["tail"]  # an empty store: a clean error, measured
    assert res["wall_s"] > 0 and res["peak_rss_mb"] > 20 and len(res["loadavg_before"]) == 3
    row = {"date": "2026-12-03 23:20", "args": ["views", "build"], "market": "5,000 x 25 y", **res}
    md = "\n".join(rows_markdown([row]))
    assert "## 6. Commands as the user runs them" in md and "`dynmix views build`" in md and "5,000 x 25 y" in md
    assert rows_markdown([]) == []


def test_rewriting_results_keeps_the_sections_of_other_commands(tmp_path: Path) -> None:
    from benchmarks import results
    from benchmarks.harness import machine

    kept = "## 7. Files\n\nkept\n\n## 12. GPU\n\nkept\n"
    (tmp_path / "RESULTS.md").write_text("# old\n\n## 1. Views\n\nold table\n\n" + kept)
    report = {"machine": machine(), "command": "python -m benchmarks --only planning", "notes": [],
              "args": {"years": 25.0, "only": ["planning"], "views_sizes": []}, "cases": {},
              "planning": planning_case([5], repeats=1, threads=1)}
    results.write(report, tmp_path)
    text = (tmp_path / "RESULTS.md").read_text()
    assert "old table" not in text and "## 4. Planning" in text
    assert text.endswith("\n\n" + kept) and text.count("## 7. ") == 1
