from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dynmix.evaluation.similarity import (
    TRADING_DAYS,
    cosine_matrix,
    least_similar_partner,
    pair_volatility,
    pairs,
    precision_at_k,
    return_correlation,
    similarity_metrics,
    spearman_future,
)


def _factor_market(n: int = 30, t: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Returns (T, N) from 3 factors with random loadings, and the true correlation (N, N)."""
    rng = np.random.default_rng(seed)
    load = rng.normal(0, 1, (n, 3))
    idio = 0.7
    cov = load @ load.T + idio**2 * np.eye(n)
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    r = rng.normal(size=(t, 3)) @ load.T + rng.normal(0, idio, (t, n))
    return 0.01 * r, corr


def test_return_correlation_is_pandas_pairwise_correlation() -> None:
    """Pairs over the days both have a return, NaN under min_obs overlaps or for a flat series, as DataFrame.corr."""
    rng = np.random.default_rng(1)
    r, _ = _factor_market(n=25, t=300)
    r = r + 0.002  # a mean far from 0 for the products to cancel
    r[rng.random(r.shape) < 0.15] = np.nan
    r[:285, 0] = np.nan  # 15 days left: under min_obs with everyone
    r[:, 1] = 0.01  # flat
    r[100:, 2] = np.nan
    r[:150, 3] = np.nan  # 2 and 3 never overlap
    df = pd.DataFrame(r)
    got, want = return_correlation(df, min_obs=20), df.corr(min_periods=20).to_numpy()
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(got[0]).all() and np.isnan(got[1]).all() and np.isnan(got[2, 3])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_pairs_are_all_pairs_or_the_same_sample_of_them() -> None:
    i, j = pairs(9)
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == [(a, b) for a in range(9) for b in range(a + 1, 9)]
    i, j = pairs(300, max_pairs=5_000)
    got = set(zip(i.tolist(), j.tolist(), strict=True))
    assert len(got) == 5_000 and all(0 <= a < b < 300 for a, b in got)  # distinct pairs, each once
    assert got == set(zip(*(x.tolist() for x in pairs(300, max_pairs=5_000)), strict=True))  # the same each time


def test_spearman_on_sampled_pairs_is_close_to_all_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    import dynmix.evaluation.similarity as similarity

    r, true = _factor_market(n=300, t=400)
    sim = np.corrcoef(r.T)
    full = spearman_future(sim, true)
    monkeypatch.setattr(similarity, "MAX_PAIRS", 5_000)  # of 44,850
    assert spearman_future(sim, true) == pytest.approx(full, abs=0.02)


def test_precision_at_k_picks_as_a_stable_sort_does() -> None:
    """Ties, NaN and k past the finite similarities: the k most similar as a stable descending sort picks them."""
    rng = np.random.default_rng(0)
    for _ in range(100):
        n, k = int(rng.integers(2, 30)), int(rng.integers(1, 8))
        sim = np.round(rng.normal(size=(n, n)), int(rng.integers(0, 3)))
        sim[rng.random((n, n)) < 0.2] = np.nan
        labels = [f"s{int(x)}" for x in rng.integers(0, 4, n)]
        kk = min(k, n - 1)
        s = np.where(np.eye(n, dtype=bool), -np.inf, np.nan_to_num(sim, nan=-np.inf))
        top = np.argsort(-s, axis=1, kind="stable")[:, :kk]
        y = np.asarray(labels)
        assert precision_at_k(sim, labels, k) == float((y[top] == y[:, None]).mean())


def test_cosine_matrix() -> None:
    x = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0], [0.0, 0.0]])
    c = cosine_matrix(x)
    assert c[0, 1] == pytest.approx(0.0)
    assert c[0, 2] == pytest.approx(-1.0)
    assert c[1, 1] == pytest.approx(1.0)
    assert c[3, 0] == 0.0  # a zero vector is similar to nothing


def test_true_correlation_predicts_future_correlation() -> None:
    r, corr = _factor_market()
    future = pd.DataFrame(r).corr().to_numpy()
    assert spearman_future(corr, future) > 0.7
    noise = np.random.default_rng(3).normal(size=corr.shape)
    assert abs(spearman_future(noise + noise.T, future)) < 0.2


def test_precision_at_k_planted_and_mixed() -> None:
    labels = ["A"] * 4 + ["B"] * 4
    sim = np.where(np.equal.outer(labels, labels), 0.9, 0.1)
    assert precision_at_k(sim, labels, k=3) == 1.0
    assert precision_at_k(-sim, labels, k=3) == 0.0  # the most similar are all in the other sector
    assert precision_at_k(sim, labels, k=50) == pytest.approx(3 / 7)  # k clipped to N - 1


def test_hedging_picks_the_planted_negative_pair() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(0, 0.01, (300, 1))
    others = base + rng.normal(0, 0.005, (300, 3))  # all positively related to the base
    hedge = -base + rng.normal(0, 0.002, (300, 1))
    r = pd.DataFrame(np.hstack([base, others, hedge]))
    sim = r.corr().to_numpy()
    partner = least_similar_partner(sim)
    assert partner[0] == 4 and partner[4] == 0
    vol_hedged = pair_volatility(r[[0, 4]], np.array([1, 0]))
    vol_naive = pair_volatility(r[[0, 1]], np.array([1, 0]))
    assert vol_hedged < 0.3 * vol_naive
    expected = np.std(0.5 * (r[0] + r[4]), ddof=1) * np.sqrt(TRADING_DAYS)
    assert vol_hedged == pytest.approx(expected)


def test_pair_volatility_uses_only_overlapping_days() -> None:
    r = pd.DataFrame({"a": [0.01, -0.01] * 15, "b": [np.nan] * 30})
    assert np.isnan(pair_volatility(r, np.array([1, 0])))


def test_similarity_metrics_skip_unknown_sectors_in_precision() -> None:
    r, corr = _factor_market(n=6)
    labels: list[str | None] = ["A", "A", "B", "B", None, None]
    sim_out, hedge = similarity_metrics(corr, pd.DataFrame(r), labels, precision_k=1)
    assert set(sim_out) == {"spearman_future_corr", "precision_at_1"}
    assert 0.0 <= sim_out["precision_at_1"] <= 1.0 and hedge["pair_vol"] > 0
