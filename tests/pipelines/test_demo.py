"""The demo pipeline end to end on the embedded data (1 epoch, no forecasting: the fast path of `dynmix demo`)."""

from __future__ import annotations

import io
import json

from rich.console import Console

from dynmix.runs.rundir import RunDir
from dynmix.workspace import Workspace
from pipelines.demo import demo_config, run_demo


def test_demo_config_keeps_training_small() -> None:
    cfg = demo_config()
    assert cfg.train.epochs <= 5 and cfg.model.implicit_width <= 32  # the demo's 2-minute training budget
    assert demo_config(epochs=1, device="cpu").train.epochs == 1


def test_demo_trains_both_targets_and_reports_them_side_by_side(home: Workspace) -> None:
    out = io.StringIO()
    result = run_demo(home, epochs=1, device="cpu", forecast=False, console=Console(file=out, width=120))
    run, static = result["run"], result["static_run"]
    assert RunDir.latest(home).path == run  # the main (market-vol) run is the newest: `latest` picks it
    assert "market-vol" in run.name and "static" in static.name
    report = json.loads((run / "report.json").read_text())
    assert {"dynmix_implicit", "pca", "correlation", "random", f"{static.name}_implicit"} <= set(report["sector"])
    text = out.getvalue()
    assert "dynmix_implicit" in text and "kNN acc" in text and "dashboard" in text
    for name in ("config.toml", "checkpoint.pt", "metrics.jsonl", "gamma.parquet", "embeddings"):
        assert (run / name).exists() and (static / name).exists()
