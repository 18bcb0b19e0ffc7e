"""`dynmix data synth` end to end through typer's CliRunner."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from dynmix.cli import app
from dynmix.data.store import Store

SMALL = ["data", "synth", "--tickers", "40", "--sectors", "4", "--years", "2", "--seed", "1"]


def test_synth_writes_the_store_and_prints_a_summary(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--home", str(tmp_path), *SMALL])
    assert result.exit_code == 0, result.output
    assert "synthetic market" in result.output and "late listings" in result.output
    store = Store(tmp_path / "store")
    assert len(store.tickers()) == 41 and "^MKT" in store.tickers()
    meta = store.read_meta()
    assert meta.filter(pl.col("asset_type") == "equity")["sector"].n_unique() == 4
    assert set(store.read_manifest()["source"].to_list()) == {"synthetic"}
    truth = store.read_extra("truth")
    assert truth is not None and truth.height == store.read_prices(["^MKT"]).height
    again = CliRunner().invoke(app, ["--home", str(tmp_path), *SMALL])  # a synthetic store is replaced silently
    assert again.exit_code == 0, again.output


def test_synth_refuses_a_store_with_real_data(tmp_path: Path, prices: pl.DataFrame) -> None:
    store = Store(tmp_path / "store")
    store.write_prices(prices)
    store.upsert_manifest(store.manifest_from_prices("yahoo"))
    result = CliRunner().invoke(app, ["--home", str(tmp_path), *SMALL])
    assert result.exit_code == 1
    assert "--replace" in result.output and store.tickers() == ["AAA", "BBB", "CCC"]
    forced = CliRunner().invoke(app, ["--home", str(tmp_path), *SMALL, "--replace"])
    assert forced.exit_code == 0, forced.output
    assert "AAA" not in store.tickers()


def test_synth_rejects_bad_arguments(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--home", str(tmp_path), "data", "synth", "--tickers", "5", "--sectors", "3"])
    assert result.exit_code == 1
    assert "at least 2 tickers per sector" in result.output
    assert not (tmp_path / "store").exists()


def test_synth_regime_sectors_stores_the_stressed_truth(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--home", str(tmp_path), *SMALL, "--regime-sectors"])
    assert result.exit_code == 0, result.output
    meta = Store(tmp_path / "store").read_meta().filter(pl.col("asset_type") == "equity")
    assert meta["stressed_sector"].n_unique() == 2  # 4 sectors in 2 pairs when turbulent


def test_synth_held_out_like_options(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--home", str(tmp_path), *SMALL, "--corr-pairs", "1", "--crash-at", "0.5",
                                      "--delist-share", "0.1"])
    assert result.exit_code == 0, result.output
    assert "corr-pairs=1 crash-at=0.5 delist-share=0.1" in result.output.replace("\n", " ")
    row = next(line for line in result.output.splitlines() if "delisted before the end" in line)
    assert row.split("│")[2].strip() == "4"  # a tenth of 40
    truth = Store(tmp_path / "store").read_extra("truth")
    assert truth is not None and (truth["regime"] == 2).sum() == 40  # the crash
