"""HOME/views as one generation: built aside, swapped in by one rename, a manifest of files and store snapshot;
a killed build leaves the previous views whole and its leftovers go at the next build; evaluate refuses a run
whose data changed.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import polars as pl
import pytest

import dynmix.views.build as build_mod
from dynmix.config import ViewsConfig
from dynmix.data.store import Store
from dynmix.errors import DynMIXError
from dynmix.evaluation.run_inputs import load_run_inputs
from dynmix.runs.rundir import RunDir
from dynmix.runs.viewstamp import views_stamp
from dynmix.views.build import build_views
from dynmix.views.generation import MANIFEST, begin, check_generation, drop_stale, generations_dir, read_generation
from dynmix.views.tensors import load_view_tensors
from dynmix.workspace import Workspace
from tests.conftest import make_prices

CFG = ViewsConfig(window=20, min_window_obs=15, factors=0)
TICKERS = ["E00", "E01", "E02", "E03"]


def _store(home: Path, seed: int = 0) -> Store:
    store = Store(home / "store")
    store.upsert_prices(make_prices(TICKERS, n_days=140, seed=seed))
    store.upsert_meta(pl.DataFrame({"ticker": TICKERS, "sector": ["Energy", "Energy", "Utilities", "Utilities"]}))
    store.upsert_manifest(store.manifest_from_prices("csv"))
    return store


def test_build_swaps_in_one_generation_with_a_manifest(tmp_path: Path) -> None:
    store = _store(tmp_path)
    views = tmp_path / "views"
    build_views(store, views, CFG, progress=False)
    assert views.is_symlink() and views.resolve().parent == generations_dir(views)
    gen = read_generation(views)
    assert gen["store_snapshot"] == store.snapshot()
    assert set(gen["files"]) == {"views.json", "explicit.parquet", "returns.parquet", "market.parquet"}
    for name, info in gen["files"].items():
        assert (views / name).stat().st_size == info["bytes"]
    check_generation(views.resolve(), digests=True)
    first, stamp = views.resolve(), views_stamp(views)

    build_views(store, views, CFG, progress=False)  # the same data again: a new generation, the same stamp
    assert views.resolve() != first and views_stamp(views) == stamp
    build_views(store, views, CFG, progress=False)
    kept = sorted(p.name for p in generations_dir(views).iterdir())
    assert len(kept) == 2 and views.resolve().name in kept  # the current one and the one before it
    _, building = begin(views)  # a build starts: the one before the current one goes, the current one stays
    drop_stale(views)
    assert sorted(p.name for p in generations_dir(views).iterdir()) == sorted([views.resolve().name, building.name])
    assert load_view_tensors(views).tickers == TICKERS


def test_a_killed_build_leaves_the_previous_views_and_is_cleaned(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(tmp_path)
    views = tmp_path / "views"
    build_views(store, views, CFG, progress=False)
    before, stamp = views.resolve(), views_stamp(views)
    _store(tmp_path, seed=1)  # other data: the next build would change every file
    real = build_mod.write_parquet

    def interrupted(df: pl.DataFrame, path: Path) -> Path:  # Ctrl-C after returns and explicit, before market
        if path.name == "market.parquet":
            raise KeyboardInterrupt
        return real(df, path)

    monkeypatch.setattr(build_mod, "write_parquet", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_views(store, views, CFG, progress=False)
    assert views.resolve() == before and views_stamp(views) == stamp  # nothing of the new data is visible
    assert not [p for p in generations_dir(views).iterdir() if "building" in p.name]
    load_view_tensors(views)

    # a kill -9 runs no handler: its folder stays behind until the next build starts
    left = generations_dir(views) / f"20990101-000000-dead{'.building-'}4242"
    left.mkdir()
    (left / "returns.parquet").write_bytes(b"")
    monkeypatch.setattr(build_mod, "write_parquet", real)
    assert views_stamp(views) == stamp and load_view_tensors(views).tickers == TICKERS
    build_views(store, views, CFG, progress=False)
    assert not left.exists()
    assert read_generation(views)["store_snapshot"] == store.snapshot() and views_stamp(views) != stamp


def test_a_plain_views_folder_of_older_versions_becomes_a_generation(tmp_path: Path) -> None:
    store = _store(tmp_path)
    views = tmp_path / "views"
    build_views(store, tmp_path / "old", CFG, progress=False)
    views.mkdir()
    for p in (tmp_path / "old").resolve().iterdir():
        if p.name != MANIFEST:
            (views / p.name).write_bytes(p.read_bytes())
    (views / ".returns.parquet.abc.tmp").write_bytes(b"")  # a torn write of an older build
    assert read_generation(views) == {}
    load_view_tensors(views)  # still readable as it is
    build_views(store, views, CFG, progress=False)
    assert views.is_symlink() and read_generation(views)["generation"]
    assert not any(p.name.endswith(".tmp") for p in views.iterdir())


def test_damaged_views_are_a_clear_error(tmp_path: Path) -> None:
    store = _store(tmp_path)
    views = tmp_path / "views"
    build_views(store, views, CFG, progress=False)
    target = views / "market.parquet"
    target.write_bytes(target.read_bytes()[:100])
    with pytest.raises(DynMIXError, match="market.parquet .*damaged.*views build"):
        load_view_tensors(views)
    build_views(store, views, CFG, progress=False)
    os.unlink(views.resolve() / "returns.parquet")
    with pytest.raises(DynMIXError, match="returns.parquet is missing"):
        load_view_tensors(views)
    os.unlink(views.resolve() / MANIFEST)  # no manifest (views of older versions): the reader's error is clear too
    (views / "returns.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DynMIXError, match="views .* cannot be read .*views build"):
        load_view_tensors(views)


def test_evaluate_refuses_a_run_whose_store_changed(tmp_path: Path) -> None:
    ws = Workspace.at(tmp_path / "ws")
    store = _store(ws.home)
    rd = RunDir.create(ws, "r")
    rd.write_split({"train_start": "2010-01-04", "train_end": "2010-04-01", "test_start": "2010-04-02",
                    "test_end": "2010-07-16"})
    rd.write_embeddings(pl.DataFrame({"date": [dt.date(2010, 5, 3)], "ticker": ["E00"], "view": ["implicit"],
                                      "embedding": [[0.1, 0.2]]}))
    (rd.path / "config.toml").write_text("")
    rd.write_views_record({"views_stamp": "x", "stamp_version": 2, "store_snapshot": store.snapshot()})
    load_run_inputs(ws, rd)  # the data it was trained on: fine
    _store(ws.home, seed=3)
    with pytest.raises(DynMIXError, match=f"store .* changed since run {rd.name} was trained .*other data"):
        load_run_inputs(ws, rd)


def test_embeddings_cut_between_renames_put_back(tmp_path: Path) -> None:
    """A kill between an export's two renames leaves no embeddings/ and the previous set in .old: the next
    export's start puts it back; a killed export's .tmp is removed, never read."""

    import numpy as np

    from dynmix.runs.embeddings import read_embeddings, read_meta, recover, write_embeddings

    def blocks(v: float):  # type: ignore[no-untyped-def]
        d = pl.Series("date", [dt.date(2020, 1, 2)] * 2, dtype=pl.Date)
        t = pl.Series("ticker", ["A", "B"])
        yield d, t, np.full((2, 4), v, np.float32), np.full((2, 4), -v, np.float32)

    path = tmp_path / "run" / "embeddings"
    write_embeddings(blocks(1.0), path, 4)
    before = read_embeddings(path)
    os.replace(path, path.with_name(".embeddings.123.old"))  # the cut swap
    half = path.with_name(".embeddings.124.tmp")
    (half / "year=2020").mkdir(parents=True)
    (half / "year=2020" / "part.parquet").write_bytes(b"PAR1 cut")
    removed = recover(path)
    assert [p.name for p in removed] == [".embeddings.124.tmp"]
    assert read_embeddings(path).equals(before) and read_meta(path)["rows"] == 2
    write_embeddings(blocks(2.0), path, 4)  # a re-run completes and leaves nothing beside it
    assert sorted(p.name for p in path.parent.iterdir()) == ["embeddings"]
    assert read_embeddings(path)["embedding"].list.first().to_list() == [2.0, 2.0, -2.0, -2.0, 0.0, 0.0]
