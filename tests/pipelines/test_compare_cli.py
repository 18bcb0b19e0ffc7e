"""`dynmix compare` through typer's CliRunner: clear errors before any training."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from dynmix.cli import app


def test_compare_cli_names_the_bad_arm_and_the_missing_views(tmp_path: Path) -> None:
    bad = CliRunner().invoke(app, ["--home", str(tmp_path), "compare", "--objectives", "vicreg,simclr"])
    assert bad.exit_code == 1 and "simclr" in bad.output
    none = CliRunner().invoke(app, ["--home", str(tmp_path), "compare", "--objectives", "vicreg:market-vol,barlow"])
    assert none.exit_code == 1 and "views build" in none.output
