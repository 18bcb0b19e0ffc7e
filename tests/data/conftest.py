"""Fixtures for the data tests: a store in the temp workspace, file writers and byte snapshots of the store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dynmix.data.store import Store
from dynmix.workspace import Workspace


@pytest.fixture
def store(home: Workspace) -> Store:
    return Store(home.store)


def snapshot_of(root: Path) -> dict[str, bytes]:
    """Every file under `root` (temporary files included) with its bytes."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def snapshot() -> Callable[[Store], dict[str, bytes]]:
    """`snapshot(store)`: the store's files and bytes, to prove a failed step changed nothing."""
    return lambda st: snapshot_of(st.root)


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[[str, str], Path]:
    """`write_file(name, text)`: write a text file under tmp_path/inputs and return its path."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / "inputs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write
