"""Ctrl-C on every long-running command: a subprocess runs the CLI's entry point, gets SIGINT once it is working,
and must end within 3 s with exit code 130, one line saying what was kept, no Traceback, and the store, the views
and the runs as consistent as before. (`data refresh` on a stalled network: test_refresh_interrupts.py.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from dynmix.cli import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()

SCRIPT = """
import sys
sys.path.insert(0, {repo!r})
import polars, torch  # noqa: F401  (loaded before 'ready', so the signal lands in the command's work)
from dynmix.cli import main
sys.argv = ["dynmix", "--home", {home!r}, *{args!r}]
print("ready", flush=True)
main()
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small market with views, a finished run (embeddings exported) and its world model, and big.csv beside it
    (60 renamed copies of its prices, 1 M rows: an import that lasts past the signal).
    """
    home = tmp_path_factory.mktemp("ctrlc") / "ws"
    for args in (["data", "synth", "-n", "120", "-y", "3"], ["views", "build", "--no-progress"],
                 ["train", "--epochs", "1", "--no-progress", "--run-name", "done"]):
        result = runner.invoke(app, ["--home", str(home), *args])
        assert result.exit_code == 0, result.output
    run = next(p.name for p in (home / "runs").iterdir() if p.name.endswith("-done"))
    result = runner.invoke(app, ["--home", str(home), "train", "--stage", "world", "--run", run, "--epochs", "1",
                                 "--no-progress"])
    assert result.exit_code == 0, result.output
    prices = pl.read_parquet(home / "store" / "prices.parquet")
    big = pl.concat([prices.with_columns(pl.col("ticker") + f"X{k}") for k in range(60)])
    big.select("date", "ticker", "close").write_csv(home.parent / "big.csv")
    return home


@pytest.fixture(scope="module")
def big_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A market whose views build lasts past the signal (2,000 tickers x 20 years), with views already built."""
    home = tmp_path_factory.mktemp("ctrlc-big") / "ws"
    for args in (["data", "synth", "-n", "2000", "-y", "20"], ["views", "build", "--no-progress"]):
        result = runner.invoke(app, ["--home", str(home), *args])
        assert result.exit_code == 0, result.output
    (home / "runs").mkdir(exist_ok=True)
    return home


def _state(home: Path) -> tuple[list[str], str, list[str]]:
    from dynmix.data.store import Store
    from dynmix.views.generation import check_generation

    store = Store(home / "store")
    assert store.damaged_files() == []
    check_generation((home / "views").resolve(), digests=True)
    runs = sorted(p.name for p in (home / "runs").iterdir() if p.is_dir())
    return sorted(store.read_manifest()["ticker"].to_list()), (home / "views").resolve().name, runs


COMMANDS = [
    ["data", "import", "{big}"],
    ["views", "build", "--no-progress"],
    ["train", "--epochs", "200", "--no-progress"],
    ["embed", "{run}"],
    ["evaluate", "{run}"],
    ["forecast", "{run}"],
]


@pytest.mark.slow
@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_ctrl_c_within_3_seconds(request: pytest.FixtureRequest, home: Path, args: list[str]) -> None:
    run = next(p.name for p in (home / "runs").iterdir() if p.name.endswith("-done"))  # not a killed one
    if args[0] == "views":
        home = request.getfixturevalue("big_home")
    args = [a.format(big=str(home.parent / "big.csv"), run=run) for a in args]
    before = _state(home)
    script = SCRIPT.format(repo=str(REPO), home=str(home), args=args)
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(REPO),
                            "COLUMNS": "200"}, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.5)  # the command is under way
    assert proc.poll() is None, f"{args} finished before the signal: make its work longer"
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    took = time.monotonic() - t0
    print(f"{' '.join(args[:2])}: ended {took:.2f} s after SIGINT, exit {proc.returncode}")
    assert "Traceback" not in out + err, out + err
    assert proc.returncode == 130, out + err
    assert "interrupted (Ctrl-C)" in err, err
    assert took < 3.0, took
    after = _state(home)
    assert after[0] == before[0] and after[1] == before[1], "store or views changed by an interrupted command"
    assert set(before[2]) <= set(after[2])
