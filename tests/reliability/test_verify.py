"""`dynmix data verify [--repair]`: readable files, valid unique prices, a manifest that agrees with them."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from dynmix.cli import app
from dynmix.data.store import INTERRUPTED, Store
from dynmix.data.verify import verify_store
from tests.conftest import make_prices

runner = CliRunner()


def _store(home: Path) -> Store:
    store = Store(home / "store")
    store.upsert_prices(make_prices(["AAA", "BBB", "CCC"], n_days=30))
    store.upsert_manifest(store.manifest_from_prices("csv"))
    return store


def test_a_good_store_verifies(tmp_path: Path) -> None:
    _store(tmp_path / "ws")
    result = runner.invoke(app, ["--home", str(tmp_path / "ws"), "data", "verify"])
    assert result.exit_code == 0, result.output
    assert "verifies" in result.output


def test_manifest_disagreements_are_found_and_repaired(tmp_path: Path) -> None:
    store = _store(tmp_path / "ws")
    manifest = store.read_manifest()
    manifest = manifest.with_columns(  # BBB: killed mid-import; CCC: no row; AAA: a wrong row count
        pl.when(pl.col("ticker") == "BBB").then(pl.lit(INTERRUPTED)).otherwise(pl.col("status")).alias("status"),
        pl.when(pl.col("ticker") == "AAA").then(pl.lit(99, pl.Int64)).otherwise(pl.col("rows")).alias("rows"),
    ).filter(pl.col("ticker") != "CCC")
    manifest.write_parquet(store.manifest_path)
    found = verify_store(store)
    text = "\n".join(found.problems)
    assert not found.ok and "no manifest row: CCC" in text and "disagree" in text and "AAA" in text
    assert "'interrupted'" in text and "BBB" in text
    result = runner.invoke(app, ["--home", str(tmp_path / "ws"), "data", "verify", "--repair"])
    assert result.exit_code == 0, result.output
    assert "rebuilt the manifest rows of 3 ticker(s)" in " ".join(result.output.split())
    fixed = store.read_manifest().sort("ticker")
    assert fixed["status"].to_list() == ["ok"] * 3 and fixed["rows"].to_list() == [30] * 3
    assert fixed["source"].to_list() == ["csv", "csv", "unknown"]  # known sources kept


def test_damaged_manifest_is_moved_aside_and_rebuilt(tmp_path: Path) -> None:
    store = _store(tmp_path / "ws")
    store.manifest_path.write_bytes(b"not parquet")
    result = runner.invoke(app, ["--home", str(tmp_path / "ws"), "data", "verify"])
    assert result.exit_code == 1 and "manifest.parquet" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["--home", str(tmp_path / "ws"), "data", "verify", "--repair"])
    assert result.exit_code == 0, result.output
    assert store.manifest_path.with_name("manifest.parquet.damaged").exists()
    assert store.read_manifest().height == 3 and verify_store(store).ok


def test_damaged_prices_are_reported_not_repaired(tmp_path: Path) -> None:
    store = _store(tmp_path / "ws")
    store.prices_path.write_bytes(store.prices_path.read_bytes()[:50])
    result = runner.invoke(app, ["--home", str(tmp_path / "ws"), "data", "verify", "--repair"])
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and "prices.parquet" in text and "load the data again" in text


def test_damaged_prices_are_restored_from_the_previous_generation(tmp_path: Path) -> None:
    store = _store(tmp_path / "ws")
    first = store.read_prices()
    store.upsert_prices(make_prices(["DDD"], n_days=30))  # the write whose result gets damaged
    store.upsert_manifest(store.manifest_from_prices("csv", ["DDD"]))
    prev = store.prices_path.with_name("prices.parquet.prev")
    assert prev.exists() and not prev.samefile(store.prices_path)  # its own file: damage in place spares it
    store.prices_path.write_bytes(store.prices_path.read_bytes()[:60])  # cut off in place
    result = runner.invoke(app, ["--home", str(tmp_path / "ws"), "data", "verify", "--repair"])
    text = " ".join(result.output.split())
    assert "Traceback" not in text and "restored prices.parquet from the previous generation" in text, text
    assert store.read_prices().equals(first)  # the version the last write replaced, exactly
    assert store.prices_path.with_name("prices.parquet.damaged").exists()
    check = verify_store(store)  # DDD's manifest row claimed rows that are gone: rebuilt or reported, never ok
    ddd = store.read_manifest().filter(pl.col("ticker") == "DDD")
    assert check.ok or ddd["status"].item() != "ok", check.problems
    assert ddd.height == 0 or ddd["status"].item() != "ok" or ddd["rows"].item() == 0 or check.ok
