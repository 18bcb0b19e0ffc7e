"""The prepared device check runs on a CPU in its tiny mode, so it cannot rot before a GPU runs it."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.gpu_check import main


def test_the_gpu_check_runs_tiny_on_a_cpu(tmp_path: Path) -> None:
    report = main(["--tiny", "--device", "cpu", "--out", str(tmp_path / "gpu.json")])
    assert json.loads((tmp_path / "gpu.json").read_text()) == report
    (row,) = report["checks"]
    assert row["companies"] == 40 and row["cap"] >= 1 and row["cap_how"].startswith("auto")
    assert 0 < row["median_batch"] <= max(row["cap"], row["largest_block"])
    assert row["samples_per_s"] > 0 and 0 <= row["outside_model_share"] < 1
    assert row["embed_rows"] == 40 * 4 and row["embed_rows_per_s"] > 0  # 4 dates x every company
    # one whole epoch: 126 days, the first full 60-day window ends on day 59, so 67 dates in blocks of 16
    assert (row["epoch_steps"], row["epoch_samples"]) == (5, 40 * 67) and len(row["epoch_s"]) == 1
    assert row["epoch_s"][0] > 0


def test_benchmarks_gpu_quick_writes_section_12_and_keeps_the_rest(tmp_path: Path) -> None:
    from benchmarks.__main__ import main as bench
    from benchmarks.gpu_suite import BEGIN, END, TITLE

    old = f"# kept\n\n## 7. Hand\n\nfigures\n\n{BEGIN}\nold GPU figures\n{END}\n\nafter\n"
    (tmp_path / "RESULTS.md").write_text(old)
    bench(["--gpu", "--quick", "--out", str(tmp_path)])
    text = (tmp_path / "RESULTS.md").read_text()
    assert text.startswith("# kept\n\n## 7. Hand\n\nfigures\n\n") and text.endswith(f"{END}\n\nafter\n")
    assert "old GPU figures" not in text and text.count(TITLE) == 1 and "not a GPU figure" in text
    (raw,) = (tmp_path / "gpu").glob("*-check-quick.json")
    report = json.loads(raw.read_text())
    eager, plans, compiled = report["cases"]
    assert [c["label"] for c in report["cases"]] == ["eager", "plans", "torch.compile"]
    assert eager["checks"][0]["mode"] == "eager" and compiled["checks"][0]["mode"] == "torch.compile (eager)"
    assert all(c["checks"][0]["epoch_s"][0] > 0 and c["checks"][0]["samples_per_s"] > 0 for c in (eager, compiled))
    assert plans["results"][0]["assets"] == 20 and plans["results"][0]["median_ms"] > 0
    assert "| torch.compile | 40 | torch.compile (eager) |" in text and "| 20 | eager |" in text


def test_a_spent_budget_reports_the_cases_not_run() -> None:
    from rich.console import Console

    from benchmarks.gpu_suite import run

    report = run("cpu", quick=True, budget_s=5, console=Console(quiet=True))
    assert [c["error"] for c in report["cases"]] == ["not run: the 5 s budget was spent"] * 3


def test_aims_are_read_off_the_figures_at_500() -> None:
    from benchmarks.gpu_suite import aims

    row = {"companies": 500, "mode": "eager", "epoch_s": [7.4, 7.1], "outside_model_share": 0.06}
    big = {"companies": 5000, "mode": "eager", "outside_model_share": 0.3}  # not one of the aims' sizes
    plans = [{"assets": 500, "compiled": False, "median_ms": 8.3}, {"assets": 500, "compiled": True, "median_ms": 2.0}]
    report = {"quick": False, "cases": [{"label": "eager", "checks": [row, big]}, {"label": "plans", "results": plans}]}
    assert aims(report) == ["- Epoch over 500 x 25 y <= 5 s: NOT met (fastest epoch 7.10 s, eager).",
                            "- <= 10 % of a step outside the model: met (largest 6.0 %).",
                            "- <= 5 ms per plan at 500 assets: met (2.00 ms, plan.compile)."]


def test_without_cuda_the_gpu_check_says_so() -> None:
    import pytest
    import torch

    from benchmarks.__main__ import main as bench

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(SystemExit, match="no CUDA device here"):
        bench(["--gpu"])
