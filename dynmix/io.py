"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename over the target."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl


def atomic_write(path: str | Path, write: Callable[[Path], object], before_replace: Callable[[], object] | None = None
                 ) -> Path:
    """Call `write(tmp_path)` then atomically move tmp_path to `path`. On failure the old file stays.
    `before_replace` runs once the new file is complete, just before the rename (e.g. to keep the old version).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        if before_replace is not None:
            before_replace()
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def write_parquet(df: pl.DataFrame, path: str | Path, before_replace: Callable[[], object] | None = None) -> Path:
    return atomic_write(path, lambda p: df.write_parquet(p, compression="zstd", statistics=True), before_replace)


def write_text(text: str, path: str | Path) -> Path:
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(obj: Any, path: str | Path) -> Path:
    return write_text(json.dumps(obj, indent=2, default=str, sort_keys=False) + "\n", path)


def append_jsonl(obj: dict[str, Any], path: str | Path) -> None:
    """Append one JSON line (used for logs, where a partial last line is tolerated by readers)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(obj, default=float) + "\n")


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file, skipping a torn last line."""
    out: list[dict[str, Any]] = []
    path = Path(path)
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
