"""One writer at a time per workspace: concurrent imports keep every row; a second writer waits, then refuses."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dynmix.cli import app
from dynmix.data.store import Store
from dynmix.errors import DynMIXError
from dynmix.lock import LOCK_NAME, WorkspaceBusy, writer_lock

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _csv(path: Path, tickers: list[str], days: int = 40) -> Path:
    rows = ["date,ticker,close"]
    for k, tk in enumerate(tickers):
        for d in range(days):
            rows.append(f"2020-{1 + d // 28:02d}-{1 + d % 28:02d},{tk},{10 + k + d * 0.1:.2f}")
    path.write_text("\n".join(rows) + "\n")
    return path


def _dynmix(home: Path, *args: str, timeout: str = "60") -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "DYNMIX_LOCK_TIMEOUT": timeout, "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "dynmix", "--home", str(home), *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_two_concurrent_imports_both_land(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    a = _csv(tmp_path / "a.csv", [f"A{i:02d}" for i in range(15)])
    b = _csv(tmp_path / "b.csv", [f"B{i:02d}" for i in range(15)])
    procs = [_dynmix(home, "data", "import", str(p)) for p in (a, b)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, out + err
    store = Store(home / "store")
    prices = store.read_prices()
    assert prices.height == 30 * 40
    manifest = store.read_manifest()
    assert manifest.height == 30
    assert manifest["rows"].to_list() == [40] * 30
    assert not (home / LOCK_NAME).read_text().strip()  # released: nobody named as holder


@pytest.mark.slow  # a subprocess and a 4-second wait
def test_second_writer_waits_then_proceeds(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    a = _csv(tmp_path / "a.csv", ["AAA"])
    with writer_lock(home, "test holder"):
        proc = _dynmix(home, "data", "import", str(a), timeout="60")
        time.sleep(4.0)  # the import starts (python + imports) and finds the lock held
        assert proc.poll() is None, proc.communicate()
        assert not (home / "store" / "prices.parquet").exists()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    assert "waiting for `test holder`" in err
    assert Store(home / "store").read_prices().height == 40


def test_second_writer_refuses_after_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "ws"
    a = _csv(tmp_path / "a.csv", ["AAA"])
    monkeypatch.setenv("DYNMIX_LOCK_TIMEOUT", "0.3")
    done = threading.Event()
    started = threading.Event()

    def hold() -> None:
        with writer_lock(home, "dynmix train"):
            started.set()
            done.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    try:
        started.wait(5)
        result = runner.invoke(app, ["--home", str(home), "data", "import", str(a)])
    finally:
        done.set()
        t.join()
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "busy" in result.stderr and "`dynmix train`" in result.stderr and "did nothing" in result.stderr
    assert not (home / "store" / "prices.parquet").exists()
    # once released, the same command goes through
    result = runner.invoke(app, ["--home", str(home), "data", "import", str(a)])
    assert result.exit_code == 0, result.output


def test_lock_is_reentrant_in_a_thread_and_exclusive_across_threads(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    with writer_lock(home, "outer"), writer_lock(home, "inner"):  # a pipeline's stages take it again
        box: list[BaseException] = []

        def other() -> None:
            try:
                with writer_lock(home, "other", timeout=0.2, on_wait=lambda m: None):
                    pass
            except BaseException as e:  # noqa: BLE001 - handed to the test thread
                box.append(e)

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert len(box) == 1 and isinstance(box[0], WorkspaceBusy)
    with writer_lock(home, "again", timeout=0.0):  # released after the outer block
        pass


def test_home_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(DynMIXError, match="not a folder"):
        with writer_lock(not_a_dir, "x"):
            pass
    for args in (["data", "status"], ["data", "sample"]):
        result = runner.invoke(app, ["--home", str(not_a_dir), *args])
        assert result.exit_code != 0
        assert "Traceback" not in result.output and "not a folder" in result.output


def test_dry_run_import_takes_no_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "ws"
    a = _csv(tmp_path / "a.csv", ["AAA"])
    monkeypatch.setenv("DYNMIX_LOCK_TIMEOUT", "0")
    with writer_lock(home, "holder"):
        result = runner.invoke(app, ["--home", str(home), "data", "import", str(a), "--dry-run"])
    assert result.exit_code == 0, result.output
