"""A refresh on a network that never answers: per-request timeouts, a total deadline, and Ctrl-C honoured at once,
keeping the tickers done so far. Fakes only (tests/data/yahoo_fake.py), never the network.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import polars as pl
import pytest
from typer.testing import CliRunner

import dynmix.cli.data_refresh as cmd
from dynmix.cli.app import app
from dynmix.data.refresh import refresh
from dynmix.data.store import Store

REPO = Path(__file__).resolve().parents[2]
FAKE_PATH = REPO / "tests" / "data" / "yahoo_fake.py"
TICKERS = ["AAA", "BBB", "CCC", "DDD"]


def _fake_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("yahoo_fake", FAKE_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake(stall_after: int | None = None, stall_s: float = 30.0) -> Any:
    """A FakeYahoo whose calls after the `stall_after`-th hang like a proxy that accepts and never answers."""
    m = _fake_module()

    class Stalling(m.FakeYahoo):  # type: ignore[misc, name-defined]
        def fetch_prices(self, tickers: list[str], start: date, end: date | None) -> pd.DataFrame:
            if stall_after is not None and len(self.calls) >= stall_after:
                self.calls.append({"tickers": sorted(tickers), "start": start, "end": end, "stalled": True})
                time.sleep(stall_s)
            return super().fetch_prices(tickers, start, end)

    return Stalling({t: m.truth_frame(40, "2024-01-02", seed=i) for i, t in enumerate(TICKERS)})


def test_a_stalled_chunk_times_out_and_the_deadline_stops_the_rest(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    fake = _fake(stall_after=1)  # the first chunk answers, then the network goes silent
    t0 = time.monotonic()
    result = refresh(store, fake, TICKERS, date(2024, 1, 1), chunk_size=1, progress=False, sleep=lambda s: None,
                     call_timeout=0.3, deadline=1.5)
    took = time.monotonic() - t0
    assert took < 4.0
    assert result.succeeded == ["AAA"] and result.out_of_time and not result.interrupted
    assert set(result.failed) == {"BBB", "CCC", "DDD"}
    assert any("deadline" in why for why in result.failed.values())
    assert Store(tmp_path / "store").read_prices()["ticker"].unique().to_list() == ["AAA"]  # what completed is kept
    manifest = store.read_manifest()
    assert manifest.filter(pl.col("status") == "ok")["ticker"].to_list() == ["AAA"]
    assert sorted(manifest.filter(pl.col("status") == "failed")["ticker"].to_list()) == ["BBB", "CCC", "DDD"]


def test_ctrl_c_keeps_the_tickers_done_so_far(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    fake = _fake()
    fake.raise_on[3] = KeyboardInterrupt()  # Ctrl-C while the third chunk downloads
    result = refresh(store, fake, TICKERS, date(2024, 1, 1), chunk_size=1, progress=False, sleep=lambda s: None)
    assert result.interrupted and result.succeeded == ["AAA", "BBB"]
    assert sorted(result.failed) == ["CCC", "DDD"] and "Ctrl-C" in result.failed["CCC"]
    assert sorted(store.read_prices()["ticker"].unique().to_list()) == ["AAA", "BBB"]
    assert len(fake.calls) == 3  # nothing asked after the interrupt


def test_cli_says_what_was_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake()
    fake.raise_on[2] = KeyboardInterrupt()
    monkeypatch.setattr(cmd, "make_adapter", lambda ws: fake)
    res = CliRunner().invoke(app, ["--home", str(tmp_path / "ws"), "data", "refresh", "-t", ",".join(TICKERS),
                                   "--chunk-size", "1"])
    text = " ".join(res.output.split())
    assert res.exit_code == 130, res.output
    assert "interrupted (Ctrl-C): kept the prices of 1 ticker(s) (AAA)" in text and "3 not refreshed" in text
    assert "Traceback" not in text


@pytest.mark.parametrize("given", [[""], [" , "], ["", ""]])
def test_empty_tickers_option_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: list[str]) -> None:
    fake = _fake()
    monkeypatch.setattr(cmd, "make_adapter", lambda ws: fake)
    home = tmp_path / "ws"
    Store(home / "store").upsert_prices(pl.DataFrame({"date": [date(2024, 1, 2)], "ticker": ["AAA"],
                                                      "close": [1.0]}))
    args = [a for g in given for a in ("--tickers", g)]
    res = CliRunner().invoke(app, ["--home", str(home), "data", "refresh", *args])
    assert res.exit_code == 1 and "no ticker given" in res.output and fake.calls == []


SCRIPT = """
import sys, time
sys.path.insert(0, {repo!r})
from tests.reliability.test_refresh_interrupts import _fake
import dynmix.cli.data_refresh as cmd
from dynmix.cli import app
fake = _fake(stall_after=0, stall_s=600.0)
cmd.make_adapter = lambda ws: fake
print("ready", flush=True)
app(["--home", {home!r}, "data", "refresh", "-t", "AAA,BBB"], standalone_mode=True)
"""


@pytest.mark.slow  # a subprocess (about 10 s on a loaded 2-core machine)
def test_ctrl_c_ends_a_stalled_refresh_within_3_seconds(tmp_path: Path) -> None:
    script = tmp_path / "stalled.py"
    script.write_text(SCRIPT.format(repo=str(REPO), home=str(tmp_path / "ws")))
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(2.0)  # the request is under way and hangs
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    took = time.monotonic() - t0
    assert took < 3.0, took
    assert proc.returncode == 130, out + err
    assert "interrupted (Ctrl-C)" in err and "Traceback" not in err
