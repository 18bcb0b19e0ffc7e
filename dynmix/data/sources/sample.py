"""The embedded sample: real daily prices shipped inside skfolio (offline), with the GICS map in data/.

20 S&P 500 companies, the S&P 500 index (stored as ^GSPC) and five MSCI USA factor ETFs. skfolio gives one
adjusted close per day, so open = high = low = close = adj_close and volume is null. Its prices are rounded to
3 decimals, which makes early returns often exactly zero: the default window starts in 2005.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import polars as pl

import dynmix
from dynmix.data.schema import LINE, PRICE_FIELDS, validate_meta, validate_prices
from dynmix.data.status import LoadSummary
from dynmix.data.store import Store
from dynmix.errors import DataError

SOURCE = "sample"
INDEX_TICKER = "^GSPC"
META_FILE = "sp500_meta.csv"


def data_dir() -> Path:
    """The repository's shipped data/ folder (works from a checkout and an editable install)."""
    return Path(dynmix.__file__).resolve().parents[1] / "data"


def sample_meta() -> pl.DataFrame:
    """Name, GICS sector and industry, asset type of every sample ticker (from data/sp500_meta.csv)."""
    path = data_dir() / META_FILE
    if not path.exists():
        raise DataError("the sample's metadata file is missing: expected it shipped in the repository", file=path)
    df = pl.read_csv(path, infer_schema=False, row_index_name=LINE, row_index_offset=2)
    return validate_meta(df, file=path)


def _long(wide: pd.DataFrame, start: dt.date, rename: dict[str, str] | None = None) -> pl.DataFrame:
    """(T, A) pandas closes -> canonical long rows from `start` on."""
    wide = wide.rename(columns=rename or {})
    frame = pl.from_pandas(wide.rename_axis("date").reset_index())
    long = (
        frame.with_columns(pl.col("date").cast(pl.Date))
        .filter(pl.col("date") >= start)
        .unpivot(index="date", variable_name="ticker", value_name="close")
        .drop_nulls("close")
    )
    return long.with_columns(
        *[pl.col("close").alias(c) for c in PRICE_FIELDS if c != "close"],
        pl.lit(None, pl.Float64).alias("volume"),
    )


def sample_prices(start: str | dt.date = "2005-01-01") -> pl.DataFrame:
    """The sample's canonical price table from `start` (dates >= start)."""
    from skfolio.datasets import load_factors_dataset, load_sp500_dataset, load_sp500_index

    try:
        first = dt.date.fromisoformat(start) if isinstance(start, str) else start
    except ValueError as e:
        raise DataError(f"start = {start!r}: expected a date as YYYY-MM-DD") from e
    parts = [
        _long(load_sp500_dataset(), first),
        _long(load_sp500_index(), first, {"SP500": INDEX_TICKER}),
        _long(load_factors_dataset(), first),
    ]
    out = pl.concat(parts, how="vertical_relaxed")
    if out.height == 0:
        raise DataError(f"no sample prices on or after {first}: expected a start before 2022-12-28")
    return out


def load_sample(store: Store, start: str | dt.date = "2005-01-01") -> LoadSummary:
    """Write the sample into `store`, replacing the sample tickers' rows. Idempotent: a second call with the
    same `start` rewrites nothing, so every file stays byte-for-byte the same.
    """
    new = validate_prices(sample_prices(start))
    tickers = sorted(new["ticker"].unique().to_list())
    meta = sample_meta().filter(pl.col("ticker").is_in(tickers))

    old = store.read_prices(tickers)
    prices_changed = not old.equals(new)
    if prices_changed:
        store.upsert_prices(new, replace_tickers=tickers)

    old_meta = store.read_meta().filter(pl.col("ticker").is_in(tickers))
    meta_changed = not set(meta.columns) <= set(old_meta.columns) or not old_meta.select(meta.columns).equals(meta)
    if meta_changed:
        store.upsert_meta(meta)

    manifest = store.read_manifest().filter(pl.col("ticker").is_in(tickers))
    manifest_ok = manifest.height == len(tickers) and bool(
        ((manifest["source"] == SOURCE) & (manifest["status"] == "ok")).all()
    )
    if prices_changed or not manifest_ok:
        store.upsert_manifest(store.manifest_from_prices(SOURCE, tickers))
    return LoadSummary.of(SOURCE, new, meta_rows=meta.height, changed=prices_changed or meta_changed)
