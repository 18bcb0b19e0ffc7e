"""Chunks of whole tickers: their grid panels, row keys and their Parquet writing.

ticker_chunks          (offset, length) slices of a ticker-sorted frame, each of whole tickers
ticker_starts          the first row of each ticker of a ticker-sorted frame
panels                 per chunk: its tickers (by rank `tid`) and its returns on the grid, as arrays (`Panel`)
key_columns            a row's date and ticker as Arrow arrays (the ticker a dictionary: no string per row)
ahead                  the next chunk computed in a worker thread while the caller writes this one
mapped                 a function over chunks in worker threads, in order, a bounded number ahead of the caller
write_parquet_chunks   frames (or Arrow tables) of one schema -> the row groups of one Parquet file, atomically
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from dynmix.errors import DynMIXError
from dynmix.io import atomic_write
from dynmix.views import kernels
from dynmix.views.generation import GrowingDigest
from dynmix.views.implicit import stored_rows

ENGINE: Final = "in-memory"  # polars' streaming engine sums floats in a varying order: the views must be reproducible
Item = TypeVar("Item")
Result = TypeVar("Result")
KEYS: Final = ("date", "ticker")  # every row's keys: never null
WORKERS: Final = 2  # threads of `mapped`: the kernels, polars' joins and numpy release the GIL


def ticker_chunks(panel: pl.DataFrame, rows: int, starts: np.ndarray | None = None) -> list[tuple[int, int]]:
    """(offset, length) row slices of a ticker-sorted `panel`, each of whole tickers and about `rows` rows.

    `starts`: the first row of each ticker where known (`ticker_starts`), sorted; else found by comparing neighbours.
    """
    if starts is None:
        firsts = panel.select((pl.col("ticker") != pl.col("ticker").shift()).fill_null(True).arg_true())
        starts = firsts.to_series().to_numpy()  # (N,) first row of each ticker
    cuts = starts[np.r_[True, np.diff(starts // rows) > 0]]
    ends = np.r_[cuts[1:], panel.height]
    return [(int(a), int(b - a)) for a, b in zip(cuts, ends, strict=True)]


def ticker_starts(panel: pl.DataFrame, tickers: list[str]) -> np.ndarray:
    """(len(tickers),) first row of each of `tickers` (sorted, each present) in the ticker-sorted `panel`: a binary
    search per ticker, where comparing every row with its neighbour would first copy the whole string column.
    """
    return panel["ticker"].search_sorted(pl.Series(tickers, dtype=pl.String), side="left").to_numpy()


def _writer(tmp: Path, schema: pa.Schema, compression: str) -> pq.ParquetWriter:
    """Float columns byte-stream-split, so their exponent bytes compress (zstd: -12% on the explicit view, -9% on
    the returns, no slower); min/max statistics only for the keys (date, ticker); the ticker a dictionary. No
    Arrow schema is stored: a dictionary-typed ticker (`key_columns`) reads back as the plain string column.
    Columns `schema` marks not null are written without definition levels (a fifth of the explicit view's encoding).
    """
    floats = [f.name for f in schema if pa.types.is_floating(f.type)]
    keys = [f.name for f in schema if f.name not in floats]
    return pq.ParquetWriter(tmp, schema, compression=compression, use_dictionary=[n for n in keys if n == "ticker"],
                            write_statistics=keys, column_encoding=dict.fromkeys(floats, "BYTE_STREAM_SPLIT"),
                            store_schema=False)


def write_parquet_chunks(frames: Iterable[pl.DataFrame | pa.Table], path: Path, compression: str = "zstd",
                         required: Collection[str] = KEYS) -> str:
    """Write frames of one schema as the row groups of one Parquet file, atomically (see `_writer`); returns the
    file's SHA-256, hashed in a thread as it is written (`generation.GrowingDigest`).

    `compression`: zstd like io.write_parquet, or "lz4" where the writer is the slow side: on byte-stream-split
    floats it comes within 2-4% of zstd's size at a third of its CPU time. `required`: the columns that never hold a
    null (a null there is an error), written as not null.
    """
    digest: list[str] = []

    def write(tmp: Path) -> None:
        writer: pq.ParquetWriter | None = None
        schema: pa.Schema | None = None
        follower = GrowingDigest(tmp)
        try:
            for df in frames:
                table = df if isinstance(df, pa.Table) else df.to_arrow()
                if schema is None:
                    schema = pa.schema([f.with_nullable(f.name not in required) for f in table.schema])
                    writer = _writer(tmp, schema, compression)
                for name in required:
                    if table[name].null_count:
                        raise DynMIXError(f"{path}: column {name!r} holds a null: expected a value in every row")
                assert writer is not None
                writer.write_table(pa.Table.from_arrays(table.columns, schema=schema))
        finally:
            try:
                if writer is not None:
                    writer.close()
            finally:
                digest.append(follower.close())
        if writer is None:
            raise DynMIXError(f"{path}: no rows to write")

    atomic_write(path, write)
    return digest[-1]


@dataclass(frozen=True)
class Panel:
    """One chunk of whole tickers on the grid (`kernels.grid_rows`): its tickers and (R,) arrays, NaN = null."""

    tickers: pl.Series  # the chunk's ticker names, by rank
    tid: np.ndarray  # int32 rank of each row's ticker in `tickers`
    gidx: np.ndarray  # int32 grid day
    ret: np.ndarray  # float64 daily log return (null around a missing day)
    lp_ff: np.ndarray  # float64 last log adj_close known at t
    dollar: np.ndarray  # float64 close x volume


def panels(prices: pl.DataFrame, grid: pl.DataFrame, rows: int, starts: np.ndarray | None = None) -> Iterator[Panel]:
    """Per chunk of whole tickers (about `rows` stored rows): its rows on the grid, from each ticker's first stored
    day to its last (the values of `implicit.on_grid` + `add_returns` and `explicit.dollar_volume`), in chunk order,
    computed `WORKERS` at a time. `starts`: see `ticker_chunks`.
    """

    def panel(chunk: tuple[int, int]) -> Panel:
        obs = stored_rows(prices.slice(*chunk).lazy(), grid)
        cols = [obs[c].cast(pl.Float64).to_numpy() for c in ("close", "adj_close", "volume")]
        return Panel(obs["ticker"].unique(maintain_order=True),
                     *kernels.grid_rows(obs["ticker"].rle_id().to_numpy(), obs["gidx"].to_numpy(), *cols))

    return mapped(panel, iter(ticker_chunks(prices, rows, starts)))


def key_columns(names: pl.Series, tid: np.ndarray, days: np.ndarray, gidx: np.ndarray) -> dict[str, pa.Array]:
    """date, ticker of each row as Arrow arrays: `days` (T,) int32 days since 1970 of the grid gathered by `gidx`,
    the ticker a dictionary of the chunk's `names` indexed by the row's rank `tid`.
    """
    return {"date": pl.Series(days[gidx], dtype=pl.Int32).cast(pl.Date).to_arrow(),  # Arrow date32
            "ticker": pa.DictionaryArray.from_arrays(arrow(tid.astype(np.int32)), names.to_arrow().cast(pa.string()))}


def arrow(values: np.ndarray) -> pa.Array:
    """A numpy array as an Arrow array, through polars (`pa.array` imports pandas: about 1 s in a cold process)."""
    return pl.Series(values).to_arrow()


def ahead(items: Iterator[Item]) -> Iterator[Item]:
    """`items`, each computed in a worker thread while the caller uses the previous one (polars, numpy's
    arithmetic and the Parquet writer release the GIL). `items` yields no None.
    """
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(next, items, None)
        while (item := job.result()) is not None:
            job = pool.submit(next, items, None)
            yield item


def mapped(fn: Callable[[Item], Result], items: Iterator[Item], workers: int = WORKERS) -> Iterator[Result]:
    """fn(item) for each of `items`, in their order, computed in `workers` threads while the caller uses earlier
    results; at most `workers` + 1 results wait, so memory stays bounded. `items` is advanced by the caller's thread.
    """
    with ThreadPoolExecutor(workers) as pool:
        jobs: deque[Future[Result]] = deque()
        for item in items:
            jobs.append(pool.submit(fn, item))
            if len(jobs) > workers:
                yield jobs.popleft().result()
        while jobs:
            yield jobs.popleft().result()
