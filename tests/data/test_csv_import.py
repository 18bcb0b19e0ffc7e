from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynmix.data.schema import validate_prices
from dynmix.data.sources.csv import import_file
from dynmix.data.store import Store
from dynmix.errors import DataError

GOOD = "date,ticker,close\n2020-01-02,AAA,10\n2020-01-03,AAA,11\n2020-01-02,BBB,5\n"


def test_long_csv_case_insensitive_columns(store: Store, write_file) -> None:
    path = write_file("long.csv", " Date ,TICKER, Close ,Open,VOLUME\n"
                                  "2020-01-02, aaa ,10.5,10,100\n2020-01-03,aaa,11,,\n2020-01-02,bbb,5,5.5,0\n")
    summary = import_file(store, path)
    assert summary.tickers == ["AAA", "BBB"] and summary.rows == 3 and summary.source == "csv"
    back = store.read_prices()
    aaa = back.filter(pl.col("ticker") == "AAA")
    assert aaa["close"].to_list() == [10.5, 11.0]
    assert aaa["open"].to_list() == [10.0, 11.0]  # empty open falls back to close
    assert aaa["high"].to_list() == [10.5, 11.0] and aaa["adj_close"].to_list() == [10.5, 11.0]
    assert aaa["volume"].to_list() == [100.0, None]
    man = store.read_manifest()
    assert set(man["source"]) == {"csv"} and man["rows"].to_list() == [2, 1]
    assert store.meta_for_prices()["sector"].to_list() == ["Unknown", "Unknown"]


def test_wide_csv_skips_empty_cells(store: Store, write_file) -> None:
    path = write_file("wide.csv", "DATE,msft,^gspc\n2020-01-02,100,3000\n2020-01-03,,3010\n2020-01-06,101,3020\n")
    import_file(store, path)
    back = store.read_prices()
    assert store.tickers() == ["MSFT", "^GSPC"]
    assert back.filter(pl.col("ticker") == "MSFT")["date"].to_list() == [dt.date(2020, 1, 2), dt.date(2020, 1, 6)]
    assert back.filter(pl.col("ticker") == "^GSPC")["close"].to_list() == [3000.0, 3010.0, 3020.0]


def test_parquet_long_and_wide(store: Store, tmp_path: Path) -> None:
    long = pl.DataFrame({
        "Date": [dt.datetime(2021, 3, 1), dt.datetime(2021, 3, 2)], "Ticker": ["x1", "X1"], "CLOSE": [1.5, 1.6],
    })
    long.write_parquet(tmp_path / "long.parquet")
    wide = pl.DataFrame({"date": [dt.date(2021, 3, 1), dt.date(2021, 3, 2)], "Y2": [7, 8]})
    wide.write_parquet(tmp_path / "wide.pq")
    import_file(store, tmp_path / "long.parquet")
    import_file(store, tmp_path / "wide.pq")
    back = store.read_prices()
    assert back["ticker"].to_list() == ["X1", "X1", "Y2", "Y2"]
    assert back["close"].to_list() == [1.5, 1.6, 7.0, 8.0]
    assert back["date"].dtype == pl.Date


def test_parquet_bad_row_is_named(store: Store, tmp_path: Path) -> None:
    pl.DataFrame({"date": ["2021-03-01", "2021-03-02"], "ticker": ["A", "A"], "close": [1.0, 0.0]}).write_parquet(
        tmp_path / "bad.parquet")
    with pytest.raises(DataError, match="row 2") as e:
        import_file(store, tmp_path / "bad.parquet")
    assert e.value.row == 2 and not store.exists()


def test_metadata_and_reimport_upserts(store: Store, write_file) -> None:
    import_file(store, write_file("a.csv", GOOD))
    meta = write_file("meta.csv", "Ticker,Sector,Name\naaa,Technology,Triple A\nccc,,\n")
    path = write_file("b.csv", "date,ticker,close\n2020-01-03,AAA,12\n2020-01-06,AAA,13\n2020-01-02,CCC,1\n")
    summary = import_file(store, path, meta)
    assert summary.meta_rows == 2
    back = store.read_prices()
    assert back.filter(pl.col("ticker") == "AAA")["close"].to_list() == [10.0, 12.0, 13.0]  # new rows win
    assert back.height == 5
    meta_df = store.meta_for_prices()
    assert meta_df.filter(pl.col("ticker") == "AAA").row(0, named=True)["name"] == "Triple A"
    assert dict(zip(meta_df["ticker"], meta_df["sector"], strict=True)) == {
        "AAA": "Technology", "BBB": "Unknown", "CCC": "Unknown"}


