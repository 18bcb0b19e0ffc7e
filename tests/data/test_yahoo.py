"""The yfinance adapter and the conversion of yfinance-shaped frames. No network: yf.download is never reached."""

from __future__ import annotations

import importlib.util
import logging
import subprocess
import sys
import warnings
from datetime import date
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import polars as pl
import pytest

from dynmix.data.sources.yahoo import NO_DATA, YahooAdapter, meta_from_info, rate_limit_error, to_long
from dynmix.errors import DataError


@pytest.fixture(scope="module")
def fake() -> ModuleType:
    spec = importlib.util.spec_from_file_location("yahoo_fake", Path(__file__).with_name("yahoo_fake.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fake_frames_match_yfinance_own_assembly(fake: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """yfinance's real download code (per-ticker fetch replaced) builds the same frame as the fake."""
    import yfinance.multi as multi

    per_ticker = {"AAA": fake.truth_frame(10, seed=1), "BBB": fake.truth_frame(8, "2024-01-04", seed=2)}

    def one(ctx, ticker, *args, **kwargs):  # type: ignore[no-untyped-def]
        with ctx.lock:
            ctx.dfs[ticker] = per_ticker[ticker].copy() if ticker in per_ticker else fake.failed_frame()

    monkeypatch.setattr(multi, "_download_one", one)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Pandas4Warning inside yfinance
        real = multi.download(["bbb", "aaa", "ZZZ"], start="2024-01-01", threads=False, progress=False)
    mine = fake.assemble({t: per_ticker.get(t, fake.failed_frame()) for t in ("AAA", "BBB", "ZZZ")})
    pd.testing.assert_frame_equal(real, mine)
    assert list(real.columns.names) == ["Price", "Ticker"]
    assert list(real.columns.get_level_values("Price").unique()) == ["Adj Close", "Close", "High", "Low", "Open",
                                                                     "Volume"]


def test_to_long_multi_ticker_with_failures(fake: ModuleType) -> None:
    a, b = fake.truth_frame(10, seed=1), fake.truth_frame(7, "2024-01-05", seed=2)
    frame = fake.assemble({"AAA": a, "BBB": b, "DEAD": fake.failed_frame()})
    tables, failures = to_long(frame, ["aaa", "BBB", "DEAD", "GONE"])
    assert set(tables) == {"AAA", "BBB"}
    assert failures["DEAD"] == NO_DATA and "missing" in failures["GONE"]
    bb = tables["BBB"]
    assert bb.height == 7  # the union index padded BBB with NaN rows: dropped
    assert bb["date"].to_list() == [d.date() for d in b.index]
    np.testing.assert_allclose(bb["adj_close"].to_numpy(), b["Close"].to_numpy())
    np.testing.assert_allclose(bb["close"].to_numpy(), b["Close"].to_numpy())
    np.testing.assert_allclose(bb["open"].to_numpy(), b["Open"].to_numpy())
    assert bb.schema["date"] == pl.Date and bb["ticker"].unique().to_list() == ["BBB"]


def test_to_long_single_ticker_multiindex_and_flat(fake: ModuleType) -> None:
    a = fake.truth_frame(5, seed=3)
    multi = fake.assemble({"AAA": a})
    assert isinstance(multi.columns, pd.MultiIndex)
    flat = multi.droplevel(1, axis=1).rename_axis(None, axis=1)  # what multi_level_index=False gives
    t1, f1 = to_long(multi, ["AAA"])
    t2, f2 = to_long(flat, ["AAA"])
    assert not f1 and not f2
    assert t1["AAA"].equals(t2["AAA"]) and t1["AAA"].height == 5
    with pytest.raises(DataError, match="flat columns"):
        to_long(flat, ["AAA", "BBB"])


def test_to_long_every_ticker_failed_gives_empty_frame(fake: ModuleType) -> None:
    frame = fake.assemble({"AAA": fake.failed_frame(), "BBB": fake.failed_frame()})
    assert frame.empty
    tables, failures = to_long(frame, ["AAA", "BBB"])
    assert tables == {} and set(failures) == {"AAA", "BBB"}


def test_to_long_cleans_yahoo_quirks(fake: ModuleType) -> None:
    a = fake.truth_frame(6, seed=4)
    a.iloc[1, a.columns.get_loc("Open")] = 0.0  # Yahoo's zero open
    a.iloc[2, a.columns.get_loc("Close")] = np.nan  # a row without a close
    a.iloc[3, a.columns.get_loc("Volume")] = np.nan
    a.index = a.index.tz_localize("America/New_York")
    tables, failures = to_long(fake.assemble({"AAA": a}), ["AAA"])
    df = tables["AAA"]
    assert not failures and df.height == 5
    assert df["open"][1] == pytest.approx(a["Close"].iloc[1])
    assert df["volume"].null_count() == 1
    assert df["date"][0] == date(2024, 1, 2)


def test_meta_from_info_maps_quote_types() -> None:
    row = meta_from_info("aapl", {"longName": "Apple Inc.", "sector": "Technology", "industry": "Consumer "
                                  "Electronics", "quoteType": "EQUITY", "exchange": "NMS"})
    assert row["ticker"] == "AAPL" and row["asset_type"] == "equity" and row["exchange"] == "NMS"
    assert meta_from_info("SPY", {"shortName": "SPDR", "quoteType": "ETF"})["asset_type"] == "etf"
    idx = meta_from_info("^GSPC", {"quoteType": "INDEX"})
    assert idx["asset_type"] == "index" and idx["sector"] == "Unknown" and idx["name"] == "^GSPC"
    assert meta_from_info("X", {})["sector"] == "Unknown"


def test_adapter_calls_download_as_documented(fake: ModuleType, monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    import yfinance as yf

    seen: dict[str, object] = {}

    def download(tickers, **kwargs):  # type: ignore[no-untyped-def]
        seen.update(kwargs, tickers=tickers)
        logging.getLogger("yfinance").error("['DEAD']: YFPricesMissingError('possibly delisted')")
        return fake.assemble({"AAA": fake.truth_frame(3), "DEAD": fake.failed_frame()})

    monkeypatch.setattr(yf, "download", download)
    monkeypatch.setattr(yf, "set_tz_cache_location", lambda d: seen.update(cache=d))
    adapter = YahooAdapter(tmp_path / "cache" / "yfinance", timeout=7)
    frame = adapter.fetch_prices(["AAA", "DEAD"], date(2024, 1, 1), date(2024, 2, 1))
    assert seen["tickers"] == ["AAA", "DEAD"] and seen["start"] == "2024-01-01" and seen["end"] == "2024-02-01"
    assert seen["auto_adjust"] is True and seen["group_by"] == "column" and seen["multi_level_index"] is True
    assert seen["progress"] is False and seen["threads"] is True and seen["timeout"] == 7
    assert seen["cache"] == str(tmp_path / "cache" / "yfinance") and (tmp_path / "cache" / "yfinance").is_dir()
    assert adapter.last_errors == {"DEAD": "YFPricesMissingError('possibly delisted')"}
    assert isinstance(frame.columns, pd.MultiIndex)


def test_adapter_turns_a_logged_rate_limit_into_the_exception(fake: ModuleType,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import yfinance as yf

    def download(tickers, **kwargs):  # type: ignore[no-untyped-def]
        logging.getLogger("yfinance").error(
            "['AAA', 'BBB']: YFRateLimitError('Too Many Requests. Rate limited. Try after a while.')")
        return fake.assemble({"AAA": fake.failed_frame(), "BBB": fake.failed_frame()})

    monkeypatch.setattr(yf, "download", download)
    with pytest.raises(rate_limit_error()):
        YahooAdapter().fetch_prices(["AAA", "BBB"], date(2024, 1, 1), None)


def test_importing_dynmix_does_not_import_yfinance_nor_pandas() -> None:
    code = ("import sys, dynmix, dynmix.cli, dynmix.data.fetch, dynmix.data.refresh, dynmix.data.sources.yahoo; "
            "assert 'yfinance' not in sys.modules, 'yfinance imported'; "
            "assert 'pandas' not in sys.modules, 'pandas imported'")  # a command's cold start stays short
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
