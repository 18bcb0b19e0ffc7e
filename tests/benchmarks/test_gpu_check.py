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
