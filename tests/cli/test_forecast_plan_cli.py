"""`dynmix forecast RUN` and `dynmix plan RUN` through the CLI on a tiny workspace: views, train, forecast, plan."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dynmix.cli import app
from dynmix.config import PlanConfig, save_config

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_workspace(write_panel, tiny_run_config):  # type: ignore[no-untyped-def]
    """Writes a store of n equities in two sectors and the config file of a tiny model; returns the config path."""

    def make(home: Path, n: int = 5, days: int = 400) -> Path:
        rng = np.random.default_rng(1)
        sector = np.arange(n) % 2
        r = (rng.normal(0, 0.01, (days, 1)) + rng.normal(0, 0.008, (days, 2))[:, sector]
             + rng.normal(0, 0.01, (days, n)))
        write_panel(home / "store", dt.date(2014, 1, 1), 40 * np.exp(np.cumsum(r, 0)), sector, prefix="T")
        save_config(tiny_run_config(PlanConfig(samples=32, iterations=2, elites=4), world_epochs=5),
                    home / "tiny.toml")
        return home / "tiny.toml"

    return make


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_workspace) -> Path:  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("cli") / "ws"
    config = tiny_workspace(home)
    for args in (["views", "build", "--config", str(config), "--no-progress"],
                 ["train", "--config", str(config), "--no-progress"]):
        result = runner.invoke(app, ["--home", str(home), *args])
        assert result.exit_code == 0, result.output
    return home


def test_forecast_and_plan_name_the_step_then_train_world_and_jepa_then_forecast_and_plan(trained: Path) -> None:
    run = sorted((trained / "runs").iterdir())[-1]
    for command in ("forecast", "plan"):  # they never train: they say which step does
        result = runner.invoke(app, ["--home", str(trained), command, "latest", "--no-progress"])
        assert result.exit_code == 1 and f"dynmix train --stage world --run {run.name}" in " ".join(
            result.output.split())
    for stage in ("world", "jepa"):
        result = runner.invoke(app, ["--home", str(trained), "train", "--stage", stage, "--epochs", "1",
                                     "--no-progress"])
        assert result.exit_code == 0, result.output
    assert (run / "forecast" / "world.pt").exists() and (run / "forecast" / "jepa.pt").exists()
    result = runner.invoke(app, ["--home", str(trained), "train", "--stage", "world", "--seed", "3"])
    assert result.exit_code == 1 and "drop --seed" in result.output

    result = runner.invoke(app, ["--home", str(trained), "forecast", "latest", "--no-progress"])
    assert result.exit_code == 0, result.output
    for text in ("QLIKE", "garch", "har", "dynmix", "world_model", "persistence", "JEPA surprise index",
                 "Global minimum variance", "ledoit_wolf", "ann_vol_long_only"):
        assert text in result.output
    assert (run / "forecast" / "vol_forecast.parquet").exists() and (run / "forecast" / "surprise.parquet").exists()

    result = runner.invoke(app, ["--home", str(trained), "plan", run.name, "--no-progress"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())  # rich wraps long lines
    for text in ("world_mpc", "equal_weight", "min_variance", "hrp", "sharpe", "10 bps per unit of turnover"):
        assert text in out
    report = json.loads((run / "report.json").read_text())
    assert {"forecast", "planning"} <= set(report) and "surprise" in report["forecast"]
    assert (run / "planning" / "equity.parquet").exists() and (run / "planning" / "weights.parquet").exists()


def test_unknown_run_is_a_clean_error(trained: Path) -> None:
    for command in ("forecast", "plan"):
        result = runner.invoke(app, ["--home", str(trained), command, "nope"])
        assert result.exit_code == 1
        assert "no run 'nope'" in result.output and "Traceback" not in result.output


def test_pipeline_runs_every_step_after_the_data(tmp_path: Path, tiny_workspace) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "ws"
    config = tiny_workspace(home)
    result = runner.invoke(app, ["--home", str(home), "pipeline", "--config", str(config), "--tag", "mine"])
    assert result.exit_code == 0, result.output
    runs = sorted(p.name for p in (home / "runs").iterdir())
    assert len(runs) == 2 and runs[0].endswith("mine-static") and runs[1].endswith("mine-market-vol")
    run = home / "runs" / runs[1]
    report = json.loads((run / "report.json").read_text())
    assert {"sector", "similarity", "forecast", "planning"} <= set(report) and "surprise" in report["forecast"]
    for step in ("views", "train", "evaluate", "world model", "forecast", "plan", "done"):
        assert step in result.output
