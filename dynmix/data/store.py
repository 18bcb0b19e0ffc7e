"""The market-data store: Parquet files under HOME/store/, validated on every write, written atomically.

    prices.parquet    canonical long price table (schema.PRICE_SCHEMA), unique on (ticker, date), sorted
    meta.parquet      one row per ticker (schema.META_SCHEMA + optional columns)
    manifest.parquet  one row per ticker: source, coverage, last refresh, status and message
    <name>.parquet    extra tables a source leaves beside the prices (e.g. `truth` for the synthetic market)

Each file is replaced whole through a temporary file and a rename, so a crash mid-write leaves the previous
version readable.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from dynmix.data.schema import (
    META_SCHEMA,
    PRICE_SCHEMA,
    empty_meta,
    empty_prices,
    validate_meta,
    validate_prices,
)
from dynmix.errors import DataError
from dynmix.io import write_parquet

MANIFEST_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "source": pl.String(),  # sample | csv | yahoo | synthetic
    "first_date": pl.Date(),
    "last_date": pl.Date(),
    "rows": pl.Int64(),
    "last_refresh": pl.Datetime("us", "UTC"),
    "status": pl.String(),  # ok | failed (last good data kept)
    "message": pl.String(),
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Store:
    """Read and write the canonical tables of one workspace."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def prices_path(self) -> Path:
        return self.root / "prices.parquet"

    @property
    def meta_path(self) -> Path:
        return self.root / "meta.parquet"

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.parquet"

    def exists(self) -> bool:
        return self.prices_path.exists()

    def version(self) -> float:
        """A value that changes whenever the prices change (the file's mtime); 0.0 for an empty store."""
        return self.prices_path.stat().st_mtime if self.exists() else 0.0

    # ---- prices -------------------------------------------------------------------------------------------
    def scan_prices(self) -> pl.LazyFrame:
        if not self.exists():
            return empty_prices().lazy()
        return pl.scan_parquet(self.prices_path)

    def read_prices(self, tickers: Iterable[str] | None = None) -> pl.DataFrame:
        lf = self.scan_prices()
        if tickers is not None:
            lf = lf.filter(pl.col("ticker").is_in(list(tickers)))
        return lf.collect()

    def tickers(self) -> list[str]:
        return self.scan_prices().select(pl.col("ticker").unique().sort()).collect()["ticker"].to_list()

    def write_prices(self, df: pl.DataFrame, *, file: str | Path | None = None) -> pl.DataFrame:
        """Replace the whole price table with `df` (validated first; the old table stays on any error)."""
        df = validate_prices(df, file=file)
        write_parquet(df, self.prices_path)
        return df

    def upsert_prices(
        self,
        df: pl.DataFrame,
        *,
        replace_tickers: Iterable[str] = (),
        file: str | Path | None = None,
    ) -> pl.DataFrame:
        """Merge `df` into the stored prices: new rows win on (ticker, date).

        Tickers in `replace_tickers` lose all their stored rows first (a split or dividend changed history).
        """
        new = validate_prices(df, file=file)
        old = self.read_prices()
        replace = set(replace_tickers)
        if replace:
            old = old.filter(~pl.col("ticker").is_in(list(replace)))
        merged = (
            pl.concat([old, new], how="vertical")
            .unique(subset=["ticker", "date"], keep="last", maintain_order=True)
            .sort("ticker", "date")
        )
        write_parquet(validate_prices(merged, file=self.prices_path), self.prices_path)
        return merged

    # ---- metadata -----------------------------------------------------------------------------------------
    def read_meta(self) -> pl.DataFrame:
        if not self.meta_path.exists():
            return empty_meta()
        return pl.read_parquet(self.meta_path)

    def upsert_meta(self, df: pl.DataFrame, *, file: str | Path | None = None) -> pl.DataFrame:
        """Merge metadata rows by ticker (new rows win). Tickers without prices yet are kept (a sector map
        may come before its prices); `meta_for_prices` only shows tickers that have prices."""
        new = validate_meta(df, file=file)
        old = self.read_meta()
        merged = pl.concat([old, new], how="diagonal_relaxed").unique(subset="ticker", keep="last").sort("ticker")
        merged = validate_meta(merged, file=self.meta_path)
        write_parquet(merged, self.meta_path)
        return merged

    def meta_for_prices(self) -> pl.DataFrame:
        """Metadata for every ticker with prices; tickers without a row get sector 'Unknown'."""
        tickers = pl.DataFrame({"ticker": self.tickers()}, schema={"ticker": pl.String()})
        meta = self.read_meta()
        joined = tickers.join(meta, on="ticker", how="left")
        return validate_meta(joined) if joined.height else empty_meta()

    # ---- manifest -----------------------------------------------------------------------------------------
    def read_manifest(self) -> pl.DataFrame:
        if not self.manifest_path.exists():
            return pl.DataFrame(schema=MANIFEST_SCHEMA)
        return pl.read_parquet(self.manifest_path)

    def upsert_manifest(self, df: pl.DataFrame) -> pl.DataFrame:
        new = df.select([pl.col(c).cast(t) if c in df.columns else pl.lit(None, t).alias(c)
                         for c, t in MANIFEST_SCHEMA.items()])
        merged = (
            pl.concat([self.read_manifest(), new], how="vertical")
            .unique(subset="ticker", keep="last", maintain_order=True)
            .sort("ticker")
        )
        write_parquet(merged, self.manifest_path)
        return merged

    def manifest_from_prices(self, source: str, tickers: Iterable[str] | None = None) -> pl.DataFrame:
        """Manifest rows (status ok) describing the stored coverage of `tickers` (default: all)."""
        lf = self.scan_prices()
        if tickers is not None:
            lf = lf.filter(pl.col("ticker").is_in(list(tickers)))
        return (
            lf.group_by("ticker")
            .agg(
                pl.col("date").min().alias("first_date"),
                pl.col("date").max().alias("last_date"),
                pl.len().cast(pl.Int64).alias("rows"),
            )
            .with_columns(
                pl.lit(source).alias("source"),
                pl.lit(utcnow()).cast(pl.Datetime("us", "UTC")).alias("last_refresh"),
                pl.lit("ok").alias("status"),
                pl.lit("").alias("message"),
            )
            .collect()
        )

    # ---- extra tables -------------------------------------------------------------------------------------
    def extra_path(self, name: str) -> Path:
        if not name.isidentifier():
            raise ValueError(f"table name {name!r}: expected a plain identifier")
        return self.root / f"{name}.parquet"

    def read_extra(self, name: str) -> pl.DataFrame | None:
        path = self.extra_path(name)
        return pl.read_parquet(path) if path.exists() else None

    def write_extra(self, name: str, df: pl.DataFrame) -> None:
        write_parquet(df, self.extra_path(name))


__all__ = ["MANIFEST_SCHEMA", "META_SCHEMA", "PRICE_SCHEMA", "Store", "utcnow"]
