"""`dynmix data verify [--repair]`: check the store (readable files, price schema, uniqueness, manifest agreement)
and rebuild what can be rebuilt.

Checks: every Parquet file reads; the prices pass the canonical checks (schema, positive prices, valid tickers)
and are unique on (ticker, date); every priced ticker has a manifest row whose rows and dates agree with the
prices, none is left `interrupted`; the metadata reads. `--repair` rewrites the manifest from the prices (the
source of each ticker kept where the old manifest knew it, `failed` rows kept as they were) and moves a damaged
manifest or metadata file aside (`<name>.parquet.damaged`) and puts back the previous generation the store kept
(`<name>.parquet.prev`, the version the last write replaced) where it reads; damaged prices with no readable
previous generation cannot be rebuilt here: the finding says to load the data again.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from dynmix.data.schema import validate_prices
from dynmix.data.store import INTERRUPTED, MANIFEST_SCHEMA, Store, prev_path, utcnow
from dynmix.errors import DataError


@dataclass
class Verification:
    problems: list[str] = field(default_factory=list)  # what is wrong, each naming the file
    repaired: list[str] = field(default_factory=list)  # what --repair did

    @property
    def ok(self) -> bool:
        return not self.problems


def _readable(path: Path) -> bool:
    try:
        pl.read_parquet(path)
    except Exception:  # noqa: BLE001 - any failure to read means it cannot be put back
        return False
    return True


def verify_store(store: Store, repair: bool = False) -> Verification:
    out = Verification()
    damaged = {str(e.file): e for e in store.damaged_files()}
    for e in damaged.values():
        out.problems.append(str(e))
    if repair:
        for path in (store.prices_path, store.manifest_path, store.meta_path):
            prev = prev_path(path)
            if str(path) not in damaged or (path == store.prices_path and not _readable(prev)):
                continue  # damaged prices with nothing to put back stay, reported: only a new load rebuilds them
            os.replace(path, path.with_name(path.name + ".damaged"))
            out.repaired.append(f"moved the damaged {path.name} aside to {path.name}.damaged")
            if _readable(prev):
                shutil.copy2(prev, path)
                when = datetime.fromtimestamp(prev.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
                out.repaired.append(f"restored {path.name} from the previous generation the store kept "
                                    f"({prev.name}, written {when}): what the last write added is gone, load it "
                                    "again")
                del damaged[str(path)]
    prices_ok = str(store.prices_path) not in damaged
    if not store.exists() or not prices_ok:
        return out
    prices = store.read_prices()
    try:
        validate_prices(prices, file=store.prices_path)
    except DataError as e:
        out.problems.append(str(e))
    dup = prices.select("ticker", "date").is_duplicated()
    if dup.any():
        first = prices.filter(dup).row(0, named=True)
        out.problems.append(f"{store.prices_path}: {int(dup.sum())} rows repeat a (ticker, date), e.g. "
                            f"{first['ticker']} {first['date']}: expected each once")
    if str(store.manifest_path) in damaged and not repair:
        return out
    truth = store.manifest_from_prices("unknown")
    manifest = store.read_manifest()
    joined = truth.join(manifest, on="ticker", how="left", suffix="_m")
    missing = joined.filter(pl.col("status_m").is_null())["ticker"].to_list()
    stale = joined.filter(pl.col("status_m").is_not_null() & (pl.col("status_m") == "ok") & (
        (pl.col("rows") != pl.col("rows_m")) | (pl.col("first_date") != pl.col("first_date_m"))
        | (pl.col("last_date") != pl.col("last_date_m"))))["ticker"].to_list()
    interrupted = manifest.filter(pl.col("status") == INTERRUPTED)["ticker"].to_list()
    for what, names in (("have prices but no manifest row", missing),
                        ("have manifest rows that disagree with their prices (rows or dates)", stale),
                        (f"are marked {INTERRUPTED!r} (a write did not finish)", interrupted)):
        if names:
            shown = ", ".join(names[:8]) + (" …" if len(names) > 8 else "")
            out.problems.append(f"{store.manifest_path}: {len(names)} ticker(s) {what}: {shown}")
    fix = sorted(set(missing) | set(stale) | (set(interrupted) & set(truth["ticker"].to_list())))
    if repair and fix:
        sources = dict(zip(manifest["ticker"].to_list(), manifest["source"].to_list(), strict=True))
        rows = truth.filter(pl.col("ticker").is_in(fix)).with_columns(
            pl.col("ticker").replace_strict(sources, default="unknown").fill_null("unknown").alias("source"),
            pl.lit(utcnow()).cast(pl.Datetime("us", "UTC")).alias("last_refresh"),
            pl.lit("rebuilt from the prices by `dynmix data verify --repair`").alias("message"),
        ).select(list(MANIFEST_SCHEMA))
        store.upsert_manifest(rows)
        out.repaired.append(f"rebuilt the manifest rows of {len(fix)} ticker(s) from the prices")
    return out


__all__ = ["Verification", "verify_store"]
