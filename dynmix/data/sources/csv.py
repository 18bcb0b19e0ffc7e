"""Import prices from any vendor's CSV or Parquet file, long or wide, with an optional metadata CSV.

Long: `date,ticker,close` required; `open,high,low,adj_close,volume` optional (empty cells: prices fall back
to close, volume stays null). Wide: a `date` column and one close column per ticker (no `ticker` column;
empty cells mean no price that day). Column names match case-insensitively, surrounding whitespace ignored,
with the usual aliases (`Symbol` for ticker, `Adj Close`/`adjclose` for adj_close, `Date`/`timestamp`/
`datetime` for date). Comma, semicolon or tab delimited, with or without a BOM. Rows may come in any order:
they are sorted on import; identical duplicate rows collapse (with a note), conflicting ones are an error
naming both rows. Date formats: see `dates.py`. Metadata: `ticker,sector[,industry,name,asset_type]`;
metadata for tickers without prices is kept (with a note).

Everything is parsed and validated before anything is written, so a bad file leaves the store as it was.
Errors name the file, the row (CSV: 1-based line, header = 1; Parquet: 1-based row) and what was expected.
"""

from __future__ import annotations

import csv as pycsv
from pathlib import Path

import polars as pl
from polars.exceptions import ComputeError, NoDataError

from dynmix.data.schema import LINE, PRICE_FIELDS, check_tickers, validate_meta, validate_prices
from dynmix.data.sources.dates import excerpt, parse_dates
from dynmix.data.sources.table_check import sniff
from dynmix.data.status import LoadSummary
from dynmix.data.store import Store
from dynmix.errors import DataError

SOURCE = "csv"
PARQUET_SUFFIXES = (".parquet", ".pq")
NUMERIC = (*PRICE_FIELDS, "volume")
ALIASES = {"symbol": "ticker", "adjclose": "adj_close", "adjusted_close": "adj_close", "adj._close": "adj_close",
           "timestamp": "date", "datetime": "date"}
EXPECTED = ("expected a long table (date,ticker,close[,open,high,low,adj_close,volume]) "
            "or a wide one (date + one column per ticker)")


def _normalise(name: str) -> str:
    return "_".join(name.replace("\ufeff", "").strip().lower().replace("-", " ").split())


def _aliased(names: list[str]) -> list[str]:
    """Apply ALIASES where the canonical name is not already present."""
    out = list(names)
    for i, name in enumerate(names):
        target = ALIASES.get(name)
        if target is not None and target not in out:
            out[i] = target
    return out


