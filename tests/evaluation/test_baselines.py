from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pytest

from dynmix.evaluation.baselines import (
    baseline_vectors,
    correlation_rows,
    pca_loadings,
    period,
    random_vectors,
    returns_panel,
)


def test_returns_panel_from_adj_close_with_gaps() -> None:
    d = [dt.date(2020, 1, i) for i in (2, 3, 6, 7)]
    prices = pl.DataFrame({
        "date": d + d[:2] + d[3:],
        "ticker": ["A"] * 4 + ["B"] * 3,
        "adj_close": [10.0, 11.0, 9.9, 9.9, 20.0, 10.0, 15.0],
    })
    r = returns_panel(prices, ["B", "A", "C"])
    assert list(r.columns) == ["B", "A", "C"]
    assert r.loc[d[1], "A"] == pytest.approx(0.1)
    assert r.loc[d[2], "A"] == pytest.approx(-0.1)
    assert r.loc[d[1], "B"] == pytest.approx(-0.5)
    assert np.isnan(r.loc[d[2], "B"])  # B has no price that day: no filled return
    assert r.loc[d[3], "B"] == pytest.approx(0.5)  # return since B's previous stored price
    assert r["C"].isna().all()
    assert list(period(r, d[2], None).index) == d[2:]
    assert list(period(r, None, d[1]).index) == [d[1]]
    pd.testing.assert_frame_equal(returns_panel(prices.reverse(), ["B", "A", "C"]), r)  # row order does not matter


def _two_blocks(seed: int = 0, t: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(t, 2))
    cols = [f[:, 0] + 0.3 * rng.normal(size=t) for _ in range(5)] + [f[:, 1] + 0.3 * rng.normal(size=t)
                                                                        for _ in range(5)]
    return pd.DataFrame(np.column_stack(cols))


def test_pca_loadings_shape_and_structure() -> None:
    r = _two_blocks()
    load = pca_loadings(r, dim=64)
    assert load.shape == (10, 9)  # min(dim, N - 1)
    top2 = load[:, :2] / np.linalg.norm(load[:, :2], axis=1, keepdims=True)
    cos = top2 @ top2.T  # rotation-invariant: the two factors have equal variance
    assert cos[:5, :5].min() > 0.95 and np.abs(cos[:5, 5:]).max() < 0.3  # planted blocks separate
    assert np.allclose(pca_loadings(r, 3), pca_loadings(r, 3))


def test_correlation_rows_and_random() -> None:
    r = _two_blocks()
    c = correlation_rows(r)
    assert c.shape == (10, 10) and np.allclose(np.diag(c), 1.0)
    assert c[0, 1] > 0.8 and abs(c[0, 9]) < 0.2
    assert np.array_equal(random_vectors(5, 3, 7), random_vectors(5, 3, 7))
    assert not np.array_equal(random_vectors(5, 3, 7), random_vectors(5, 3, 8))


def test_baseline_vectors_use_each_period_only() -> None:
    train, test = _two_blocks(0), _two_blocks(1)
    out = baseline_vectors(train, test, dim=4, seed=0)
    assert set(out) == {"pca", "correlation", "random"}
    assert np.allclose(out["correlation"][0], correlation_rows(train))
    assert np.allclose(out["correlation"][1], correlation_rows(test))
    assert out["pca"][0].shape == (10, 4)
