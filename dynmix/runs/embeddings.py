"""A run's embeddings on disk, and the one way to read them.

Layout (HOME/runs/<run-id>/embeddings/):
    embeddings.json         {"format": 2, "dim": D, "dtype": "float16", "every": k, "views": ["explicit", "implicit"],
                            "rows": S, "first_date": ..., "last_date": ..., "clipped": c}
    year=YYYY/part.parquet  date (Date), ticker (String), explicit, implicit (each Array[Float16, D]); sorted by
                            date then ticker, row groups of ROW_GROUP rows (their date statistics let a reader
                            skip what it does not need); the halves byte-stream-split then zstd (220 bytes per
                            company-day for D = 64, against 256 raw and 237 with zstd alone, measured on a
                            5,000-company export)

Only the explicit and implicit representations are stored: fused = (explicit + implicit) / 2 is made on read,
in float32. `every` = k keeps every k-th date of the views, counted back from the last (so the latest date is
always there). float16 keeps ~3 significant digits; a value beyond float16's range is clipped (counted in
`clipped`).

Runs exported before this layout hold embeddings.parquet (date, ticker, view, embedding list[f32]); every reader
here takes either (`RunDir.embeddings_path` names whichever the run holds) and returns the same long form:
date, ticker, embedding (list[f32] of D values) per view.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from dynmix.errors import DataError, DynMIXError
from dynmix.io import write_json

VIEWS = ("explicit", "implicit", "fused")  # what a reader can ask for
STORED = ("explicit", "implicit")  # what is on disk
DIR_NAME = "embeddings"
LEGACY_NAME = "embeddings.parquet"
META_NAME = "embeddings.json"
ROW_GROUP = 65_536  # rows per Parquet row group
F16_MAX = float(np.finfo(np.float16).max)
LEGACY_COLUMNS = ("date", "ticker", "view", "embedding")


def is_legacy(path: Path) -> bool:
    """True for an embeddings.parquet file (the long layout of older runs), False for an embeddings/ folder."""
    return not Path(path).is_dir()


def read_meta(path: Path) -> dict[str, Any]:
    """embeddings.json of an embeddings/ folder (a legacy file: what its rows say, every = 1)."""
    path = Path(path)
    if is_legacy(path):
        return {"format": 1, "dim": embedding_dim(path), "every": 1, "views": stored_views(path)}
    meta_path = path / META_NAME
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise DataError(f"missing {META_NAME}: an interrupted export? re-export with `dynmix embed RUN`",
                        file=meta_path) from e
    except json.JSONDecodeError as e:
        raise DataError(f"not valid JSON ({e}): re-export with `dynmix embed RUN`", file=meta_path) from e
    if not isinstance(meta, dict) or not isinstance(meta.get("dim"), int):
        raise DataError("expected an object with an integer 'dim'", file=meta_path)
    return meta


def check(path: Path) -> Path:
    """`path` if it holds readable embeddings in either layout, else a DataError naming what is wrong."""
    path = Path(path)
    if is_legacy(path):
        schema = pl.scan_parquet(path).collect_schema()
        missing = [c for c in LEGACY_COLUMNS if c not in schema]
        if missing:
            raise DataError(f"missing column(s) {missing}: expected {list(LEGACY_COLUMNS)}", file=path)
        return path
    read_meta(path)
    return path


def _scan_dir(path: Path) -> pl.LazyFrame:
    return pl.scan_parquet(path / "year=*" / "*.parquet", hive_partitioning=True)


def stored_views(path: Path) -> list[str]:
    """The views a reader can ask for (sorted)."""
    path = Path(path)
    if is_legacy(path):
        return sorted(pl.scan_parquet(path).select(pl.col("view").unique()).collect()["view"].to_list())
    return sorted(VIEWS)


def embedding_dim(path: Path) -> int:
    """D, the size of one embedding."""
    path = Path(path)
    if not is_legacy(path):
        return int(read_meta(path)["dim"])
    first = pl.scan_parquet(path).select(pl.col("embedding").list.len()).head(1).collect()
    if first.height == 0:
        raise DataError("no embedding rows: expected at least one", file=path)
    return int(first.item())


def every(path: Path) -> int:
    """The date stride of the export (1: every date)."""
    return 1 if is_legacy(Path(path)) else int(read_meta(Path(path)).get("every", 1))


def scan_view(path: Path, view: str, start: dt.date | None = None, end: dt.date | None = None,
              tickers: Iterable[str] | None = None) -> pl.LazyFrame:
    """date, ticker, embedding (list[f32], D values) of `view` with start <= date <= end (either bound optional),
    of `tickers` when given. Lazy: only the years, row groups and columns the query needs are read.
    """
    path = Path(path)
    if view not in VIEWS:
        raise DynMIXError(f"unknown view {view!r}; expected one of {', '.join(VIEWS)}")
    if is_legacy(path):
        lf = pl.scan_parquet(path).filter(pl.col("view") == view)
    else:
        lf = _scan_dir(path)
        if start is not None:
            lf = lf.filter(pl.col("year") >= start.year)
        if end is not None:
            lf = lf.filter(pl.col("year") <= end.year)
    if start is not None:
        lf = lf.filter(pl.col("date") >= start)
    if end is not None:
        lf = lf.filter(pl.col("date") <= end)
    if tickers is not None:
        lf = lf.filter(pl.col("ticker").is_in(pl.Series(list(tickers), dtype=pl.String).implode()))
    if is_legacy(path):
        return lf.select("date", "ticker", "embedding")
    f32 = pl.Array(pl.Float32, embedding_dim(path))
    if view == "fused":
        emb = (pl.col("explicit").cast(f32) + pl.col("implicit").cast(f32)) / 2
    else:
        emb = pl.col(view).cast(f32)
    return lf.select("date", "ticker", emb.arr.to_list().alias("embedding"))


def dates(path: Path) -> list[dt.date]:
    """The sorted dates that hold embeddings."""
    path = Path(path)
    lf = pl.scan_parquet(path) if is_legacy(path) else _scan_dir(path)
    return lf.select(pl.col("date").unique().sort()).collect()["date"].to_list()


def read_embeddings(path: Path, views: Iterable[str] = VIEWS, start: dt.date | None = None,
                    end: dt.date | None = None) -> pl.DataFrame:
    """The long frame date, ticker, view, embedding (list[f32]) of `views`, stacked in that order."""
    frames = [scan_view(path, v, start, end).with_columns(view=pl.lit(v)).select(*LEGACY_COLUMNS).collect()
              for v in views]
    return pl.concat(frames)


def _array(x: np.ndarray) -> tuple[pa.FixedSizeListArray, int]:
    """(S, D) float32 -> Arrow FixedSizeList<halffloat>[D], and the count of values clipped to float16's range."""
    clipped = int(np.count_nonzero(np.abs(x) > F16_MAX))
    half = np.clip(x, -F16_MAX, F16_MAX).astype(np.float16)
    return pa.FixedSizeListArray.from_arrays(pa.array(half.reshape(-1)), x.shape[1]), clipped