def _locate_csv_error(path: Path, header_fields: int, sep: str) -> tuple[int | None, str]:
    """Find the first malformed record with Python's csv module: (line, what is wrong)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = pycsv.reader(fh, strict=True, delimiter=sep)
            for record in reader:
                if record and len(record) != header_fields and reader.line_num > 1:
                    return reader.line_num, f"{len(record)} fields: expected {header_fields} like the header"
    except pycsv.Error as e:
        return reader.line_num, f"malformed CSV ({e}): expected well-formed CSV"
    except UnicodeDecodeError:
        return None, "not UTF-8 text: expected a UTF-8 CSV file"
    return None, "malformed CSV"


def _read_csv_python(path: Path, sep: str) -> pl.DataFrame:
    """Slow path (multi-line quoted cells, leading blank lines): keep exact line numbers."""
    rows: list[list[str]] = []
    lines: list[int] = []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = pycsv.reader(fh, strict=True, delimiter=sep)
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
    with open(path, "rb") as fh:
        head = fh.read(1 << 20).removeprefix(b"\xef\xbb\xbf")
    if not head.strip():
        raise DataError("file is empty: expected a header line, e.g. date,ticker,close", file=path)
    sep = sniff(path)
    try:
        df = pl.read_csv(path, infer_schema=False, row_index_name=LINE, row_index_offset=2, separator=sep)
    except (ComputeError, NoDataError) as e:
        first = next(ln for ln in head.decode("utf-8", "replace").splitlines() if ln.strip())
        width = len(next(pycsv.reader([first], delimiter=sep)))
        line, what = _locate_csv_error(path, width, sep)
        raise DataError(what if line else f"{what} ({str(e).splitlines()[0][:200]})", file=path, row=line) from e
    text_cols = [c for c in df.columns if c != LINE]
    multiline = df.select(pl.any_horizontal(pl.col(text_cols).str.contains("[\r\n]")).any()).item()
    if head[:1] in (b"\n", b"\r") or multiline:
        df = _read_csv_python(path, sep)
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
    names = _aliased([c if c == LINE else _normalise(c) for c in df.columns])
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


def _numbers(df: pl.DataFrame, col: str, file: Path, label: str | None = None, wide: bool = False) -> pl.DataFrame:
    """Parse column `col` as float64; a non-empty cell that is not a number raises DataError on its row."""
    s = df[col]
    if s.dtype == pl.String:
        text = s.str.strip_chars().replace("", None)
        parsed = text.cast(pl.Float64, strict=False)
        bad = text.is_not_null() & parsed.is_null()
        if bad.any():
            i = int(bad.arg_true()[0])
            label = str(df["ticker"][i]) if wide else label
            raise DataError(f"{label or col} = {excerpt(s[i])}: expected a number", file=file,
                            row=int(df[LINE][i]))
        return df.with_columns(parsed.alias(col))
    if not s.dtype.is_numeric():
        raise DataError(f"column {col!r} has type {s.dtype}: expected numbers", file=file)
    return df.with_columns(s.cast(pl.Float64))


def _dedupe(df: pl.DataFrame, file: Path, notes: list[str]) -> pl.DataFrame:
    """Sort by (ticker, date); identical repeated rows collapse (a note), conflicting ones raise DataError."""
    df = df.sort("ticker", "date", LINE)
    values = [c for c in df.columns if c not in ("ticker", "date", LINE)]
    key = (pl.col("ticker") == pl.col("ticker").shift(1)) & (pl.col("date") == pl.col("date").shift(1))
    same = pl.all_horizontal(key, *[pl.col(c).eq_missing(pl.col(c).shift(1)) for c in values])
    repeat = df.select(same.fill_null(False)).to_series()
    if repeat.any():
        n = int(repeat.sum())
        notes.append(f"{file}: {n:,} identical duplicate row{'s' * (n != 1)} dropped (first at row "
                     f"{int(df[LINE].filter(repeat).min())})")  # type: ignore[arg-type]
        df = df.filter(~repeat)
    clash = df.select(key.fill_null(False)).to_series()
    if clash.any():
        i = int(clash.arg_true()[0])
        first, second = df.row(i - 1, named=True), df.row(i, named=True)
        shown = ", ".join(f"{c} {first[c]} vs {second[c]}" for c in values if first[c] != second[c])
        raise DataError(f"conflicting duplicate rows for ({second['ticker']}, {second['date']}): rows {first[LINE]} "
                        f"and {second[LINE]} differ ({shown}): expected one row per ticker and date, or identical "
                        "repeats", file=file, row=int(second[LINE]))
    return df


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
    if any(df[c].dtype != pl.String for c in cols):  # Parquet: one numeric type for the unpivot
        for c in cols:
            if not (df[c].dtype.is_numeric() or df[c].dtype == pl.Null):
                raise DataError(f"column {c!r} has type {df[c].dtype}: expected numbers", file=file)
        df = df.with_columns(pl.col(cols).cast(pl.Float64))
    long = df.rename({c: c.upper() for c in cols}).unpivot(index=["date", LINE], variable_name="ticker",
                                                           value_name="close")
    if long["close"].dtype == pl.String:  # one pass over the cells: linear in the file's size
        long = long.with_columns(pl.col("close").str.strip_chars().replace("", None))
    long = long.drop_nulls("close")
    long = _numbers(long.sort(LINE, maintain_order=True), "close", file, label=None, wide=True)
    return long


def parse_prices(df: pl.DataFrame, file: str | Path, header: int | None = 1, *, date_format: str | None = None,
                 notes: list[str] | None = None) -> pl.DataFrame:
    """A table from `read_table` -> the canonical price table (validated, sorted), or DataError.

    `notes` (when given) receives one line per thing changed on the way (identical duplicates dropped).
    """
    file = Path(file)
    notes = [] if notes is None else notes
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
        check_tickers(df, file)
        df = parse_dates(df, file, date_format)
    else:
        df = _wide_to_long(parse_dates(df, file, date_format), file, header)
    _check_prices(df, file)
    df = _dedupe(df, file, notes)
    df = df.with_columns([pl.col(c).fill_null(pl.col("close")) for c in PRICE_FIELDS if c in df.columns])
    return validate_prices(df, file=file)


def parse_meta(path: str | Path, known: set[str], notes: list[str] | None = None) -> pl.DataFrame:
    """Read and validate a metadata file. Tickers outside `known` (no prices yet) are kept with a note;
    identical repeated rows collapse with a note; two different rows for one ticker raise DataError.
    """
    path = Path(path)
    notes = [] if notes is None else notes
    df, header = read_table(path)
    if "ticker" not in df.columns:
        raise DataError("missing column 'ticker': expected ticker,sector[,industry,name]", file=path, row=header)
    text = [c for c in df.columns if c != LINE and df[c].dtype == pl.String]
    df = df.with_columns(pl.col(text).str.strip_chars().replace("", None))
    df = df.with_columns(pl.col("ticker").str.to_uppercase())
    check_tickers(df, path)
    values = [c for c in df.columns if c != LINE]
    repeat = df.select(pl.struct(values).is_first_distinct().not_()).to_series()
    if repeat.any():
        n = int(repeat.sum())
        notes.append(f"{path}: {n} identical duplicate metadata row{'s' * (n != 1)} dropped")
        df = df.filter(~repeat)
    orphan = ~df["ticker"].is_in(sorted(known))
    if orphan.any():
        n = int(orphan.sum())
        names = ", ".join(df["ticker"].filter(orphan).head(5).to_list()) + (", …" if n > 5 else "")
        notes.append(f"{path}: metadata kept for {n} ticker{'s' * (n != 1)} without prices yet ({names})")
    for c in text:  # optional fundamentals: numbers when every non-empty cell is one
        if c not in ("ticker", "name", "sector", "industry", "asset_type"):
            parsed = df[c].cast(pl.Float64, strict=False)
            if parsed.null_count() == df[c].null_count():
                df = df.with_columns(parsed.alias(c))
    return validate_meta(df, file=path)


def import_file(store: Store, path: str | Path, meta_path: str | Path | None = None, *,
                date_format: str | None = None, dry_run: bool = False) -> LoadSummary:
    """Upsert the prices of `path` (and the metadata of `meta_path`) into `store`; new rows win.

    With `dry_run`, everything is read and checked and the summary says what would change; nothing is written.
    """
    path = Path(path)
    notes: list[str] = []
    table, header = read_table(path)
    prices = parse_prices(table, path, header, date_format=date_format, notes=notes)
    tickers = sorted(prices["ticker"].unique().to_list())
    meta = (parse_meta(meta_path, set(store.tickers()) | set(tickers), notes) if meta_path is not None
            else None)
    if dry_run:
        notes.append(_would_change(store, prices))
        return LoadSummary.of(SOURCE, prices, meta_rows=0 if meta is None else meta.height, changed=False,
                              notes=notes, dry_run=True)
    store.upsert_prices(prices, file=path)
    if meta is not None:
        store.upsert_meta(meta, file=meta_path)
    store.upsert_manifest(store.manifest_from_prices(SOURCE, tickers))
    return LoadSummary.of(SOURCE, prices, meta_rows=0 if meta is None else meta.height, notes=notes)


def _would_change(store: Store, prices: pl.DataFrame) -> str:
    """'dry run: N new rows, M rows that replace different stored values, K unchanged'."""
    if not store.exists():
        return f"dry run: {prices.height:,} new rows (the store is empty); nothing written"
    old = store.collect(store.scan_prices().select("ticker", "date", pl.col("close").alias("_old")))
    j = prices.select("ticker", "date", "close").join(old, on=["ticker", "date"], how="left")
    new = int(j["_old"].is_null().sum())
    same = int((j["_old"] == j["close"]).fill_null(False).sum())
    return f"dry run: {new:,} new rows, {j.height - new - same:,} replacing stored values, {same:,} unchanged; " \
        "nothing written"
