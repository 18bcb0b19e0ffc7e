from __future__ import annotations

import numpy as np
import pytest

from dynmix.evaluation.collapse import collapse_metrics, effective_rank


def test_effective_rank_isotropic_rank_one_and_constant() -> None:
    rng = np.random.default_rng(0)
    iso = rng.normal(size=(20_000, 8))
    assert effective_rank(iso) == pytest.approx(8.0, abs=0.1)
    line = rng.normal(size=(500, 1)) @ rng.normal(size=(1, 8))
    assert effective_rank(line) == pytest.approx(1.0, abs=1e-3)
    assert effective_rank(np.ones((50, 8))) == 0.0


def test_effective_rank_matches_svd_definition() -> None:
    x = np.random.default_rng(1).normal(size=(300, 6)) * np.array([5, 3, 1, 1, 0.5, 0.1])
    s = np.linalg.svd(x - x.mean(0), compute_uv=False)
    p = s / s.sum()
    assert effective_rank(x) == pytest.approx(np.exp(-(p * np.log(p)).sum()))


def test_collapse_metrics_std() -> None:
    x = np.random.default_rng(2).normal(size=(1000, 4)) * np.array([1.0, 2.0, 0.0, 3.0])
    m = collapse_metrics(x)
    assert m["min_std"] == 0.0
    assert m["mean_std"] == pytest.approx(1.5, abs=0.1)
    assert 1.0 < m["effective_rank"] < 3.0 + 1e-9
    with pytest.raises(AssertionError):
        collapse_metrics(np.ones((1, 4)))
