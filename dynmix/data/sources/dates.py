"""Parse a date column written the way vendors write it.

Accepted without help: `YYYY-MM-DD`, `YYYYMMDD`, ISO timestamps (`2020-01-02T00:00:00`, `2020-01-02 16:00:00`,
with or without a zone: the calendar date is kept), and `MM/DD/YYYY` or `DD/MM/YYYY` when the column itself
settles which (some first field above 12 means day-first, some second field above 12 means month-first).
Otherwise the caller passes `date_format` (a strftime pattern such as `%d/%m/%Y`).

Dates before 1900-01-01 or after today are refused: they are typos or placeholders (0001-01-01, 9999-12-31)
and would stretch every calendar built from the store.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from dynmix.data.schema import LINE
from dynmix.errors import DataError

EARLIEST = dt.date(1900, 1, 1)
EXCERPT = 40  # characters of a bad cell quoted in an error

ISO_DAY = r"^\d{4}-\d{2}-\d{2}$"
COMPACT = r"^\d{8}$"
ISO_TIME = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}"
SLASHED = r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$"
FORMATS_HELP = "YYYY-MM-DD, YYYYMMDD, an ISO timestamp, or MM/DD/YYYY / DD/MM/YYYY (with --date-format when ambiguous)"


def excerpt(value: object) -> str:
    """`repr` of a cell, cut to a short excerpt so a huge cell is never echoed whole."""
    text = repr(value)
    return text if len(text) <= EXCERPT else f"{text[:EXCERPT]}… ({len(str(value)):,} characters)"


def _slash_order(text: pl.Series, file: Path) -> str:
    """'%m/%d/%Y' or '%d/%m/%Y' from the values themselves, or DataError asking for --date-format."""
    parts = text.str.extract_groups(SLASHED).struct.unnest().drop_nulls()
    first = parts[parts.columns[0]].cast(pl.Int32)
    second = parts[parts.columns[1]].cast(pl.Int32)
    day_first, month_first = bool((first > 12).any()), bool((second > 12).any())
    if day_first and month_first:
        raise DataError("dates mix DD/MM/YYYY and MM/DD/YYYY: expected one format throughout", file=file)
    if day_first or month_first:
        return "%d/%m/%Y" if day_first else "%m/%d/%Y"
    raise DataError("dates such as 01/02/2020 could be day-first or month-first and no value settles it: "
                    "expected --date-format '%d/%m/%Y' or '%m/%d/%Y'", file=file)


def parse_dates(df: pl.DataFrame, file: Path, date_format: str | None = None) -> pl.DataFrame:
    """Replace the `date` column of `df` by parsed dates; the first bad cell raises DataError on its row."""
    s = df["date"]
    if s.dtype == pl.String:
        text = s.str.strip_chars()
        if date_format is not None:
            parsed = text.str.to_date(date_format, strict=False)
        else:
            slash_fmt = _slash_order(text, file) if bool(text.str.contains(SLASHED).any()) else "%m/%d/%Y"
            slashed = text.str.replace_all(".", "/", literal=True)
            parsed = (
                pl.select(
                    pl.when(text.str.contains(ISO_DAY)).then(text.str.to_date("%Y-%m-%d", strict=False))
                    .when(text.str.contains(COMPACT)).then(text.str.to_date("%Y%m%d", strict=False))
                    .when(text.str.contains(ISO_TIME)).then(text.str.slice(0, 10).str.to_date("%Y-%m-%d",
                                                                                              strict=False))
                    .when(text.str.contains(SLASHED)).then(slashed.str.to_date(slash_fmt, strict=False))
                    .otherwise(None)
                ).to_series()
            )
        df = df.with_columns(parsed.alias("date"))
    elif isinstance(s.dtype, pl.Datetime):
        df = df.with_columns(s.dt.date())
    elif s.dtype != pl.Date:
        raise DataError(f"column 'date' has type {s.dtype}: expected dates ({FORMATS_HELP})", file=file)
    bad = df["date"].is_null()
    if bad.any():
        i = int(bad.arg_true()[0])
        want = f"a date as {date_format}" if date_format else f"a date ({FORMATS_HELP})"
        raise DataError(f"date = {excerpt(s[i])}: expected {want}", file=file, row=int(df[LINE][i]))
    today = dt.date.today()
    out = (df["date"] < EARLIEST) | (df["date"] > today)
    if out.any():
        i = int(out.arg_true()[0])
        raise DataError(f"date = {df['date'][i]}: expected a date between {EARLIEST} and today ({today})",
                        file=file, row=int(df[LINE][i]))
    return df
