"""What the store holds: per-ticker coverage (for `dynmix data status` and the dashboard) and load summaries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import polars as pl

from dynmix.data.schema import empty_meta, empty_prices
from dynmix.data.store import MANIFEST_SCHEMA, Store
from dynmix.errors import DataError

T = TypeVar("T")

COVERAGE_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "sector": pl.String(),
    "asset_type": pl.String(),
    "first_date": pl.Date(),
    "last_date": pl.Date(),
    "rows": pl.Int64(),
    "missing_days": pl.Int64(),
    "last_refresh": pl.Datetime("us", "UTC"),
    "source": pl.String(),
    "status": pl.String(),
    "message": pl.String(),
}


@dataclass(frozen=True)
class LoadSummary:
    """What one load (sample, import, …) put into the store."""

    source: str
    tickers: list[str] = field(default_factory=list)
    rows: int = 0  # price rows loaded by this call
    first_date: dt.date | None = None
    last_date: dt.date | None = None
    meta_rows: int = 0  # metadata rows written by this call
    changed: bool = True  # False when the store already held exactly this data (nothing rewritten)
    notes: list[str] = field(default_factory=list)  # what was changed on the way (duplicates dropped, ...)
    dry_run: bool = False  # nothing was written: the summary says what would have been

    @classmethod
    def of(cls, source: str, prices: pl.DataFrame, *, meta_rows: int = 0, changed: bool = True,
           notes: list[str] | None = None, dry_run: bool = False) -> LoadSummary:
        return cls(
            source=source,
            tickers=sorted(prices["ticker"].unique().to_list()),
            rows=prices.height,
            first_date=prices["date"].min(),  # type: ignore[arg-type]
            last_date=prices["date"].max(),  # type: ignore[arg-type]
            meta_rows=meta_rows,
            changed=changed,
            notes=list(notes or []),
            dry_run=dry_run,
        )

    def line(self) -> str:
        """One line for the terminal."""
        span = f"{self.first_date} → {self.last_date}" if self.first_date else "no dates"
        n = len(self.tickers)
        text = f"{self.source}: {n} ticker{'s' * (n != 1)}, {self.rows:,} row{'s' * (self.rows != 1)}, {span}"
        if self.meta_rows:
            text += f", metadata for {self.meta_rows} ticker{'s' * (self.meta_rows != 1)}"
        if self.dry_run:
            return text
        return text + ("" if self.changed else " (already in the store, nothing rewritten)")


def _or_empty(read: Callable[[], T], empty: Callable[[], T], problems: list[DataError] | None) -> T:
    try:
        return read()
    except DataError as e:
        if problems is None:
            raise
        problems.append(e)
        return empty()


def coverage(store: Store, problems: list[DataError] | None = None) -> pl.DataFrame:
    """One row per ticker (priced or listed in the manifest) with its coverage and last refresh.

    missing_days counts the dates of the union trading calendar of all tickers, between the ticker's first
    and last date, on which the ticker has no row. With a `problems` list, a damaged store file is reported there
    (its error names the file and what to do) and the table is built from the files that can be read.
    """
    def scan() -> pl.LazyFrame:
        lf = store.scan_prices()
        store.collect(lf.select(pl.len()))  # every page is read here, not later in the middle of the table
        return lf

    lf = _or_empty(scan, lambda: empty_prices().lazy(), problems)
    calendar = lf.select(pl.col("date").unique().sort()).collect()["date"]  # (T,)
    per = (
        lf.group_by("ticker")
        .agg(
            pl.col("date").min().alias("first_date"),
            pl.col("date").max().alias("last_date"),
            pl.len().cast(pl.Int64).alias("rows"),
        )
        .collect()
    )
    if per.height:
        lo = calendar.search_sorted(per["first_date"], side="left")
        hi = calendar.search_sorted(per["last_date"], side="right")
        span = (hi.cast(pl.Int64) - lo.cast(pl.Int64)).alias("span")
        per = per.with_columns((span - pl.col("rows")).alias("missing_days"))
    else:
        per = per.with_columns(pl.lit(None, pl.Int64).alias("missing_days"))
    manifest = _or_empty(store.read_manifest, lambda: pl.DataFrame(schema=MANIFEST_SCHEMA), problems).select(
        "ticker", "last_refresh", "source", "status", "message")
    out = per.join(manifest, on="ticker", how="full", coalesce=True)
    meta = _or_empty(store.read_meta, empty_meta, problems).select("ticker", "sector", "asset_type")
    out = out.join(meta, on="ticker", how="left").with_columns(
        pl.col("sector").fill_null("Unknown"),
        pl.col("asset_type").fill_null("equity"),
        pl.col("rows").fill_null(0),
        pl.col("status").fill_null("ok"),
        pl.col("message").fill_null(""),
    )
    return out.select([pl.col(c).cast(t) for c, t in COVERAGE_SCHEMA.items()]).sort("ticker")


def summary_line(cov: pl.DataFrame) -> str:
    """One-line summary of a coverage table."""
    if cov.height == 0:
        return "the store is empty"
    sources = cov.group_by("source").len().sort("source")
    by_source = ", ".join(f"{s or 'unknown'} {n}" for s, n in sources.iter_rows())
    failed = int((cov["status"] != "ok").sum())
    first, last = str(cov["first_date"].min()), str(cov["last_date"].max())
    return (
        f"{cov.height} tickers · {int(cov['rows'].sum()):,} rows · {first} → {last} · "
        f"{int(cov['missing_days'].fill_null(0).sum()):,} missing days · "
        f"{failed} failed · sources: {by_source}"
    )
