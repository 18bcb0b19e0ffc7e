"""The market-data store: Parquet files under HOME/store/, validated on every write, written atomically.

    prices.parquet    canonical long price table (schema.PRICE_SCHEMA), unique on (ticker, date), sorted
    meta.parquet      one row per ticker (schema.META_SCHEMA + optional columns)
    manifest.parquet  one row per ticker: source, coverage, last refresh, status and message
    <name>.parquet    extra tables a source leaves beside the prices (e.g. `truth` for the synthetic market)

Each file is replaced whole through a temporary file and a rename, so a crash mid-write leaves the previous
version readable. The version a write replaces is kept as `<name>.parquet.prev` (a hard link made just before the
rename, so no copy and, once the rename is done, no shared file), the previous generation that
`dynmix data verify --repair` puts back when a file is found damaged. A write of prices first marks the tickers it
touches `interrupted` in the manifest; the writer's
own manifest update at the end marks them `ok` again, so a command killed between files leaves a manifest that says
which tickers to load again, never one that claims data it did not keep. A file that cannot be read (damaged,
truncated, not Parquet) raises a DataError naming the file and what to do, never a parser traceback.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
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


INTERRUPTED = "interrupted"
INTERRUPTED_MESSAGE = "a write of its prices did not finish: load it again (import, sample or refresh)"

# What to do about a damaged file, by file name (the prices are the data; the others can be written again).
REMEDY = {
    "prices.parquet": "move it away and load the data again (dynmix data import / sample / refresh / synth)",
    "meta.parquet": "remove it and load the metadata again (dynmix data import FILE --meta META, or dynmix data "
                    "sample); the prices are not affected",
    "manifest.parquet": "remove it: the next import, sample or refresh writes it again (the prices are not "
                        "affected)",
}
OTHER_REMEDY = "remove it and write it again (dynmix data synth writes truth.parquet)"


def utcnow() -> datetime:
    return datetime.now(UTC)


def damaged(path: Path, error: BaseException) -> DataError:
    """The error for a store file that cannot be read: which file, what the reader said, what to do."""
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    remedy = REMEDY.get(path.name, OTHER_REMEDY)
    return DataError(f"cannot be read as Parquet, the file is damaged ({reason[:160]}): {remedy}", file=path)


def _is_read_error(e: BaseException) -> bool:
    # polars raises its own errors (ComputeError: "... must end with PAR1"), OSError, or a Rust panic surfaced
    # as pyo3's PanicException (a BaseException)
    return isinstance(e, pl.exceptions.PolarsError | OSError | ValueError) or type(e).__name__ == "PanicException"


def prev_path(path: Path) -> Path:
    """Where the store keeps the previous generation of one of its files."""
    return path.with_name(path.name + ".prev")


def keep_previous(path: Path) -> None:
    """Make `path`'s current version its previous generation (a hard link put in place with one rename; a copy
    where links are not supported). A readable file only: a damaged one never replaces a good previous copy.
    """
    if not path.exists():
        return
    try:
        pl.read_parquet_schema(path)
    except Exception:  # noqa: BLE001 - an unreadable file is not kept; the reason is reported by damaged_files
        return
    tmp = path.with_name(f".{path.name}.prev.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(path, tmp)
    except OSError:
        shutil.copy2(path, tmp)
    os.replace(tmp, prev_path(path))


def read_parquet_file(path: Path) -> pl.DataFrame:
    """`pl.read_parquet`, with a damaged file reported as a DataError naming it."""
    try:
        return pl.read_parquet(path)
    except BaseException as e:
        if _is_read_error(e):
            raise damaged(path, e) from None
        raise


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

    def snapshot(self) -> str:
        """A short id of the data the views are built from (a SHA-256 of the prices and metadata files): it
        changes whenever they change.
        """
        h = hashlib.sha256()
        for path in (self.prices_path, self.meta_path):
            h.update(f"{path.name}:".encode())
            if not path.exists():
                h.update(b"absent;")
                continue
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
        return h.hexdigest()[:16]

    def version(self) -> float:
        """A value that changes whenever the prices change (the file's mtime); 0.0 for an empty store."""
        return self.prices_path.stat().st_mtime if self.exists() else 0.0

    # ---- prices -------------------------------------------------------------------------------------------
    def scan_prices(self) -> pl.LazyFrame:
        """The price table, lazily; its footer is read now, so a damaged file fails here with a clear error."""
        if not self.exists():
            return empty_prices().lazy()
        path = self.prices_path
        try:
            schema = pl.read_parquet_schema(path)
        except BaseException as e:
            if _is_read_error(e):
                raise damaged(path, e) from None
            raise
        missing = [c for c in PRICE_SCHEMA if c not in schema]
        if missing:
            raise DataError(f"missing column(s) {missing}: expected the store's price table; "
                            f"{REMEDY[path.name]}", file=path)
        return pl.scan_parquet(path)

    def collect(self, lf: pl.LazyFrame, **kwargs: object) -> pl.DataFrame:
        """Collect a query on `scan_prices()`, a damaged data page reported as a DataError naming the file."""
        try:
            return lf.collect(**kwargs)  # type: ignore[call-overload,no-any-return]
        except BaseException as e:
            if _is_read_error(e) and not isinstance(e, DataError):
                raise damaged(self.prices_path, e) from None
            raise

    def read_prices(self, tickers: Iterable[str] | None = None) -> pl.DataFrame:
        lf = self.scan_prices()
        if tickers is not None:
            lf = lf.filter(pl.col("ticker").is_in(list(tickers)))
        return self.collect(lf)

    def tickers(self) -> list[str]:
        return self.collect(self.scan_prices().select(pl.col("ticker").unique().sort()))["ticker"].to_list()

    def write_prices(self, df: pl.DataFrame, *, file: str | Path | None = None) -> pl.DataFrame:
        """Replace the whole price table with `df` (validated first; the old table stays on any error)."""
        df = validate_prices(df, file=file)
        self._write_prices_file(df)
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
        merged = validate_prices(merged, file=self.prices_path)
        with self.writing_prices(sorted(set(new["ticker"].to_list()) | replace)):
            self._write_prices_file(merged)
        return merged

    def _write_prices_file(self, df: pl.DataFrame) -> None:
        self._replace(df, self.prices_path)

    @staticmethod
    def _replace(df: pl.DataFrame, path: Path) -> None:
        """Write `df` over `path`, keeping the version it replaces as the previous generation (`prev_path`)."""
        write_parquet(df, path, before_replace=lambda: keep_previous(path))

    @contextmanager
    def writing_prices(self, tickers: list[str]) -> Iterator[None]:
        """Mark `tickers` interrupted in the manifest while their prices are written; restore the manifest if the
        write fails cleanly (a killed process leaves the mark: the caller's final manifest update clears it).
        """
        if not tickers:
            yield
            return
        old = self.read_manifest()
        known = old.filter(pl.col("ticker").is_in(tickers))
        fresh = pl.DataFrame({"ticker": sorted(set(tickers) - set(known["ticker"].to_list()))},
                             schema={"ticker": pl.String()})
        marks = pl.concat([known, fresh], how="diagonal_relaxed").with_columns(
            pl.lit(INTERRUPTED).alias("status"), pl.lit(INTERRUPTED_MESSAGE).alias("message"))
        self.upsert_manifest(marks)
        try:
            yield
        except BaseException:
            if old.height or self.manifest_path.exists():
                write_parquet(old, self.manifest_path)
            raise

    # ---- metadata -----------------------------------------------------------------------------------------
    def read_meta(self) -> pl.DataFrame:
        if not self.meta_path.exists():
            return empty_meta()
        return read_parquet_file(self.meta_path)

    def upsert_meta(self, df: pl.DataFrame, *, file: str | Path | None = None) -> pl.DataFrame:
        """Merge metadata rows by ticker (new rows win). Tickers without prices yet are kept (a sector map
        may come before its prices); `meta_for_prices` only shows tickers that have prices.
        """
        new = validate_meta(df, file=file)
        old = self.read_meta()
        merged = pl.concat([old, new], how="diagonal_relaxed").unique(subset="ticker", keep="last").sort("ticker")
        merged = validate_meta(merged, file=self.meta_path)
        self._replace(merged, self.meta_path)
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
        return read_parquet_file(self.manifest_path)

    def upsert_manifest(self, df: pl.DataFrame) -> pl.DataFrame:
        new = df.select([pl.col(c).cast(t) if c in df.columns else pl.lit(None, t).alias(c)
                         for c, t in MANIFEST_SCHEMA.items()])
        merged = (
            pl.concat([self.read_manifest(), new], how="vertical")
            .unique(subset="ticker", keep="last", maintain_order=True)
            .sort("ticker")
        )
        self._replace(merged, self.manifest_path)
        return merged

    def manifest_from_prices(self, source: str, tickers: Iterable[str] | None = None) -> pl.DataFrame:
        """Manifest rows (status ok) describing the stored coverage of `tickers` (default: all)."""
        lf = self.scan_prices()
        if tickers is not None:
            lf = lf.filter(pl.col("ticker").is_in(list(tickers)))
        return self.collect(
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
        )

    # ---- checking ---------------------------------------------------------------------------------------------
    def damaged_files(self) -> list[DataError]:
        """One error per store file that cannot be read (naming the file and what to do); [] when all read."""
        errors: list[DataError] = []
        for path in sorted(self.root.glob("*.parquet")) if self.root.is_dir() else []:
            try:
                if path == self.prices_path:
                    self.collect(self.scan_prices().select(pl.len()))
                    pl.read_parquet_schema(path)
                else:
                    read_parquet_file(path)
            except DataError as e:
                errors.append(e)
            except BaseException as e:
                if not _is_read_error(e):
                    raise
                errors.append(damaged(path, e))
        return errors

    # ---- extra tables -------------------------------------------------------------------------------------
    def extra_path(self, name: str) -> Path:
        if not name.isidentifier():
            raise ValueError(f"table name {name!r}: expected a plain identifier")
        return self.root / f"{name}.parquet"

    def read_extra(self, name: str) -> pl.DataFrame | None:
        path = self.extra_path(name)
        return read_parquet_file(path) if path.exists() else None

    def write_extra(self, name: str, df: pl.DataFrame) -> None:
        write_parquet(df, self.extra_path(name))


__all__ = ["MANIFEST_SCHEMA", "META_SCHEMA", "PRICE_SCHEMA", "Store", "utcnow"]
