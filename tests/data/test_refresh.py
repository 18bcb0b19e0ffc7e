"""Incremental refresh against FakeYahoo (frames shaped like yfinance 1.x). No network, no real waiting."""

from __future__ import annotations

import importlib.util
from datetime import date, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import polars as pl
import pytest

from dynmix.data.refresh import _overlap_changed, read_universe, refresh
from dynmix.data.sources.yahoo import rate_limit_error
from dynmix.data.store import Store
from dynmix.errors import DataError
from dynmix.workspace import Workspace

D0 = date(2024, 1, 2)  # first truth date (a Tuesday)
MID = date(2024, 2, 13)  # first refresh stops before this date (end is exclusive)
END = date(2024, 3, 26)  # second refresh stops before this one


@pytest.fixture(scope="module")
def yf_fake() -> ModuleType:
    spec = importlib.util.spec_from_file_location("yahoo_fake", Path(__file__).with_name("yahoo_fake.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fake(yf_fake: ModuleType) -> Any:
    return yf_fake.FakeYahoo({t: yf_fake.truth_frame(70, D0.isoformat(), seed=i)
                              for i, t in enumerate(["AAA", "BBB", "CCC"])})


@pytest.fixture
def store(home: Workspace) -> Store:
    return Store(home.store)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def run(store: Store, fake: Any, end: date, **kw: Any) -> Any:
    kw.setdefault("tickers", ["AAA", "BBB", "CCC"])
    kw.setdefault("sleep", Sleeps())
    start = kw.pop("start", date(2023, 12, 1))
    return refresh(store, fake, kw.pop("tickers"), start, end=end, progress=False, seed=0, **kw)


def truth_rows(fake: Any, ticker: str, end: date) -> pl.DataFrame:
    df = fake.truth[ticker]
    df = df[df.index < np.datetime64(end)]
    return pl.DataFrame({"date": [d.date() for d in df.index], "close": df["Close"].to_numpy()})


def test_first_download_fills_store_manifest_and_meta(store: Store, fake: Any) -> None:
    result = run(store, fake, MID)
    assert result.added == ["AAA", "BBB", "CCC"] and not result.failed
    assert fake.calls == [{"tickers": ["AAA", "BBB", "CCC"], "start": date(2023, 12, 1), "end": MID}]
    prices = store.read_prices()
    assert prices["date"].max() < MID and result.rows == prices.height
    for t in ("AAA", "BBB", "CCC"):
        got = prices.filter(pl.col("ticker") == t)
        want = truth_rows(fake, t, MID)
        assert got["date"].to_list() == want["date"].to_list()
        np.testing.assert_allclose(got["adj_close"].to_numpy(), want["close"].to_numpy(), rtol=1e-12)
    manifest = store.read_manifest()
    assert manifest["status"].to_list() == ["ok"] * 3 and manifest["source"].to_list() == ["yahoo"] * 3
    assert manifest["last_date"].to_list() == [prices["date"].max()] * 3
    assert store.read_meta()["sector"].to_list() == ["Tech"] * 3 and sorted(fake.meta_calls) == ["AAA", "BBB", "CCC"]


def test_incremental_requests_only_recent_dates(store: Store, fake: Any) -> None:
    run(store, fake, MID)
    last = store.read_prices()["date"].max()
    fake.calls.clear()
    fake.meta_calls.clear()
    result = run(store, fake, END)
    assert fake.calls == [{"tickers": ["AAA", "BBB", "CCC"], "start": last - timedelta(days=5), "end": END}]
    assert result.updated == ["AAA", "BBB", "CCC"] and not result.added and not result.redownloaded
    assert fake.meta_calls == []  # metadata only for tickers new to the store
    for t in ("AAA", "BBB", "CCC"):
        got = store.read_prices([t])
        assert got["date"].to_list() == truth_rows(fake, t, END)["date"].to_list()
    new_rows = store.read_prices().filter(pl.col("date") > last).height
    assert result.rows == new_rows > 0


def test_changed_overlap_redownloads_only_that_ticker(store: Store, fake: Any) -> None:
    run(store, fake, MID)
    before = store.read_prices(["AAA", "CCC"])
    fake.readjust("BBB", MID, 0.5)  # a 2:1 split on MID re-adjusts everything before it
    fake.calls.clear()
    result = run(store, fake, END, start=None)
    assert result.redownloaded == ["BBB"] and result.updated == ["AAA", "CCC"]
    assert fake.calls[1] == {"tickers": ["BBB"], "start": D0, "end": END}  # from its first stored date
    assert len(fake.calls) == 2
    bbb = store.read_prices(["BBB"])
    np.testing.assert_allclose(bbb["close"].to_numpy(), truth_rows(fake, "BBB", END)["close"].to_numpy())
    after = store.read_prices(["AAA", "CCC"]).filter(pl.col("date") < MID)
    assert after.equals(before)


def test_failed_ticker_keeps_old_data_and_is_listed(store: Store, fake: Any) -> None:
    run(store, fake, MID)
    old = store.read_prices(["BBB"])
    fake.dead = {"BBB"}
    fake.calls.clear()
    result = run(store, fake, END)
    assert list(result.failed) == ["BBB"] and "possibly delisted" in result.failed["BBB"]
    assert fake.calls[1]["tickers"] == ["BBB"]  # one more chance in a smaller batch
    assert store.read_prices(["BBB"]).equals(old)
    row = store.read_manifest().filter(pl.col("ticker") == "BBB").row(0, named=True)
    assert row["status"] == "failed" and "no data" in row["message"]
    assert row["last_date"] == old["date"].max() and row["rows"] == old.height
    assert store.read_prices(["AAA"])["date"].max() > MID


def test_chunk_error_is_retried_with_growing_backoff(store: Store, fake: Any) -> None:
    fake.raise_on = {1: ConnectionError("reset"), 2: TimeoutError("slow"), 3: ConnectionError("reset")}
    sleeps = Sleeps()
    result = run(store, fake, MID, sleep=sleeps, base_delay=1.0)
    assert result.added == ["AAA", "BBB", "CCC"] and result.calls == 4
    assert len(sleeps) == 3 and sleeps[0] < sleeps[1] < sleeps[2]
    assert 1.0 <= sleeps[0] < 1.25 and 2.0 <= sleeps[1] < 2.5 and 4.0 <= sleeps[2] < 5.0


def test_rate_limit_waits_long(store: Store, fake: Any) -> None:
    fake.raise_on = {1: rate_limit_error()()}
    sleeps = Sleeps()
    result = run(store, fake, MID, sleep=sleeps, rate_limit_wait=60.0)
    assert not result.failed and len(sleeps) == 1 and 60.0 <= sleeps[0] < 66.0


def test_chunks_and_exhausted_retries(store: Store, fake: Any) -> None:
    fake.raise_on = {k: ConnectionError("down") for k in range(2, 6)}  # the second chunk never succeeds
    result = run(store, fake, MID, chunk_size=2, max_retries=3)
    assert [c["tickers"] for c in fake.calls] == [["AAA", "BBB"]] + [["CCC"]] * 4
    assert result.added == ["AAA", "BBB"] and "after 4 attempt(s)" in result.failed["CCC"]
    assert store.tickers() == ["AAA", "BBB"]


def test_every_ticker_failing_says_nothing_came_back(store: Store, fake: Any) -> None:
    run(store, fake, MID)
    before = store.read_prices()
    fake.dead = {"AAA", "BBB", "CCC"}
    fake.calls.clear()
    result = run(store, fake, END)
    assert result.nothing_came_back and len(fake.calls) == 1  # no second pass when nothing came back
    assert store.read_prices().equals(before)
    assert store.read_manifest()["status"].to_list() == ["failed"] * 3


def test_single_ticker_and_new_ticker_beside_stored_ones(store: Store, fake: Any, yf_fake: ModuleType) -> None:
    run(store, fake, MID, tickers=["aaa"])
    assert store.tickers() == ["AAA"]
    fake.truth["DDD"] = yf_fake.truth_frame(70, D0.isoformat(), seed=9)
    fake.calls.clear()
    result = run(store, fake, MID, tickers=["AAA", "DDD"])
    assert result.added == ["DDD"] and result.updated == ["AAA"]
    starts = {c["start"]: c["tickers"] for c in fake.calls}
    assert starts[date(2023, 12, 1)] == ["DDD"] and len(starts) == 2


def test_metadata_failure_is_not_fatal(store: Store, fake: Any) -> None:
    del fake.meta["CCC"]
    result = run(store, fake, MID)
    assert result.meta_missing == ["CCC"] and not result.failed
    meta = store.meta_for_prices()
    assert meta.filter(pl.col("ticker") == "CCC")["sector"].item() == "Unknown"


def test_failed_write_leaves_previous_store_readable(store: Store, fake: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    run(store, fake, MID)
    before = store.read_prices()

    def boom(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store, "upsert_prices", boom)
    with pytest.raises(OSError):
        run(store, fake, END)
    assert Store(store.root).read_prices().equals(before)


def test_overlap_tolerance() -> None:
    old = pl.DataFrame({"date": [D0, MID], "close": [10.0, 20.0], "adj_close": [10.0, 20.0]})
    same = old.with_columns(pl.col("close") * (1 + 1e-9), pl.col("adj_close") * (1 + 1e-9))
    moved = old.with_columns(pl.col("close") * 0.999, pl.col("adj_close") * 0.999)
    assert not _overlap_changed(old, same)
    assert _overlap_changed(old, moved)
    assert _overlap_changed(old, same.with_columns(pl.col("date") + timedelta(days=1)))  # nothing to compare
    live = same.with_columns(pl.when(pl.col("date") == MID).then(pl.col("close") * 1.01).otherwise("close"))
    assert not _overlap_changed(old, live)  # the stored last day may have been an intraday bar


def test_bad_tickers_and_universe_files(store: Store, fake: Any, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not valid"):
        run(store, fake, MID, tickers=["AAA", "BAD TICKER"])
    path = tmp_path / "u.txt"
    path.write_text("# my universe\naapl, msft\n\nBRK-B  # class B\nno/pe\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"u\.txt, row 5"):
        read_universe(path)
    path.write_text("aapl, msft\nBRK-B # class B\naapl\n", encoding="utf-8")
    assert read_universe(path) == ["AAPL", "MSFT", "BRK-B"]
