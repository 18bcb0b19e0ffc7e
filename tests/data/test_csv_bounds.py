"""Files that are not price tables are refused quickly, with a short reason, before any parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from dynmix.data.sources.csv import import_file
from dynmix.data.sources.table_check import Limits, sniff
from dynmix.data.store import Store
from dynmix.errors import DataError


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(("data", "fragment"), [
    (b"\x00\x01\x02binary" * 100, "binary content"),
    (b"PK\x03\x04" + b"\x00" * 100, "Excel workbook"),
    (b"\x1f\x8b\x08" + b"\x00" * 100, "gzip"),
    (b"PAR1" + b"\x00" * 100, "Parquet"),
])
def test_not_text_refused(store: Store, tmp_path: Path, data: bytes, fragment: str) -> None:
    with pytest.raises(DataError, match=fragment) as e:
        import_file(store, _write(tmp_path, "x.csv", data))
    assert e.value.file and e.value.file.endswith("x.csv")
    assert not store.exists()


def test_long_line_refused_with_its_number(store: Store, tmp_path: Path) -> None:
    data = b"date,ticker,close\n2020-01-02,A,1\n2020-01-03,A," + b"9" * (5 << 20) + b"\n2020-01-06,A,1\n"
    with pytest.raises(DataError, match="longer than 4 MB") as e:
        import_file(store, _write(tmp_path, "x.csv", data))
    assert e.value.row == 3 and len(str(e.value)) < 300


def test_limits_are_exact_at_block_boundaries(tmp_path: Path) -> None:
    limits = Limits(max_line_bytes=(1 << 20) + 10)
    ok = b"a,b\n" + b"x" * ((1 << 20) + 10) + b"\n" + b"y\n"
    assert sniff(_write(tmp_path, "ok.csv", ok), limits) == ","
    bad = b"a,b\n" + b"x" * ((1 << 20) + 11) + b"\n"
    with pytest.raises(DataError) as e:
        sniff(_write(tmp_path, "bad.csv", bad), limits)
    assert e.value.row == 2


def test_too_many_columns_refused(tmp_path: Path) -> None:
    header = "date;" + ";".join(f"T{i}" for i in range(200)) + "\n"
    with pytest.raises(DataError, match="201 columns in the header: expected at most 100") as e:
        sniff(_write(tmp_path, "w.csv", header.encode()), Limits(max_columns=100))
    assert e.value.row == 1