def test_metadata_may_name_tickers_already_stored(store: Store, write_file) -> None:
    import_file(store, write_file("a.csv", GOOD))
    import_file(store, write_file("c.csv", "date,ticker,close\n2020-01-02,CCC,1\n"),
                write_file("m.csv", "ticker,sector\nBBB,Energy\n"))
    assert store.read_meta()["sector"].to_list() == ["Energy"]


BAD = [
    ("empty", "", None, "empty"),
    ("header only", "date,ticker,close\n", None, "no data rows"),
    ("missing column", "date,ticker,open\n2020-01-02,A,1\n", 1, "close"),
    ("no ticker column", "date,close\n2020-01-02,1\n", 1, "ticker"),
    ("conflicting duplicate", "date,ticker,close\n2020-01-02,A,1\n2020-01-03,A,2\n2020-01-03,A,3\n", 4,
     "rows 3 and 4 differ (close 2.0 vs 3.0)"),
    ("zero price", "date,ticker,close\n2020-01-02,A,1\n2020-01-03,A,0\n", 3, "close = 0.0"),
    ("negative open", "date,ticker,close,open\n2020-01-02,A,1,1\n2020-01-03,A,2,-1\n", 3, "open = -1.0"),
    ("empty close", "date,ticker,close\n2020-01-02,A,1\n2020-01-03,A,\n", 3, "close is empty"),
    ("text price", "date,ticker,close\n2020-01-02,A,1\n2020-01-03,A,n/a\n", 3, "expected a number"),
    ("bad volume", "date,ticker,close,volume\n2020-01-02,A,1,-5\n", 2, "volume"),
    ("bad date", "date,ticker,close\n2020-01-02,A,1\nyesterday,A,1\n", 3, "YYYY-MM-DD"),
    ("ambiguous date", "date,ticker,close\n03/01/2020,A,1\n", None, "--date-format"),
    ("year 1", "date,ticker,close\n0001-01-01,A,1\n", 2, "between 1900-01-01 and today"),
    ("year 9999", "date,ticker,close\n2020-01-02,A,1\n9999-12-31,A,1\n", 3, "between 1900-01-01 and today"),
    ("huge cell", "date,ticker,close\n2020-01-02,A," + "9x" * 50_000 + "\n", 2, "(100,000 characters)"),
    ("impossible date", "date,ticker,close\n2020-02-30,A,1\n", 2, "YYYY-MM-DD"),
    ("path ticker", "date,ticker,close\n2020-01-02,A,1\n2020-01-02,../x,1\n", 3, "'../X'"),
    ("dots ticker", "date,ticker,close\n2020-01-02,..,1\n", 2, "'..'"),
    ("too many fields", "date,ticker,close\n2020-01-02,A,1\n2020-01-03,A,1,9\n", 3, "4 fields"),
    ("open quote", 'date,ticker,close\n2020-01-02,A,1\n2020-01-03,"A,1\n', 3, "malformed"),
    ("duplicate header", "date,ticker,close,CLOSE\n2020-01-02,A,1,1\n", 1, "twice"),
    ("wide bad name", "date,AAA,b/c\n2020-01-02,1,2\n", 1, "'B/C'"),
    ("wide text cell", "date,AAA\n2020-01-02,1\n2020-01-03,x\n", 3, "AAA = 'x'"),
    ("wide duplicate date", "date,AAA\n2020-01-02,1\n2020-01-02,2\n", 3, "duplicate"),
    ("blank lines kept in count", "date,ticker,close\n2020-01-02,A,1\n\n2020-01-03,A,-1\n", 4, "close"),
    ("leading blank lines", "\n\ndate,ticker,close\n2020-01-02,A,1\n2020-01-03,A,0\n", 5, "close = 0.0"),
    ("open quote after blank", '\ndate,ticker,close\n2020-01-02,A,1\n2020-01-03,"A,1\n', 4, "malformed"),
    ("quoted newline", 'date,ticker,close\n2020-01-02,"A",1\n2020-01-03,"A\nB",1\n2020-01-04,C,-1\n', 3, "A\\nB"),
]


