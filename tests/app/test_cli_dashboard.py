"""`dynmix dashboard` starts `streamlit run app/main.py` on 127.0.0.1 with the workspace in $DYNMIX_HOME."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import dynmix.cli.dashboard as dash
from dynmix.cli.app import app


class FakePopen:
    launched: list[FakePopen] = []

    def __init__(self, cmd, env, preexec_fn=None):
        self.cmd, self.env, self.preexec_fn = cmd, env, preexec_fn
        FakePopen.launched.append(self)

    def wait(self, timeout=None):
        return 0


@pytest.fixture
def launched(monkeypatch):
    FakePopen.launched = []
    monkeypatch.setattr(dash.subprocess, "Popen", FakePopen)
    monkeypatch.setattr(dash.signal, "signal", lambda *a: None)
    return FakePopen.launched


def _opt(cmd, name):
    return cmd[cmd.index(name) + 1]


def test_dashboard_runs_streamlit_locally(launched, tmp_path):
    result = CliRunner().invoke(app, ["--home", str(tmp_path / "ws"), "dashboard", "--port", "8765"])
    assert result.exit_code == 0, result.output
    (proc,) = launched
    assert proc.cmd[1:4] == ["-m", "streamlit", "run"]
    assert Path(proc.cmd[4]) == Path(__file__).resolve().parents[2] / "app" / "main.py"
    assert _opt(proc.cmd, "--server.address") == "127.0.0.1"
    assert _opt(proc.cmd, "--server.port") == "8765"
    assert _opt(proc.cmd, "--server.headless") == "true"
    assert _opt(proc.cmd, "--browser.gatherUsageStats") == "false"
    assert "0.0.0.0" not in proc.cmd
    assert proc.env["DYNMIX_HOME"] == str((tmp_path / "ws").resolve())
    assert "http://127.0.0.1:8765" in result.output


def test_dashboard_home_option_wins(launched, tmp_path, monkeypatch):
    monkeypatch.setenv("DYNMIX_HOME", str(tmp_path / "env"))
    result = CliRunner().invoke(app, ["dashboard", "--home", str(tmp_path / "mine")])
    assert result.exit_code == 0, result.output
    assert launched[0].env["DYNMIX_HOME"] == str((tmp_path / "mine").resolve())
    assert _opt(launched[0].cmd, "--server.port") == "8501"


def test_dashboard_missing_app_is_a_clean_error(launched, tmp_path, monkeypatch):
    monkeypatch.setattr(dash, "app_path", lambda: tmp_path / "nowhere" / "main.py")
    result = CliRunner().invoke(app, ["--home", str(tmp_path), "dashboard"])
    assert result.exit_code == 1
    assert "entry file" in result.output and not launched


def test_the_server_is_started_to_die_with_its_parent(launched, tmp_path):
    result = CliRunner().invoke(app, ["--home", str(tmp_path / "ws"), "dashboard"])
    assert result.exit_code == 0, result.output
    assert launched[0].preexec_fn is dash.die_with_parent


PARENT = """
import subprocess, sys, time
sys.path.insert(0, {repo!r})
from dynmix.cli.dashboard import die_with_parent
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], preexec_fn=die_with_parent)
print(child.pid, flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux only")
def test_a_child_dies_when_its_parent_is_killed(tmp_path):
    repo = Path(__file__).resolve().parents[2]
    parent = subprocess.Popen([sys.executable, "-c", PARENT.format(repo=str(repo))], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    parent.kill()  # kill -9: no handler of the parent runs
    parent.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        try:  # a zombie of the init process still answers kill(0): look at its state
            if Path(f"/proc/{child}/stat").read_text().split()[2] == "Z":
                break
        except OSError:
            break
        time.sleep(0.1)
    else:
        os.kill(child, 9)
        pytest.fail("the child outlived its killed parent")
