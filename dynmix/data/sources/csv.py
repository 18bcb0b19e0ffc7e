"""Import prices from any vendor's CSV or Parquet file, long or wide, with an optional metadata CSV.

Long: `date,ticker,close` required; `open,high,low,adj_close,volume` optional (empty cells: prices fall back
to close, volume stays null). Wide: a `date` column and one close column per ticker (no `ticker` column;
empty cells mean no price that day). Column names match case-insensitively, surrounding whitespace ignored.
Metadata: `ticker,sector[,industry,name,asset_type]`.

Everything is parsed and validated before anything is written, so a bad file leaves the store as it was.
Errors name the file, the row (CSV: 1-based line, header = 1; Parquet: 1-based row) and what was expected.
"""

from __future__ import annotations

import csv as pycsv
from pathlib import Path

import polars as pl
from polars.exceptions import ComputeError, NoDataError

from dynmix.data.schema import LINE, PRICE_FIELDS, check_tickers, validate_meta, validate_prices
from dynmix.data.status import LoadSummary
from dynmix.data.store import Store
from dynmix.errors import DataError

SOURCE = "csv"
PARQUET_SUFFIXES = (".parquet", ".pq")
NUMERIC = (*PRICE_FIELDS, "volume")
DATE_RE = r"^\d{4}-\d{2}-\d{2}$"
EXPECTED = ("expected a long table (date,ticker,close[,open,high,low,adj_close,volume]) "
            "or a wide one (date + one column per ticker)")


def _normalise(name: str) -> str:
    return "_".join(name.replace("\ufeff", "").strip().lower().replace("-", " ").split())


def _locate_csv_error(path: Path, header_fields: int) -> tuple[int | None, str]:
    """Find the first malformed record with Python's csv module: (line, what is wrong)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = pycsv.reader(fh, strict=True)
            for record in reader:
                if record and len(record) != header_fields and reader.line_num > 1:
                    return reader.line_num, f"{len(record)} fields: expected {header_fields} like the header"
    except pycsv.Error as e:
        return reader.line_num, f"malformed CSV ({e}): expected well-formed CSV"
    except UnicodeDecodeError:
        return None, "not UTF-8 text: expected a UTF-8 CSV file"
    return None, "malformed CSV"


def _read_csv_python(path: Path) -> pl.DataFrame:
    """Slow path (multi-line quoted cells, leading blank lines): keep exact line numbers."""
    rows: list[list[str]] = []
    lines: list[int] = []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = pycsv.reader(fh, strict=True)
        start = 1
        try:
            for record in reader:
                if record:
                    rows.append(record)
                    lines.append(start)
                start = reader.line_num + 1
        except pycsv.Error as e:
            raise DataError(f"malformed CSV ({e}): expected well-formed CSV", file=path, row=start) from e
    header, width = rows[0], len(rows[0])
    for record, line in zip(rows[1:], lines[1:], strict=True):
        if len(record) != width:
            raise DataError(f"{len(record)} fields: expected {width} like the header", file=path, row=line)
    if len({_normalise(h) for h in header}) < width:
        raise DataError("a column appears twice in the header: expected unique names", file=path, row=lines[0])
    cols = {h or f"column_{i}": [r[i] or None for r in rows[1:]] for i, h in enumerate(header)}
    df = pl.DataFrame(cols, schema={c: pl.String() for c in cols})
    return df.with_columns(pl.Series(LINE, lines[1:], dtype=pl.Int64))


def _read_csv(path: Path) -> pl.DataFrame:
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError("file is empty: expected a header line, e.g. date,ticker,close", file=path)
    head = raw.removeprefix(b"\xef\xbb\xbf")
    try:
        df = pl.read_csv(path, infer_schema=False, row_index_name=LINE, row_index_offset=2)
    except (ComputeError, NoDataError) as e:
        first = next(ln for ln in head.decode("utf-8", "replace").splitlines() if ln.strip())
        width = len(next(pycsv.reader([first])))
        line, what = _locate_csv_error(path, width)
        raise DataError(what if line else f"{what} ({str(e).splitlines()[0]})", file=path, row=line) from e
    text_cols = [c for c in df.columns if c != LINE]
    multiline = df.select(pl.any_horizontal(pl.col(text_cols).str.contains("[\r\n]")).any()).item()
    if head[:1] in (b"\n", b"\r") or multiline:
        df = _read_csv_python(path)
    return df.with_columns(pl.col(LINE).cast(pl.Int64))


def read_table(path: str | Path) -> tuple[pl.DataFrame, int | None]:
    """A CSV (all columns as strings) or Parquet file with normalised column names and a `_line` column.

    Returns the table and the row number of its header (1 for CSV, None for Parquet). Blank rows are dropped.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found: expected a CSV or Parquet file", file=path)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        try:
            df = pl.read_parquet(path)
        except Exception as e:  # polars raises several exception types for a damaged file
            raise DataError(f"not a readable Parquet file ({str(e).splitlines()[0]})", file=path) from e
        df, header = df.with_row_index(LINE, offset=1).with_columns(pl.col(LINE).cast(pl.Int64)), None
    else:
        df, header = _read_csv(path), 1
    names = [c if c == LINE else _normalise(c) for c in df.columns]
    seen: set[str] = set()
    for orig, name in zip(df.columns, names, strict=True):
        if name in seen or "_duplicated_" in orig:
            raise DataError(f"column {name!r} appears twice in the header: expected unique names", file=path,
                            row=header)
        seen.add(name)
    df = df.rename(dict(zip(df.columns, names, strict=True)))
    data = [c for c in df.columns if c != LINE]
    df = df.filter(~pl.all_horizontal(pl.col(data).is_null())) if data else df.clear()
    if df.height == 0:
        raise DataError("no data rows: expected rows below the header", file=path)
    return df, header


