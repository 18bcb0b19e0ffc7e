"""Per-date scores by market-volatility regime (dynmix.evaluation.regimes) and their place in report.json."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from dynmix.errors import DataError
from dynmix.evaluation.regimes import REGIMES, regime_labels
from dynmix.evaluation.report import evaluate_run
from dynmix.workspace import Workspace


def test_regime_labels_use_training_terciles_only() -> None:
    vol = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 100.0, 0.5, np.nan])
    train = np.array([True] * 6 + [False] * 3)
    labels, (lo, hi) = regime_labels(vol, train)
    assert (lo, hi) == pytest.approx(tuple(np.quantile(vol[:6], [1 / 3, 2 / 3])))  # the test's 100 sets nothing
    assert labels.tolist() == [0, 0, 1, 1, 2, 2, 2, 0, -1]


def test_regime_labels_need_training_dates() -> None:
    with pytest.raises(DataError, match="at least 3"):
        regime_labels(np.array([1.0, 2.0, np.nan]), np.array([True, True, True]))


def test_report_has_per_date_scores_by_regime(home: Workspace, make_run: Callable[..., Path]) -> None:
    report = evaluate_run(home, make_run())
    reg = report["regimes"]
    assert set(reg["n_dates"]) == set(REGIMES) and all(n > 0 for n in reg["n_dates"].values())
    ours, pearson = reg["scores"]["dynmix_implicit"], reg["scores"]["pearson"]
    for suffix in (*REGIMES, "per_date"):
        # planted: each date's embeddings are sector centres plus small noise, so neighbours share the sector
        # (4-company sectors, k = 5: at most 3 of 5 neighbours can share it; the planted structure reaches that)
        assert ours[f"precision_at_5_{suffix}"] == pytest.approx(pearson[f"precision_at_5_{suffix}"])
        assert ours[f"precision_at_5_{suffix}"] > 0.5
        assert ours[f"spearman_future_corr_{suffix}"] > 0.1
        assert 0 < ours[f"pair_vol_{suffix}"] < 1
        assert f"spearman_future_corr_{suffix}" in pearson
    # the per-company-mean scores are still there beside them
    assert "spearman_future_corr" in report["similarity"]["dynmix_implicit"]


def test_the_trainers_float16_yearly_export_scores_like_the_older_file(home: Workspace,
                                                                      make_run: Callable[..., Path]) -> None:
    older = evaluate_run(home, make_run("20260101-000000-old"))
    yearly = evaluate_run(home, make_run("20260101-000001-new", yearly=True))
    a, b = older["regimes"]["scores"]["dynmix_implicit"], yearly["regimes"]["scores"]["dynmix_implicit"]
    assert set(a) == set(b)
    for key, value in a.items():
        assert b[key] == pytest.approx(value, abs=0.02), key  # the same embeddings to float16 precision
    assert older["sector"]["dynmix_implicit"]["ari"] == pytest.approx(yearly["sector"]["dynmix_implicit"]["ari"])


def test_run_without_gamma_is_noted(home: Workspace, make_run: Callable[..., Path]) -> None:
    report = evaluate_run(home, make_run(gamma=False))
    assert report["regimes"] is None
    assert any("no per-date scores by regime" in n for n in report["notes"])
