from __future__ import annotations

import polars as pl
import pytest

from dynmix.data.schema import validate_prices
from dynmix.data.store import Store
from dynmix.errors import DataError


def test_write_read_round_trip(store: Store, prices: pl.DataFrame) -> None:
    assert not store.exists() and store.read_prices().height == 0
    shuffled = prices.sample(fraction=1.0, shuffle=True, seed=1)
    store.write_prices(shuffled)
    back = store.read_prices()
    assert back.equals(validate_prices(prices))
    assert back.schema == validate_prices(prices).schema
    assert store.tickers() == ["AAA", "BBB", "CCC"]
    assert store.read_prices(["BBB"])["ticker"].unique().to_list() == ["BBB"]


def test_write_refuses_bad_rows_and_keeps_old_table(store: Store, prices: pl.DataFrame, snapshot) -> None:
    store.write_prices(prices)
    before = snapshot(store)
    bad = prices.with_columns(pl.when(pl.int_range(pl.len()) == 7).then(-1.0).otherwise(pl.col("close")).alias("close"))
    with pytest.raises(DataError, match="row 8"):
        store.write_prices(bad, file="x.csv")
    assert snapshot(store) == before


def test_upsert_new_rows_win_and_other_tickers_stay(store: Store, prices: pl.DataFrame) -> None:
    store.write_prices(prices)
    aaa = prices.filter(pl.col("ticker") == "AAA")
    new = aaa.tail(10).with_columns(pl.col("close") * 2)
    merged = store.upsert_prices(new)
    back = store.read_prices()
    assert back.equals(merged)
    assert back.height == prices.height
    got = back.filter(pl.col("ticker") == "AAA").tail(10)["close"]
    assert got.to_list() == new["close"].to_list()
    assert back.filter(pl.col("ticker") == "BBB").equals(validate_prices(prices.filter(pl.col("ticker") == "BBB")))


def test_upsert_replace_tickers_drops_old_history(store: Store, prices: pl.DataFrame) -> None:
    store.write_prices(prices)
    fresh = prices.filter(pl.col("ticker") == "AAA").tail(5)
    store.upsert_prices(fresh, replace_tickers=["AAA"])
    back = store.read_prices()
    assert back.filter(pl.col("ticker") == "AAA").height == 5
    assert back.filter(pl.col("ticker") == "CCC").height == 300


def test_metadata_for_unpriced_ticker_kept_but_not_shown(store: Store, prices: pl.DataFrame) -> None:
    store.write_prices(prices)
    store.upsert_meta(pl.DataFrame({"ticker": ["AAA"], "sector": ["Tech"]}))
    store.upsert_meta(pl.DataFrame({"ticker": ["BBB", "ZZZ"], "sector": ["Energy", "X"]}), file="m.csv")
    assert "ZZZ" in store.read_meta()["ticker"].to_list()  # a sector map may come before its prices
    meta = store.meta_for_prices()
    assert dict(zip(meta["ticker"], meta["sector"], strict=True)) == {"AAA": "Tech", "BBB": "Energy",
                                                                      "CCC": "Unknown"}


def test_manifest_one_row_per_ticker(store: Store, prices: pl.DataFrame) -> None:
    store.write_prices(prices)
    store.upsert_manifest(store.manifest_from_prices("csv"))
    store.upsert_manifest(store.manifest_from_prices("yahoo", ["AAA"]))
    man = store.read_manifest()
    assert man["ticker"].to_list() == ["AAA", "BBB", "CCC"]
    assert dict(zip(man["ticker"], man["source"], strict=True)) == {"AAA": "yahoo", "BBB": "csv", "CCC": "csv"}
    assert man["rows"].to_list() == [300, 300, 300]


def test_write_is_atomic(store: Store, prices: pl.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    store.write_prices(prices)
    before = store.prices_path.read_bytes()
    real = pl.DataFrame.write_parquet

    def crash_mid_write(self: pl.DataFrame, file, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        real(self.head(3), file, *args, **kwargs)  # something reaches the temp file, then the disk "fails"
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", crash_mid_write)
    with pytest.raises(OSError, match="disk full"):
        store.upsert_prices(prices.with_columns(pl.col("close") * 3))
    monkeypatch.undo()
    assert store.prices_path.read_bytes() == before
    assert store.read_prices().equals(validate_prices(prices))
    assert sorted(p.name for p in store.root.iterdir()) == ["prices.parquet"]


def test_extra_tables(store: Store) -> None:
    assert store.read_extra("truth") is None
    df = pl.DataFrame({"ticker": ["A"], "sector": [1]})
    store.write_extra("truth", df)
    assert store.read_extra("truth").equals(df)  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        store.extra_path("../escape")
