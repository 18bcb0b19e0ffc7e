"""The chunk helpers of the views build: ordered threaded map, not-null columns of the Parquet writer."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from dynmix.errors import DynMIXError
from dynmix.views.chunks import mapped, write_parquet_chunks
from dynmix.views.generation import GrowingDigest, file_digest


def test_mapped_keeps_the_order_and_runs_at_most_a_few_items_ahead() -> None:
    handed: list[int] = []

    def items() -> Iterator[int]:
        for i in range(12):
            handed.append(i)
            yield i

    def slow_square(i: int) -> tuple[int, str]:
        time.sleep(0.02 * (i % 3))  # later items may finish first
        return i * i, threading.current_thread().name

    out = []
    for k, (value, _) in enumerate(mapped(slow_square, items(), workers=2)):
        assert len(handed) <= k + 3  # at most workers + 1 results wait beside the one in hand
        out.append(value)
    assert out == [i * i for i in range(12)]


def test_mapped_raises_the_workers_error() -> None:
    def fail(i: int) -> int:
        if i == 3:
            raise ValueError("item 3")
        return i

    with pytest.raises(ValueError, match="item 3"):
        list(mapped(fail, iter(range(6))))


def test_required_columns_are_written_not_null_and_read_back_the_same(tmp_path: Path) -> None:
    frames = [pl.DataFrame({"date": [1, 2], "ticker": ["A", "B"], "x": [1.5, None], "flag": [0.0, 1.0]}),
              pl.DataFrame({"date": [3], "ticker": ["C"], "x": [2.5], "flag": [1.0]})]
    path = tmp_path / "t.parquet"
    digest = write_parquet_chunks(iter(frames), path, required=["date", "ticker", "flag"])
    assert digest == file_digest(path)  # hashed while written: the same as read back
    schema = pq.read_schema(path)
    assert [f.nullable for f in schema] == [False, False, True, False]
    assert pl.read_parquet(path).equals(pl.concat(frames))


def test_a_null_in_a_required_column_is_an_error_and_no_file_is_left(tmp_path: Path) -> None:
    frames = [pl.DataFrame({"date": [1], "ticker": ["A"], "flag": [0.0]}),
              pl.DataFrame({"date": [2], "ticker": ["B"], "flag": [None]}, schema_overrides={"flag": pl.Float64})]
    path = tmp_path / "t.parquet"
    with pytest.raises(DynMIXError, match="'flag' holds a null"):
        write_parquet_chunks(iter(frames), path, required=["date", "ticker", "flag"])
    assert not path.exists()


def test_a_growing_file_is_hashed_whole_however_its_writes_and_reads_interleave(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    path.write_bytes(b"")
    pieces = [bytes([k]) * (1 + 997 * k) for k in range(40)]
    follower = GrowingDigest(path, block=1 << 10)  # reads catch up with the writes and wait for more
    with path.open("ab") as fh:
        for k, piece in enumerate(pieces):
            fh.write(piece)
            fh.flush()
            if k % 7 == 0:
                time.sleep(0.03)
    assert follower.close() == hashlib.sha256(b"".join(pieces)).hexdigest()
