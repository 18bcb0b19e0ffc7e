"""Files as users have them: any row order, aliases, date formats, delimiters, BOM, duplicates, dry run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynmix.data.sources.csv import import_file
from dynmix.data.store import Store
from dynmix.errors import DataError

ROWS = [("2020-01-02", "AAA", 10.0), ("2020-01-03", "AAA", 11.0), ("2020-01-06", "AAA", 12.5),
        ("2020-01-02", "BBB", 20.0), ("2020-01-06", "BBB", 21.0)]


def _expected() -> pl.DataFrame:
    return pl.DataFrame({"ticker": [r[1] for r in ROWS], "date": [dt.date.fromisoformat(r[0]) for r in ROWS],
                         "close": [r[2] for r in ROWS]}).sort("ticker", "date")


def _stored(store: Store) -> pl.DataFrame:
    return store.read_prices().select("ticker", "date", "close").sort("ticker", "date")


def _fmt(day: str, how: str) -> str:
    d = dt.date.fromisoformat(day)
    return {"iso": day, "compact": d.strftime("%Y%m%d"), "stamp": f"{day}T16:00:00-05:00",
            "mdy": d.strftime("%m/%d/%Y"), "dmy": d.strftime("%d/%m/%Y")}[how]


@pytest.mark.parametrize("how", ["iso", "compact", "stamp"])
@pytest.mark.parametrize(("date_col", "ticker_col", "close_col"),
                         [("Date", "Symbol", "Close"), ("timestamp", "ticker", "close"),
                          ("Datetime", "SYMBOL", "close")])
def test_aliases_and_date_formats_round_trip(store: Store, write_file, how, date_col, ticker_col,
                                             close_col) -> None:
    text = f"{date_col},{ticker_col},{close_col}\n" + "".join(f"{_fmt(d, how)},{t},{c}\n" for d, t, c in ROWS)
    import_file(store, write_file("p.csv", text))
    assert _stored(store).equals(_expected())


def test_adj_close_aliases(store: Store, write_file) -> None:
    for name in ("Adj Close", "adjclose", "adj_close"):
        text = f"Date,Symbol,Close,{name}\n2020-01-02,AAA,10,9\n"
        import_file(store, write_file("p.csv", text))
        assert store.read_prices()["adj_close"].to_list() == [9.0]


def test_slashed_dates_resolved_only_by_the_file(store: Store, write_file) -> None:
    day_first = "date,ticker,close\n02/01/2020,AAA,1\n13/01/2020,AAA,2\n"  # 13 settles it: day first
    import_file(store, write_file("d.csv", day_first))
    assert store.read_prices()["date"].to_list() == [dt.date(2020, 1, 2), dt.date(2020, 1, 13)]
    ambiguous = write_file("a.csv", "date,ticker,close\n02/01/2020,BBB,1\n")
    with pytest.raises(DataError, match="--date-format"):
        import_file(store, ambiguous)
    import_file(store, ambiguous, date_format="%m/%d/%Y")
    assert store.read_prices(["BBB"])["date"].to_list() == [dt.date(2020, 2, 1)]


@pytest.mark.parametrize("sep", [",", ";", "\t"])
@pytest.mark.parametrize("bom", [False, True])
def test_delimiters_and_bom(store: Store, tmp_path: Path, sep: str, bom: bool) -> None:
    text = sep.join(("Date", "Symbol", "Close")) + "\n" + "".join(sep.join((d, t, str(c))) + "\n"
                                                                  for d, t, c in ROWS)
    path = tmp_path / "p.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    import_file(store, path)
    assert _stored(store).equals(_expected())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(list(range(len(ROWS)))), wide=st.booleans())
def test_any_row_order_imports_the_same(tmp_path: Path, order: list[int], wide: bool) -> None:
    rows = [ROWS[i] for i in order]
    if wide:
        days = list(dict.fromkeys(r[0] for r in rows))
        cell = {(d, t): c for d, t, c in rows}
        text = "date,AAA,BBB\n" + "".join(f"{d},{cell.get((d, 'AAA'), '')},{cell.get((d, 'BBB'), '')}\n"
                                          for d in days)
    else:
        text = "date,ticker,close\n" + "".join(f"{d},{t},{c}\n" for d, t, c in rows)
    root = tmp_path / f"s{'-'.join(map(str, order))}{wide}"
    root.mkdir()
    (root / "p.csv").write_text(text)
    store = Store(root / "store")
    import_file(store, root / "p.csv")
    assert _stored(store).equals(_expected())


def test_identical_duplicates_collapse_with_a_note(store: Store, write_file) -> None:
    text = "date,ticker,close\n" + "".join(f"{d},{t},{c}\n" for d, t, c in ROWS + ROWS[:2])
    summary = import_file(store, write_file("p.csv", text))
    assert _stored(store).equals(_expected())
    assert any("2 identical duplicate rows dropped" in n for n in summary.notes)


def test_metadata_wider_than_prices_and_repeated_rows_are_kept(store: Store, write_file) -> None:
    prices = write_file("p.csv", "date,ticker,close\n2020-01-02,AAA,1\n")
    meta = write_file("m.csv", "Symbol,Sector\nAAA,Energy\nAAA,Energy\nZZZ,Utilities\n")
    summary = import_file(store, prices, meta)
    assert dict(zip(*store.read_meta().select("ticker", "sector"), strict=True)) == {"AAA": "Energy",
                                                                                      "ZZZ": "Utilities"}
    assert any("without prices yet (ZZZ)" in n for n in summary.notes)
    assert any("1 identical duplicate metadata row dropped" in n for n in summary.notes)
    import_file(store, write_file("z.csv", "date,ticker,close\n2020-01-02,ZZZ,5\n"))
    assert dict(zip(*store.meta_for_prices().select("ticker", "sector"), strict=True))["ZZZ"] == "Utilities"


def test_dry_run_writes_nothing_and_says_what_would_change(store: Store, write_file, snapshot) -> None:
    import_file(store, write_file("a.csv", "date,ticker,close\n2020-01-02,AAA,1\n2020-01-03,AAA,2\n"))
    before = snapshot(store)
    path = write_file("b.csv", "date,ticker,close\n2020-01-02,AAA,1\n2020-01-03,AAA,3\n2020-01-06,AAA,4\n")
    summary = import_file(store, path, dry_run=True)
    assert snapshot(store) == before
    assert summary.dry_run and "1 new rows, 1 replacing stored values, 1 unchanged" in summary.notes[-1]
