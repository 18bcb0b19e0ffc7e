from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from dynmix.data.sources.sample import data_dir, load_sample, sample_meta, sample_prices
from dynmix.data.store import Store
from dynmix.errors import DataError

COMPANIES = {
    "Information Technology": ["AAPL", "AMD", "MSFT"],
    "Financials": ["BAC", "JPM"],
    "Consumer Discretionary": ["BBY", "HD"],
    "Energy": ["CVX", "RRC", "XOM"],
    "Industrials": ["GE"],
    "Health Care": ["JNJ", "LLY", "MRK", "PFE", "UNH"],
    "Consumer Staples": ["KO", "PEP", "PG", "WMT"],
}
ETFS = ["MTUM", "QUAL", "SIZE", "USMV", "VLUE"]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store(tmp_path_factory.mktemp("sample") / "store")
    load_sample(store)
    return store


def test_universe_and_dates(loaded: Store) -> None:
    prices = loaded.read_prices()
    companies = sorted(t for ts in COMPANIES.values() for t in ts)
    assert len(companies) == 20
    assert loaded.tickers() == sorted([*companies, "^GSPC", *ETFS])
    assert prices["date"].min() >= dt.date(2005, 1, 1)
    assert prices["date"].max() == dt.date(2022, 12, 28)
    etf_start = prices.filter(pl.col("ticker").is_in(ETFS))["date"].min()
    assert etf_start is not None and etf_start >= dt.date(2014, 1, 1)
    # one price a day: every price field is that price, no volume
    assert (prices["open"] == prices["close"]).all() and (prices["high"] == prices["adj_close"]).all()
    assert (prices["low"] == prices["close"]).all() and prices["volume"].null_count() == prices.height
    assert prices.filter(pl.col("ticker") == "AAPL").height == prices.filter(pl.col("ticker") == "^GSPC").height


def test_sectors_and_asset_types(loaded: Store) -> None:
    meta = loaded.meta_for_prices()
    sector = dict(zip(meta["ticker"], meta["sector"], strict=True))
    kind = dict(zip(meta["ticker"], meta["asset_type"], strict=True))
    for name, tickers in COMPANIES.items():
        for t in tickers:
            assert sector[t] == name, t
            assert kind[t] == "equity"
    assert sector["^GSPC"] == "Index" and kind["^GSPC"] == "index"
    assert all(sector[t] == "Factor ETF" and kind[t] == "etf" for t in ETFS)
    names = dict(zip(meta["ticker"], meta["name"], strict=True))
    assert names["MSFT"] == "Microsoft Corporation"
    assert all(n and n != t for t, n in names.items())  # real names, not the ticker echoed back


def test_manifest_rows(loaded: Store) -> None:
    man = loaded.read_manifest()
    assert man.height == 26
    assert set(man["source"]) == {"sample"} and set(man["status"]) == {"ok"}
    aapl = man.filter(pl.col("ticker") == "AAPL").row(0, named=True)
    assert aapl["rows"] == loaded.read_prices(["AAPL"]).height


def test_idempotent_byte_for_byte(store: Store) -> None:
    first = load_sample(store)
    before = {p.name: p.read_bytes() for p in store.root.glob("*.parquet")}  # data files; *.prev: kept versions
    second = load_sample(store)
    after = {p.name: p.read_bytes() for p in store.root.glob("*.parquet")}
    assert set(before) == {"prices.parquet", "meta.parquet", "manifest.parquet"}
    assert after == before
    assert first.changed and not second.changed
    assert second.rows == first.rows == store.read_prices().height


def test_start_window_replaces_sample_rows(store: Store) -> None:
    short = load_sample(store, start="2020-01-01")
    assert short.first_date is not None and short.first_date >= dt.date(2020, 1, 1)
    assert store.read_prices()["date"].min() >= dt.date(2020, 1, 1)
    full = load_sample(store)
    assert full.changed and store.read_prices()["date"].min() == dt.date(2005, 1, 3)


def test_meta_file_shipped_in_repo() -> None:
    path = data_dir() / "sp500_meta.csv"
    assert path.is_file()
    assert Path(path).read_text().splitlines()[0] == "ticker,name,sector,industry,asset_type"
    meta = sample_meta()
    assert meta.height == 26 and meta["industry"].null_count() == 0
    assert meta.filter(pl.col("ticker") == "JPM")["industry"].item() == "Banks"


@pytest.mark.parametrize("start", ["bogus", "2023-06-01"])
def test_bad_start_is_a_data_error(start: str) -> None:
    with pytest.raises(DataError, match="expected"):
        sample_prices(start)