@pytest.mark.parametrize(("case", "text", "row", "fragment"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_names_row_and_leaves_store(store: Store, write_file, snapshot, case, text, row, fragment) -> None:
    import_file(store, write_file("good.csv", GOOD))
    before = snapshot(store)
    path = write_file("bad.csv", text)
    with pytest.raises(DataError) as e:
        import_file(store, path)
    assert e.value.row == row, str(e.value)
    assert e.value.file == str(path)
    assert fragment in str(e.value) and "expected" in str(e.value)
    assert snapshot(store) == before


def test_bad_metadata_leaves_prices_untouched(store: Store, write_file, snapshot) -> None:
    import_file(store, write_file("good.csv", GOOD))
    before = snapshot(store)
    prices = write_file("new.csv", "date,ticker,close\n2020-01-06,AAA,99\n")
    meta = write_file("meta.csv", "ticker,sector\nAAA,Tech\nAAA,Energy\n")
    with pytest.raises(DataError, match="AAA") as e:
        import_file(store, prices, meta)
    assert e.value.file == str(meta) and e.value.row == 3
    bad_type = write_file("meta2.csv", "ticker,sector,asset_type\nAAA,Tech,bond\n")
    with pytest.raises(DataError, match="asset_type") as e:
        import_file(store, prices, bad_type)
    assert e.value.row == 2
    assert snapshot(store) == before


def test_missing_file(store: Store, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        import_file(store, tmp_path / "nope.csv")
    with pytest.raises(DataError, match="Parquet"):
        (tmp_path / "junk.parquet").write_bytes(b"not parquet")
        import_file(store, tmp_path / "junk.parquet")
    assert not store.root.exists() or not any(store.root.iterdir())


# ---- property tests -------------------------------------------------------------------------------------------

def _csv(df: pl.DataFrame, header: list[str]) -> str:
    """CSV text with exact float reprs (so a round trip is bit-exact), rows in the frame's order."""
    lines = [",".join(header)]
    for row in df.iter_rows():
        lines.append(",".join("" if v is None else repr(v) if isinstance(v, float) else str(v) for v in row))
    return "\n".join(lines) + "\n"


@st.composite
def long_tables(draw: st.DrawFn) -> pl.DataFrame:
    """A valid long table: 1-4 tickers, each with ascending unique dates; optionally interleaved by date."""
    tickers = draw(st.lists(st.from_regex(r"[A-Z][A-Z0-9.\-]{0,5}", fullmatch=True), min_size=1, max_size=4,
                            unique=True))
    frames = []
    for t in tickers:
        offsets = sorted(draw(st.sets(st.integers(0, 3_000), min_size=1, max_size=12)))
        n = len(offsets)
        prices = st.floats(1e-4, 1e6, allow_nan=False, allow_infinity=False)
        volumes = st.one_of(st.none(), st.floats(0, 1e9, allow_nan=False, allow_infinity=False))
        frames.append(pl.DataFrame({
            "date": [dt.date(2000, 1, 3) + dt.timedelta(days=o) for o in offsets],
            "ticker": [t.lower() if draw(st.booleans()) else t for _ in range(n)],
            "close": draw(st.lists(prices, min_size=n, max_size=n)),
            "volume": draw(st.lists(volumes, min_size=n, max_size=n)),
        }, schema={"date": pl.Date, "ticker": pl.String, "close": pl.Float64, "volume": pl.Float64}))
    df = pl.concat(frames)
    return df.sort("date", maintain_order=True) if draw(st.booleans()) else df


PROPS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPS
@given(df=long_tables(), header_case=st.sampled_from([str.lower, str.upper, str.title]))
def test_any_valid_long_table_round_trips(df: pl.DataFrame, header_case) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.csv"
        path.write_text(_csv(df, [f" {header_case(c)} " for c in df.columns]))
        store = Store(Path(tmp) / "store")
        summary = import_file(store, path)
        back = store.read_prices()
    expected = validate_prices(df.with_columns(pl.col("ticker").str.to_uppercase()))
    assert back.equals(expected)
    assert summary.rows == df.height and summary.tickers == sorted(set(expected["ticker"]))


@PROPS
@given(df=long_tables(), data=st.data())
def test_non_positive_price_names_exactly_its_line(df: pl.DataFrame, data: st.DataObject, snapshot) -> None:
    i = data.draw(st.integers(0, df.height - 1), label="row")
    bad = data.draw(st.one_of(st.just(0.0), st.floats(-1e6, -1e-9)), label="price")
    df = df.with_columns(pl.when(pl.int_range(pl.len()) == i).then(bad).otherwise(pl.col("close")).alias("close"))
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "store")
        store.write_prices(pl.DataFrame({"date": [dt.date(1999, 1, 4)], "ticker": ["OLD"], "close": [1.0]}))
        before = snapshot(store)
        path = Path(tmp) / "in.csv"
        path.write_text(_csv(df, df.columns))
        with pytest.raises(DataError) as e:
            import_file(store, path)
        assert e.value.row == i + 2, str(e.value)  # header is line 1
        assert "close" in str(e.value) and str(path) in str(e.value)
        assert snapshot(store) == before