def _numbers(df: pl.DataFrame, col: str, file: Path, label: str | None = None) -> pl.DataFrame:
    """Parse column `col` as float64; a non-empty cell that is not a number raises DataError on its row."""
    s = df[col]
    if s.dtype == pl.String:
        text = s.str.strip_chars().replace("", None)
        parsed = text.cast(pl.Float64, strict=False)
        bad = text.is_not_null() & parsed.is_null()
        if bad.any():
            i = int(bad.arg_true()[0])
            raise DataError(f"{label or col} = {s[i]!r}: expected a number", file=file, row=int(df[LINE][i]))
        return df.with_columns(parsed.alias(col))
    if not s.dtype.is_numeric():
        raise DataError(f"column {col!r} has type {s.dtype}: expected numbers", file=file)
    return df.with_columns(s.cast(pl.Float64))


def _dates(df: pl.DataFrame, file: Path) -> pl.DataFrame:
    s = df["date"]
    if s.dtype == pl.String:
        text = s.str.strip_chars()
        parsed = pl.when(text.str.contains(DATE_RE)).then(text).otherwise(None).str.to_date("%Y-%m-%d", strict=False)
        df = df.with_columns(parsed.alias("date"))
    elif isinstance(s.dtype, pl.Datetime):
        df = df.with_columns(s.dt.date())
    elif s.dtype != pl.Date:
        raise DataError(f"column 'date' has type {s.dtype}: expected dates as YYYY-MM-DD", file=file)
    bad = df["date"].is_null()
    if bad.any():
        i = int(bad.arg_true()[0])
        raise DataError(f"date = {s[i]!r}: expected a date as YYYY-MM-DD", file=file, row=int(df[LINE][i]))
    return df


def _check_order(df: pl.DataFrame, file: Path) -> None:
    """Each ticker's dates must rise strictly in file order (equal = duplicate, lower = unsorted)."""
    prev = df.select(pl.col("date").shift(1).over("ticker")).to_series()
    bad = (df["date"] <= prev).fill_null(False)
    if bad.any():
        i = int(bad.arg_true()[0])
        t, d, p = df["ticker"][i], df["date"][i], prev[i]
        what = (f"duplicate (ticker, date) = ({t}, {d}): expected one row per ticker and date" if d == p else
                f"unsorted dates: {t} {d} comes after {p}: expected each ticker's dates in ascending order")
        raise DataError(what, file=file, row=int(df[LINE][i]))


def _check_prices(df: pl.DataFrame, file: Path) -> None:
    """Prices must be finite and > 0 (close must be present); report the first bad cell in file order."""
    worst: tuple[int, str] | None = None
    for col in [c for c in PRICE_FIELDS if c in df.columns]:
        s = df[col]
        bad = (s <= 0) | s.is_nan() | s.is_infinite()
        bad = bad.fill_null(col == "close")
        if bad.any():
            i = int(bad.arg_true()[0])
            what = f"{col} is empty" if s[i] is None else f"{col} = {s[i]!r}"
            if worst is None or int(df[LINE][i]) < worst[0]:
                worst = (int(df[LINE][i]), f"{what}: expected a finite price > 0")
    if worst is not None:
        raise DataError(worst[1], file=file, row=worst[0])


