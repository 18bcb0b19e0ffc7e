from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from dynmix.data.store import Store
from dynmix.errors import DynMIXError
from dynmix.evaluation.report import evaluate_run, headline_table
from dynmix.runs.rundir import RunDir
from dynmix.workspace import Workspace

OWN_KEYS = ["split", "sector", "similarity", "hedging", "collapse", "regimes", "notes"]
SECTOR_KEYS = {"knn_accuracy", "logreg_accuracy", "macro_f1", "ari", "nmi"}
OTHER = "20260101-000001-static_implicit"
METHODS = {"dynmix_implicit", "dynmix_explicit", "dynmix_fused", OTHER, "pca", "correlation", "random"}
Evaluated = tuple[Workspace, Path, dict[str, Any]]


def test_report_layout(evaluated: Evaluated) -> None:
    _, run_dir, report = evaluated
    assert json.loads((run_dir / "report.json").read_text()) == report
    assert list(report) == OWN_KEYS
    assert report["split"] == json.loads((run_dir / "split.json").read_text())
    assert set(report["sector"]) == METHODS
    assert all(set(m) == SECTOR_KEYS for m in report["sector"].values())
    assert set(report["similarity"]) == METHODS | {"pearson"}
    assert all(set(m) == {"spearman_future_corr", "precision_at_5"} for m in report["similarity"].values())
    assert set(report["hedging"]) == METHODS | {"pearson"}
    assert all(set(m) == {"pair_vol"} for m in report["hedging"].values())
    assert set(report["collapse"]) == {"implicit", "explicit", "fused", OTHER}
    assert all(set(m) == {"min_std", "mean_std", "effective_rank"} for m in report["collapse"].values())


def test_planted_answers(evaluated: Evaluated) -> None:
    report = evaluated[2]
    imp = report["sector"]["dynmix_implicit"]
    assert imp["ari"] == 1.0 and imp["knn_accuracy"] == 1.0 and imp["logreg_accuracy"] == 1.0
    assert report["sector"]["random"]["ari"] < 0.5
    assert report["sector"][OTHER]["ari"] < 0.5  # the compared run's sector signal is drowned in noise
    # 12 companies have 3 same-sector others among their 5 nearest at best; Solo has none
    assert report["similarity"]["dynmix_implicit"]["precision_at_5"] == pytest.approx(12 * 3 / 5 / 13)
    assert report["similarity"]["pearson"]["spearman_future_corr"] > 0.5
    assert report["collapse"]["implicit"]["effective_rank"] > 1.0
    notes = " ".join(report["notes"])
    assert "Solo" in notes  # the single-company sector is named
    assert "1 with sector 'Unknown' excluded" in notes
    assert "14 companies evaluated" in notes  # 14 equities; the index ^GSPC is not one of them


def test_report_md_and_headline(evaluated: Evaluated) -> None:
    _, run_dir, report = evaluated
    md = (run_dir / "report.md").read_text()
    for title in ("Sector recovery", "Similarity -> future", "Hedging", "Collapse", "Notes", "Protocol"):
        assert title in md
    assert md.count("| method |") == 4 and md.count("| view |") == 1  # sector, similarity, hedging, regimes
    assert "## Per-date scores by market-volatility regime" in md and "spearman_future_corr_stressed" in md
    assert "| **1.000** |" in md  # best values are bold
    assert "| dynmix_implicit |" in md and "| pearson |" in md
    table = headline_table(report)
    assert OTHER in table and "Spearman->future" in table and "pair vol" in table
    assert table.splitlines()[2].startswith("dynmix_implicit")


def test_merge_keeps_other_keys(home: Workspace, make_run: Callable[..., Path]) -> None:
    run_dir = make_run(views=("implicit",))
    (run_dir / "report.json").write_text(json.dumps({"forecast": {"har": {"qlike": 1.5}}, "sector": {"old": {}}}))
    report = evaluate_run(home, run_dir)
    assert report["forecast"] == {"har": {"qlike": 1.5}}
    assert "old" not in report["sector"] and "dynmix_implicit" in report["sector"]
    assert any("'explicit' absent" in n for n in report["notes"])
    assert "| har | 1.500 |" in (run_dir / "report.md").read_text()  # other steps' tables are rendered too


def test_too_few_sectors_noted_not_crash(home: Workspace, make_run: Callable[..., Path]) -> None:
    store = Store(home.store)
    tech = pl.col("ticker").str.starts_with("T")
    store.upsert_meta(store.read_meta().with_columns(
        sector=pl.when(tech).then(pl.col("sector")).otherwise(pl.lit("Unknown"))))
    run_dir = make_run(views=("implicit",))
    report = evaluate_run(home, run_dir)
    assert report["sector"] == {}
    assert any("fewer than 2 sectors" in n for n in report["notes"])
    assert "not available" in (run_dir / "report.md").read_text()
    assert "—" in headline_table(report)


def test_missing_embeddings_is_a_clear_error(home: Workspace, make_run: Callable[..., Path]) -> None:
    run_dir = make_run(views=("implicit",))
    (run_dir / "embeddings.parquet").unlink()
    with pytest.raises(DynMIXError, match="embeddings not found"):
        evaluate_run(home, run_dir)


def test_bad_split_names_the_file(home: Workspace, make_run: Callable[..., Path]) -> None:
    run_dir = make_run(views=("implicit",))
    (run_dir / "split.json").write_text(json.dumps({"train_end": "last tuesday"}))
    with pytest.raises(DynMIXError, match=r"split.json.*train_end = 'last tuesday'"):
        evaluate_run(home, run_dir)


def test_update_report_turns_nan_into_null(tmp_path: Path) -> None:
    out = RunDir(tmp_path).update_report({"similarity": {"m": {"spearman_future_corr": float("nan")}}})
    assert out["similarity"]["m"]["spearman_future_corr"] is None
    assert json.loads((tmp_path / "report.json").read_text()) == out
