from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from dynmix.cli.app import app
from dynmix.workspace import Workspace


def test_cli_evaluate_latest_prints_table_and_paths(home: Workspace, make_run: Callable[..., Path]) -> None:
    run_dir = make_run(views=("implicit",))
    result = CliRunner().invoke(app, ["--home", str(home.home), "evaluate", "latest"])
    assert result.exit_code == 0, result.output
    assert "dynmix_implicit" in result.output and "kNN acc" in result.output
    assert str(run_dir / "report.json") in result.output and str(run_dir / "report.md") in result.output
    assert "sector" in json.loads((run_dir / "report.json").read_text())


def test_cli_evaluate_unknown_run_is_a_clean_error(home: Workspace, make_run: Callable[..., Path]) -> None:
    make_run(views=("implicit",))
    result = CliRunner().invoke(app, ["--home", str(home.home), "evaluate", "nope", "--compare", "latest"])
    assert result.exit_code == 1
    assert "no run 'nope'" in result.output