def _wide_to_long(df: pl.DataFrame, file: Path, header: int | None) -> pl.DataFrame:
    cols = [c for c in df.columns if c not in ("date", LINE)]
    if not cols:
        raise DataError(f"only a date column: {EXPECTED}", file=file, row=header)
    names = pl.DataFrame({"ticker": [c.upper() for c in cols], LINE: [header or 1] * len(cols)})
    check_tickers(names, file if header else f"{file} (column names)")
    for c in cols:
        df = _numbers(df, c, file, label=c.upper())
    long = df.rename({c: c.upper() for c in cols}).unpivot(index=["date", LINE], variable_name="ticker",
                                                           value_name="close")
    return long.drop_nulls("close").sort(LINE, maintain_order=True)


def parse_prices(df: pl.DataFrame, file: str | Path, header: int | None = 1) -> pl.DataFrame:
    """A table from `read_table` -> the canonical price table (validated), or DataError."""
    file = Path(file)
    fields = [c for c in ("date", "ticker", "close") if c not in df.columns]
    if "date" not in df.columns or ("ticker" not in df.columns and set(NUMERIC) & set(df.columns)):
        raise DataError(f"missing required column(s) {fields} (found {[c for c in df.columns if c != LINE]}): "
                        f"{EXPECTED}", file=file, row=header)
    if "ticker" in df.columns:
        if "close" not in df.columns:
            raise DataError(f"missing required column 'close': {EXPECTED}", file=file, row=header)
        df = df.select("date", "ticker", *[c for c in NUMERIC if c in df.columns], LINE)
        df = df.with_columns(pl.col("ticker").cast(pl.String).str.strip_chars().str.to_uppercase())
        for c in NUMERIC:
            if c in df.columns:
                df = _numbers(df, c, file)
    else:
        df = _wide_to_long(df, file, header)
    check_tickers(df, file)
    df = _dates(df, file)
    _check_order(df, file)
    _check_prices(df, file)
    df = df.with_columns([pl.col(c).fill_null(pl.col("close")) for c in PRICE_FIELDS if c in df.columns])
    return validate_prices(df, file=file)


def parse_meta(path: str | Path, known: set[str]) -> pl.DataFrame:
    """Read and validate a metadata file; every ticker must be in `known` (tickers with prices)."""
    df, header = read_table(path)
    if "ticker" not in df.columns:
        raise DataError("missing column 'ticker': expected ticker,sector[,industry,name]", file=path, row=header)
    text = [c for c in df.columns if c != LINE and df[c].dtype == pl.String]
    df = df.with_columns(pl.col(text).str.strip_chars().replace("", None))
    df = df.with_columns(pl.col("ticker").str.to_uppercase())
    check_tickers(df, path)
    orphan = ~df["ticker"].is_in(sorted(known))
    if orphan.any():
        i = int(orphan.arg_true()[0])
        raise DataError(f"ticker {df['ticker'][i]!r} has no prices in the file or the store: expected metadata "
                        "only for tickers with prices", file=path, row=int(df[LINE][i]))
    for c in text:  # optional fundamentals: numbers when every non-empty cell is one
        if c not in ("ticker", "name", "sector", "industry", "asset_type"):
            parsed = df[c].cast(pl.Float64, strict=False)
            if parsed.null_count() == df[c].null_count():
                df = df.with_columns(parsed.alias(c))
    return validate_meta(df, file=path)


def import_file(store: Store, path: str | Path, meta_path: str | Path | None = None) -> LoadSummary:
    """Upsert the prices of `path` (and the metadata of `meta_path`) into `store`; new rows win."""
    path = Path(path)
    table, header = read_table(path)
    prices = parse_prices(table, path, header)
    tickers = sorted(prices["ticker"].unique().to_list())
    meta = parse_meta(meta_path, set(store.tickers()) | set(tickers)) if meta_path is not None else None
    store.upsert_prices(prices, file=path)
    if meta is not None:
        store.upsert_meta(meta, file=meta_path)
    store.upsert_manifest(store.manifest_from_prices(SOURCE, tickers))
    return LoadSummary.of(SOURCE, prices, meta_rows=0 if meta is None else meta.height)
