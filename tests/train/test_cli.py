"""`dynmix train` and `dynmix embed` (kept beside the trainer tests; the command module is dynmix/cli/train.py)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from dynmix.cli.app import app
from dynmix.config import DynMIXConfig, load_config, save_config
from dynmix.runs.embeddings import read_embeddings
from dynmix.workspace import Workspace

runner = CliRunner()


def test_bad_options_are_clean_errors(home: Workspace) -> None:
    r = runner.invoke(app, ["train", "--variance-target", "vix"])
    assert r.exit_code == 1 and "static, market-vol, dispersion" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["train", "--device", "tpu"])
    assert r.exit_code == 1 and "auto, cpu, cuda" in r.output
    r = runner.invoke(app, ["train", "--resume", "latest", "--epochs", "3"])
    assert r.exit_code == 1 and "drop --epochs" in r.output
    r = runner.invoke(app, ["train", "--device", "cpu"])
    assert r.exit_code == 1 and "dynmix views build" in r.output
    r = runner.invoke(app, ["embed", "latest"])
    assert r.exit_code == 1 and "no runs" in r.output


def test_train_then_embed(views_home: Workspace, tiny_cfg: Callable[..., DynMIXConfig], tmp_path: Path) -> None:
    save_config(tiny_cfg(epochs=3), tmp_path / "tiny.toml")
    r = runner.invoke(app, ["train", "--config", str(tmp_path / "tiny.toml"), "--epochs", "1", "--seed", "3",
                            "--variance-target", "dispersion", "--no-progress"])
    assert r.exit_code == 0, r.output
    run = views_home.list_runs()[0]
    assert run.name.endswith("-dispersion") and str(run.name) in r.output.replace("\n", "")
    cfg = load_config(run / "config.toml")
    assert (cfg.train.epochs, cfg.train.seed, cfg.loss.variance_target) == (1, 3, "dispersion")
    assert cfg.model == tiny_cfg().model
    before = read_embeddings(run / "embeddings")
    shutil.rmtree(run / "embeddings")
    r = runner.invoke(app, ["embed", run.name, "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert read_embeddings(run / "embeddings").equals(before)
    r = runner.invoke(app, ["embed", run.name, "--device", "cpu", "--every", "7"])  # explicit rows of those dates only
    assert r.exit_code == 0, r.output
    strided = read_embeddings(run / "embeddings")
    kept = sorted(before["date"].unique())[::-1][::7]
    assert sorted(strided["date"].unique()) == sorted(kept)
    assert strided.sort("date", "ticker").equals(before.filter(before["date"].is_in(kept)).sort("date", "ticker"))
