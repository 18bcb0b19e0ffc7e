"""`dynmix forecast RUN` and `dynmix plan RUN` through the CLI on a tiny workspace: views, train, forecast, plan."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from dynmix.cli import app
from dynmix.config import (
    DynMIXConfig,
    JEPAConfig,
    ModelConfig,
    PlanConfig,
    TrainConfig,
    ViewsConfig,
    WorldConfig,
    save_config,
)
from dynmix.data.store import Store

runner = CliRunner()


def _tiny_workspace(home: Path, n: int = 5, days: int = 400) -> Path:
    """A store of n equities in two sectors, and the config file of a tiny model; returns the config path."""
    rng = np.random.default_rng(1)
    dates = [d for d in (dt.date(2014, 1, 1) + dt.timedelta(k) for k in range(2 * days)) if d.weekday() < 5][:days]
    sector = np.arange(n) % 2
    r = rng.normal(0, 0.01, (days, 1)) + rng.normal(0, 0.008, (days, 2))[:, sector] + rng.normal(0, 0.01, (days, n))
    close = 40 * np.exp(np.cumsum(r, 0))
    tickers = [f"T{k}" for k in range(n)]
    store = Store(home / "store")
    store.write_prices(pl.concat([pl.DataFrame({"date": dates, "ticker": t, "close": close[:, j], "volume": 1e5})
                                  for j, t in enumerate(tickers)]))
    store.upsert_meta(pl.DataFrame({"ticker": tickers, "sector": [f"S{s}" for s in sector], "asset_type": "equity"}))
    cfg = DynMIXConfig(
        views=ViewsConfig(window=20, min_window_obs=15, start=None, vol_scale_window=60),
        model=ModelConfig(dim=8, explicit_hidden=16, implicit_channels=8, implicit_layers=2, projector_dim=16,
                          projector_hidden=16),
        train=TrainConfig(epochs=1, dates_per_batch=32, device="cpu"),
        plan=PlanConfig(samples=32, iterations=2, elites=4),
        jepa=JEPAConfig(epochs=1, predictor_hidden=16, horizon_dim=4, sigreg_slices=32),
        world=WorldConfig(latent=8, market_latent=4, hidden=16, epochs=5, dates_per_batch=32),
    )
    save_config(cfg, home / "tiny.toml")
    return home / "tiny.toml"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("cli") / "ws"
    config = _tiny_workspace(home)
    for args in (["views", "build", "--config", str(config), "--no-progress"],
                 ["train", "--config", str(config), "--no-progress"]):
        result = runner.invoke(app, ["--home", str(home), *args])
        assert result.exit_code == 0, result.output
    return home


def test_forecast_then_plan(trained: Path) -> None:
    result = runner.invoke(app, ["--home", str(trained), "forecast", "latest", "--epochs", "1", "--no-progress"])
    assert result.exit_code == 0, result.output
    for text in ("QLIKE", "garch", "har", "dynmix", "world_model", "persistence", "trained for 1 epochs"):
        assert text in result.output
    run = sorted((trained / "runs").iterdir())[-1]
    assert (run / "forecast" / "world.pt").exists() and (run / "forecast" / "vol_forecast.parquet").exists()

    result = runner.invoke(app, ["--home", str(trained), "forecast", run.name, "--no-progress"])
    assert result.exit_code == 0 and "reused" in result.output

    result = runner.invoke(app, ["--home", str(trained), "plan", run.name, "--no-progress"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())  # rich wraps long lines
    for text in ("world_mpc", "equal_weight", "min_variance", "hrp", "sharpe", "10 bps per unit of turnover"):
        assert text in out
    report = json.loads((run / "report.json").read_text())
    assert {"forecast", "planning"} <= set(report)
    assert (run / "planning" / "equity.parquet").exists() and (run / "planning" / "weights.parquet").exists()


def test_unknown_run_is_a_clean_error(trained: Path) -> None:
    for command in ("forecast", "plan"):
        result = runner.invoke(app, ["--home", str(trained), command, "nope"])
        assert result.exit_code == 1
        assert "no run 'nope'" in result.output and "Traceback" not in result.output