def recover(path: Path) -> list[Path]:
    """Tidy what a killed export left beside `path` (an embeddings/ folder); returns the folders removed.

    An export writes `.embeddings.<pid>.tmp`, moves the previous set to `.embeddings.<pid>.old`, renames the new
    one in and removes the old. Killed between the two renames, `path` is absent and `.old` holds the previous
    complete set: it is put back. Every other `.tmp` / `.old` left behind is removed. Call it under the
    workspace's writer lock (an export's own start does).
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    olds = sorted(path.parent.glob(f".{path.name}.*.old"), key=lambda p: p.stat().st_mtime)
    if not path.exists() and not (path.parent / LEGACY_NAME).exists() and olds:
        last = olds.pop()
        try:
            read_meta(last)
        except DataError:
            olds.append(last)
        else:
            os.replace(last, path)
    removed = [*path.parent.glob(f".{path.name}.*.tmp"), *olds]
    for p in removed:
        shutil.rmtree(p, ignore_errors=True)
    return removed


def write_embeddings(blocks: Iterator[tuple[pl.Series, pl.Series, np.ndarray, np.ndarray]], path: Path,
                     dim: int, stride: int = 1) -> Path:
    """Write embeddings/ from blocks (date (S_b,), ticker (S_b,), explicit (S_b, D), implicit (S_b, D)) in date
    order, one year file at a time, then embeddings.json. The folder appears whole or not at all: it is written
    beside the target and renamed over it (embeddings.json, written last, marks a folder complete); an
    embeddings.parquet of an older export is removed. What a killed export left is tidied first (`recover`).
    """
    path = Path(path)
    recover(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rows, clipped = 0, 0
    first: dt.date | None = None
    last: dt.date | None = None
    writer: pq.ParquetWriter | None = None
    year: int | None = None
    try:
        for date_s, ticker_s, x_e, x_i in blocks:
            if date_s.len() == 0:
                continue
            years = date_s.dt.year().to_numpy()
            for y in np.unique(years):
                sel = np.flatnonzero(years == y)
                if year != int(y):
                    if writer is not None:
                        writer.close()
                    (tmp / f"year={int(y)}").mkdir()
                    writer, year = None, int(y)
                arr_e, c_e = _array(x_e[sel])
                arr_i, c_i = _array(x_i[sel])
                table = pa.table({"date": date_s.gather(sel).to_arrow(), "ticker": ticker_s.gather(sel).to_arrow(),
                                  "explicit": arr_e, "implicit": arr_i})
                if writer is None:
                    writer = pq.ParquetWriter(tmp / f"year={int(y)}" / "part.parquet", table.schema,
                                              compression="zstd", use_dictionary=["ticker"],
                                              write_statistics=["date", "ticker"], column_encoding={
                                                  f"{v}.list.element": "BYTE_STREAM_SPLIT" for v in STORED})
                writer.write_table(table, row_group_size=ROW_GROUP)
                rows, clipped = rows + len(sel), clipped + c_e + c_i
            first = first or date_s[0]
            last = date_s[-1]
        if writer is not None:
            writer.close()
            writer = None
        write_json({"format": 2, "dim": dim, "dtype": "float16", "every": stride, "views": list(STORED),
                    "rows": rows, "first_date": first, "last_date": last, "clipped": clipped}, tmp / META_NAME)
        old = path.with_name(f".{path.name}.{os.getpid()}.old")
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        if writer is not None:
            writer.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    (path.parent / LEGACY_NAME).unlink(missing_ok=True)
    return path
