"""`dynmix data refresh` with FakeYahoo injected through `make_adapter` (no network)."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

import dynmix.cli.data_refresh as cmd
from dynmix.cli.app import app
from dynmix.data.store import Store
from dynmix.workspace import Workspace

FAKE_PATH = Path(__file__).parents[1] / "data" / "yahoo_fake.py"


@pytest.fixture(scope="module")
def yf_fake() -> ModuleType:
    spec = importlib.util.spec_from_file_location("yahoo_fake", FAKE_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fake(yf_fake: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Any:
    f = yf_fake.FakeYahoo({t: yf_fake.truth_frame(40, "2024-01-02", seed=i) for i, t in enumerate(["AAA", "BBB"])})
    monkeypatch.setattr(cmd, "make_adapter", lambda ws: f)
    return f


def invoke(home: Workspace, *args: str) -> Any:
    return CliRunner().invoke(app, ["--home", str(home.home), "data", "refresh", *args])


def text(res: Any) -> str:
    return " ".join(res.output.split())  # rich wraps long lines at the terminal width


def test_refresh_then_incremental_from_the_store(home: Workspace, fake: Any) -> None:
    res = invoke(home, "--tickers", "aaa", "-t", "BBB", "--start", "2023-06-01")
    assert res.exit_code == 0, res.output
    assert "refresh summary" in text(res) and "added" in text(res)
    assert fake.calls[0]["tickers"] == ["AAA", "BBB"] and str(fake.calls[0]["start"]) == "2023-06-01"
    store = Store(home.store)
    assert store.tickers() == ["AAA", "BBB"] and store.read_prices().height == 80
    res = invoke(home)  # default universe: the tickers already in the store
    assert res.exit_code == 0, res.output
    assert fake.calls[-1]["tickers"] == ["AAA", "BBB"] and fake.calls[-1]["start"] > fake.calls[0]["start"]
    assert "updated" in text(res)


def test_offline_exits_1_with_a_clear_message(home: Workspace, fake: Any) -> None:
    assert invoke(home, "--tickers", "AAA").exit_code == 0  # some good data first: offline must keep it
    before = Store(home.store).read_prices()
    fake.dead = {"AAA", "BBB"}
    t0 = time.perf_counter()
    res = invoke(home, "--tickers", "AAA,BBB")
    assert time.perf_counter() - t0 < 10.0  # fails fast: no retry loop with long sleeps (about 2 s measured)
    assert Store(home.store).read_prices().equals(before)  # the store intact
    assert res.exit_code == 1
    assert "are you offline? last good data kept" in text(res)
    assert isinstance(res.exception, SystemExit) and "Traceback" not in res.output
    manifest = Store(home.store).read_manifest()
    assert manifest["status"].to_list() == ["failed", "failed"]


def test_empty_store_uses_the_sample_universe(home: Workspace, fake: Any) -> None:
    fake.truth["AAPL"] = fake.truth.pop("AAA")
    res = invoke(home)
    expected = Path(cmd.DEFAULT_UNIVERSE).read_text(encoding="utf-8").split()
    assert len(expected) == 20 and set(expected) == set(cmd.SAMPLE_TICKERS)
    assert sorted(fake.calls[0]["tickers"]) == sorted(expected)
    assert res.exit_code == 0, res.output
    assert "failed" in text(res) and "AAPL" in Store(home.store).tickers()
    failed = Store(home.store).read_manifest().filter(pl.col("status") == "failed")
    assert failed.height == 19


def test_universe_file_with_a_bad_line(home: Workspace, fake: Any, tmp_path: Path) -> None:
    path = tmp_path / "universe.txt"
    path.write_text("AAA\nnot a ticker\n", encoding="utf-8")
    res = invoke(home, "--universe", str(path))
    assert res.exit_code == 1 and "row 2" in text(res) and fake.calls == []
