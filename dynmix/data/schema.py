"""The canonical tables and their validation (docs/DESIGN.md §3).

Prices (long): date, ticker, open, high, low, close, adj_close (float64, > 0), volume (float64, >= 0, may be
null); unique on (ticker, date); sorted by (ticker, date).
Metadata: ticker, name, sector, industry, asset_type (+ optional extra columns). Unknown sector is "Unknown".

Validators take an optional integer column `_line` holding the 1-based line of each row in its source file;
errors quote it, and it is dropped from the result.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from dynmix.errors import DataError

TICKER_PATTERN = r"^[A-Z0-9.\-^=]{1,15}$"
LINE = "_line"
UNKNOWN_SECTOR = "Unknown"
ASSET_TYPES = ("equity", "index", "etf")

PRICE_SCHEMA: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "ticker": pl.String(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "adj_close": pl.Float64(),
    "volume": pl.Float64(),
}
PRICE_FIELDS = ("open", "high", "low", "close", "adj_close")

META_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "name": pl.String(),
    "sector": pl.String(),
    "industry": pl.String(),
    "asset_type": pl.String(),
}


def empty_prices() -> pl.DataFrame:
    return pl.DataFrame(schema=PRICE_SCHEMA)


def empty_meta() -> pl.DataFrame:
    return pl.DataFrame(schema=META_SCHEMA)


def _where(df: pl.DataFrame, mask: pl.Series) -> int:
    """1-based row of the first offending row: its source line if known, else its position + 1."""
    return _row_of(df, int(mask.arg_true()[0]))


def _row_of(df: pl.DataFrame, idx: int) -> int:
    return int(df[LINE][idx]) if LINE in df.columns else idx + 1


def check_tickers(df: pl.DataFrame, file: str | Path | None) -> None:
    """Tickers must match TICKER_PATTERN and hold a letter or digit (so '..' cannot escape a path)."""
    t = df["ticker"]
    u = t.unique()  # the regexes run on distinct tickers only (a few thousand, not tens of millions of rows)
    bad_u = u.is_null() | ~u.str.contains(TICKER_PATTERN) | ~u.str.contains(r"[A-Z0-9]")
    if bad_u.any():
        bad = t.is_null() | t.is_in(u.filter(bad_u).drop_nulls().to_list())
        row = _where(df, bad)
        value = t[int(bad.arg_true()[0])]
        raise DataError(
            f"ticker {value!r} is not valid: expected 1-15 characters among A-Z 0-9 . - ^ =",
            file=file,
            row=row,
        )


def validate_prices(df: pl.DataFrame, *, file: str | Path | None = None) -> pl.DataFrame:
    """Check a price table against the canonical schema; return it cast, sorted and without `_line`.

    Raises DataError naming the file, the row and what was expected. Missing optional price columns
    (open, high, low, adj_close) are filled from close; a missing volume column is null.
    """
    if df.height == 0:
        raise DataError("no price rows: expected at least one row with date, ticker and close", file=file)
    missing = [c for c in ("date", "ticker", "close") if c not in df.columns]
    if missing:
        raise DataError(
            f"missing required column(s) {missing}: expected at least date, ticker, close (found {df.columns})",
            file=file,
        )
    if df["date"].dtype != pl.Date:
        raise DataError(f"column 'date' has type {df['date'].dtype}: expected a date", file=file)
    for col in ("open", "high", "low", "adj_close"):
        if col not in df.columns:
            df = df.with_columns(pl.col("close").alias(col))
    if "volume" not in df.columns:
        df = df.with_columns(pl.lit(None, dtype=pl.Float64).alias("volume"))
    null_date = df["date"].is_null()
    if null_date.any():
        raise DataError("date is empty or unparseable: expected YYYY-MM-DD", file=file, row=_where(df, null_date))
    check_tickers(df, file)
    for col in (*PRICE_FIELDS, "volume"):
        if not df[col].dtype.is_numeric():
            raise DataError(f"column {col!r} has type {df[col].dtype}: expected numbers", file=file)
    df = df.with_columns([pl.col(c).cast(pl.Float64) for c in (*PRICE_FIELDS, "volume")])
    for col in PRICE_FIELDS:
        s = df[col]
        bad = s.is_null() | s.is_nan() | (s <= 0) | s.is_infinite()
        if bad.any():
            raise DataError(
                f"{col} = {s[int(bad.arg_true()[0])]!r}: expected a finite price > 0",
                file=file,
                row=_where(df, bad),
            )
    vol = df["volume"]
    bad_vol = vol.is_not_null() & (vol.is_nan() | (vol < 0) | vol.is_infinite())
    if bad_vol.any():
        raise DataError(
            f"volume = {vol[int(bad_vol.arg_true()[0])]!r}: expected a number >= 0 (or empty)",
            file=file,
            row=_where(df, bad_vol),
        )
    # Sorting the keys once makes duplicates adjacent (a struct is_duplicated hashes every row: ~10x slower).
    keys = df.select("ticker", "date").with_row_index("_pos").sort("ticker", "date")
    same = (keys["ticker"] == keys["ticker"].shift(1)) & (keys["date"] == keys["date"].shift(1))
    if same.any():
        i = int(keys["_pos"].filter(same | same.shift(-1, fill_value=False)).min())  # type: ignore[arg-type]
        raise DataError(
            f"duplicate (ticker, date) = ({df['ticker'][i]}, {df['date'][i]}): expected one row per ticker and date",
            file=file,
            row=_row_of(df, i),
        )
    out = df.select([pl.col(c).cast(t) for c, t in PRICE_SCHEMA.items()])
    order = keys["_pos"]  # a permutation of the rows: the identity when the input was already sorted
    return out if order.is_sorted() else out[order]


def validate_meta(df: pl.DataFrame, *, file: str | Path | None = None) -> pl.DataFrame:
    """Check a metadata table; fill missing name/industry/asset_type and unknown sectors; drop `_line`."""
    if "ticker" not in df.columns:
        raise DataError(
            f"missing column 'ticker' (found {df.columns}): expected ticker,sector[,industry,name]", file=file
        )
    check_tickers(df, file)
    dup = df["ticker"].is_duplicated()
    if dup.any():
        t = df["ticker"][int(dup.arg_true()[0])]
        rows = [_row_of(df, int(i)) for i in (df["ticker"] == t).arg_true()[:2]]
        raise DataError(
            f"ticker {t!r} appears twice (rows {rows[0]} and {rows[1]}) with different values: expected one row "
            "per ticker, or identical repeats",
            file=file,
            row=rows[1],
        )
    fills = {"name": None, "sector": UNKNOWN_SECTOR, "industry": UNKNOWN_SECTOR, "asset_type": "equity"}
    for col, default in fills.items():
        if col not in df.columns:
            df = df.with_columns(pl.lit(default, dtype=pl.String).alias(col))
        df = df.with_columns(pl.col(col).cast(pl.String))
    df = df.with_columns(
        pl.col("name").fill_null(pl.col("ticker")),
        pl.when(pl.col("sector").is_null() | (pl.col("sector").str.strip_chars() == ""))
        .then(pl.lit(UNKNOWN_SECTOR))
        .otherwise(pl.col("sector").str.strip_chars())
        .alias("sector"),
        pl.col("industry").fill_null(UNKNOWN_SECTOR),
        pl.col("asset_type").fill_null("equity").str.to_lowercase(),
    )
    bad = ~df["asset_type"].is_in(list(ASSET_TYPES))
    if bad.any():
        raise DataError(
            f"asset_type {df['asset_type'][int(bad.arg_true()[0])]!r}: expected one of {ASSET_TYPES}",
            file=file,
            row=_where(df, bad),
        )
    extra = [c for c in df.columns if c not in META_SCHEMA and c != LINE]
    return df.select([*META_SCHEMA, *extra]).sort("ticker")
