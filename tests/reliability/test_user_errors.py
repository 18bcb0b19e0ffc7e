"""Failures a user can cause end with a clear message and a non-zero exit, never a Traceback: a workspace that is
not a folder or does not exist yet, a command run before the step it needs, damaged views, a damaged checkpoint.
(Damaged store files: test_damaged_store.py; bad configs: test_config_checks.py; empty --tickers:
test_refresh_interrupts.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dynmix.cli import app

runner = CliRunner()


def _fails_clearly(home: Path | str, *args: str, says: str) -> str:
    result = runner.invoke(app, ["--home", str(home), *args])
    text = result.output
    assert result.exit_code not in (0, None), text
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # a message, not an exception
    assert "Traceback" not in text, text
    assert says.lower() in text.lower(), text
    return text


@pytest.mark.parametrize("args", [["data", "status"], ["views", "build", "--no-progress"], ["train"],
                                  ["embed", "latest"]])
def test_home_that_is_not_a_folder(args: list[str]) -> None:
    _fails_clearly("/dev/null", *args, says="/dev/null")


@pytest.mark.parametrize("args,says", [(["views", "build", "--no-progress"], "import"),
                                       (["train", "--no-progress"], "views"),
                                       (["embed", "latest"], "run"), (["evaluate", "latest"], "run"),
                                       (["forecast", "latest"], "run"), (["plan", "latest"], "run")])
def test_commands_before_the_step_they_need(tmp_path: Path, args: list[str], says: str) -> None:
    _fails_clearly(tmp_path / "new-ws", *args, says=says)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dynmix.config import save_config
    from dynmix.train import train
    from dynmix.workspace import Workspace
    from tests.train.conftest import make_views, tiny_config, write_views

    ws = Workspace.at(tmp_path_factory.mktemp("usererr") / "ws")
    write_views(make_views(), ws.views)
    save_config(tiny_config(epochs=1), ws.home / "tiny.toml")
    return train(ws, tiny_config(epochs=1), progress=False)


@pytest.mark.slow  # trains a tiny run (~20 s on a loaded 2-core machine)
def test_damaged_checkpoint(trained: Path) -> None:
    from dynmix.runs.rundir import RunDir

    rd = RunDir(trained)
    saved = rd.checkpoint_path.read_bytes()
    try:
        rd.checkpoint_path.write_bytes(saved[: len(saved) // 3])
        _fails_clearly(trained.parent.parent, "embed", trained.name, says=rd.checkpoint_path.name)
    finally:
        rd.checkpoint_path.write_bytes(saved)


@pytest.mark.slow
def test_damaged_views(trained: Path) -> None:
    home = trained.parent.parent
    victim = sorted((home / "views").resolve().glob("*.parquet"))[0]
    saved = victim.read_bytes()
    try:
        victim.write_bytes(saved[: len(saved) // 2])
        _fails_clearly(home, "train", "--config", str(home / "tiny.toml"), "--no-progress", says=victim.name)
        _fails_clearly(home, "embed", trained.name, says=victim.name)
    finally:
        victim.write_bytes(saved)
