from __future__ import annotations

import datetime as dt

import polars as pl

from dynmix.data.status import COVERAGE_SCHEMA, LoadSummary, coverage, summary_line
from dynmix.data.store import Store, utcnow

D = [dt.date(2021, 1, d) for d in (4, 5, 6, 7, 8, 11, 12)]


def _rows(ticker: str, dates: list[dt.date]) -> pl.DataFrame:
    return pl.DataFrame({"date": dates, "ticker": [ticker] * len(dates), "close": [1.0 + i for i in range(len(dates))]})


def test_empty_store(store: Store) -> None:
    cov = coverage(store)
    assert cov.height == 0 and cov.schema == pl.Schema(COVERAGE_SCHEMA)
    assert summary_line(cov) == "the store is empty"


def test_missing_days_against_union_calendar(store: Store) -> None:
    store.write_prices(pl.concat([
        _rows("FULL", D),
        _rows("GAPS", [D[0], D[2], D[3], D[6]]),  # misses D[1], D[4], D[5]
        _rows("LATE", D[4:]),  # starts late: days before its first date are not missing
        _rows("ENDS", D[:2]),
    ]))
    store.upsert_meta(pl.DataFrame({"ticker": ["FULL"], "sector": ["Energy"], "asset_type": ["etf"]}))
    store.upsert_manifest(store.manifest_from_prices("csv"))
    cov = coverage(store)
    assert cov.schema == pl.Schema(COVERAGE_SCHEMA)
    got = {r["ticker"]: r for r in cov.iter_rows(named=True)}
    assert {t: got[t]["missing_days"] for t in got} == {"ENDS": 0, "FULL": 0, "GAPS": 3, "LATE": 0}
    assert got["GAPS"]["rows"] == 4 and got["GAPS"]["first_date"] == D[0] and got["GAPS"]["last_date"] == D[6]
    assert got["FULL"]["sector"] == "Energy" and got["FULL"]["asset_type"] == "etf"
    assert got["LATE"]["sector"] == "Unknown" and got["LATE"]["asset_type"] == "equity"
    assert set(cov["source"]) == {"csv"} and set(cov["status"]) == {"ok"}
    line = summary_line(cov)
    assert "4 tickers" in line and "16 rows" in line and "3 missing days" in line and "0 failed" in line


def test_failed_ticker_without_prices_is_listed(store: Store) -> None:
    store.write_prices(_rows("AAA", D))
    store.upsert_manifest(pl.DataFrame({
        "ticker": ["AAA", "BAD"], "source": ["yahoo", "yahoo"], "status": ["ok", "failed"],
        "message": ["", "no data returned"], "last_refresh": [utcnow(), utcnow()],
    }))
    cov = coverage(store)
    bad = cov.filter(pl.col("ticker") == "BAD").row(0, named=True)
    assert bad["rows"] == 0 and bad["status"] == "failed" and bad["message"] == "no data returned"
    assert bad["first_date"] is None
    assert "1 failed" in summary_line(cov)


def test_ticker_without_manifest_row(store: Store) -> None:
    store.write_prices(_rows("AAA", D))
    row = coverage(store).row(0, named=True)
    assert row["source"] is None and row["status"] == "ok" and row["last_refresh"] is None


def test_load_summary_line() -> None:
    s = LoadSummary.of("csv", _rows("AAA", D), meta_rows=1)
    assert s.line() == "csv: 1 ticker, 7 rows, 2021-01-04 → 2021-01-12, metadata for 1 ticker"
    assert "nothing rewritten" in LoadSummary.of("sample", _rows("A", D), changed=False).line()
