"""Similarity -> future and hedging (docs/DESIGN.md §11; hedging after Dolphin et al. 2022).

Shapes: N companies, D features, T dates. A similarity matrix `sim` is (N, N), fitted on the train period;
the returns it is scored against are (T, N) from the test period only.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

TRADING_DAYS = 252
MIN_OBS = 20  # fewest overlapping daily returns for a correlation or a pair volatility


def cosine_matrix(x: np.ndarray) -> np.ndarray:
    """(N, D) -> (N, N) cosine similarity; an all-zero row is similar to nothing (0)."""
    x = np.nan_to_num(np.asarray(x, dtype=np.float64))
    norm = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return np.clip(norm @ norm.T, -1.0, 1.0)


def return_correlation(returns: pd.DataFrame, min_obs: int = MIN_OBS) -> np.ndarray:
    """(T, N) daily returns -> (N, N) pairwise Pearson correlation over the days both companies have a return (as
    `DataFrame.corr(min_periods=min_obs)`); NaN where fewer than `min_obs` overlap or a company is flat on them.

    Four matrix products of the values and their observed-mask (BLAS, every core) instead of pandas' loop over
    the pairs (one core): the evaluation at thousands of companies computes several of these (RESULTS.md, section 13).
    """
    x = returns.to_numpy(dtype=np.float64)  # (T, N)
    m = np.isfinite(x)
    with np.errstate(invalid="ignore"):
        centre = np.nanmean(np.where(m, x, np.nan), axis=0)  # (N,) less cancellation below; Pearson ignores shifts
    x = np.where(m, x - np.nan_to_num(centre), 0.0)
    mf = m.astype(np.float64)
    n = mf.T @ mf  # (N, N) days both observed
    s = x.T @ mf  # s[i, j]: sum of i's returns on the days j is observed too
    q = (x * x).T @ mf  # q[i, j]: sum of i's squares on those days
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = x.T @ x - s * s.T / n
        var_i = q - s * s / n  # i's sum of squared deviations on the pair's days
        var_j = var_i.T
        flat = (var_i <= 1e-12 * q) | (var_j <= 1e-12 * q.T)  # rounding left of a constant series
        corr = cov / np.sqrt(var_i * var_j)
    corr[(n < min_obs) | flat | ~np.isfinite(corr)] = np.nan
    return np.clip(corr, -1.0, 1.0)


MAX_PAIRS = 2_000_000  # past this (~2,000 companies) Spearman runs on a seeded sample of pairs (RESULTS.md 13)


def pairs(n: int, max_pairs: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) with i < j: every pair of n, or a sample of `max_pairs` of them without replacement, the same for
    the same n (seed 0), so every method is scored on the same pairs.
    """
    max_pairs = MAX_PAIRS if max_pairs is None else max_pairs
    if n * (n - 1) // 2 <= max_pairs:
        return np.triu_indices(n, k=1)
    return _sampled_pairs(n, max_pairs)


@functools.lru_cache(maxsize=4)
def _sampled_pairs(n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """`pairs`' sample, drawn once per n (the regime scores ask for it per date); read-only arrays."""
    k = np.sort(np.random.default_rng(0).choice(n * (n - 1) // 2, size=size, replace=False))  # row-major numbers
    first = np.arange(n, dtype=np.int64) * (2 * n - np.arange(n, dtype=np.int64) - 1) // 2  # number of row i's 1st
    i = np.searchsorted(first, k, side="right") - 1
    j = k - first[i] + i + 1
    i.flags.writeable = j.flags.writeable = False
    return i, j


def spearman_future(sim: np.ndarray, future_corr: np.ndarray) -> float:
    """Spearman rank correlation of similarity vs realised correlation over the pairs of companies (`pairs`)."""
    assert sim.shape == future_corr.shape, f"sim {sim.shape} and future_corr {future_corr.shape} must match"
    iu = pairs(sim.shape[0])
    a, b = sim[iu], future_corr[iu]
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return float("nan")
    rho = spearmanr(a[ok], b[ok]).statistic
    return float(rho)


def precision_at_k(sim: np.ndarray, labels: list[str], k: int = 5) -> float:
    """Mean over companies of the share of its k most similar others that share its sector."""
    n = sim.shape[0]
    assert n == len(labels), f"sim is {sim.shape}, labels has {len(labels)}"
    k = min(k, n - 1)
    if k < 1:
        return float("nan")
    codes = np.unique(np.asarray(labels, dtype=str), return_inverse=True)[1]  # (N,) sector codes
    s = np.nan_to_num(sim, nan=-np.inf)  # a copy
    np.fill_diagonal(s, -np.inf)
    # each row's k largest, ties to the lower index (a stable sort's pick) without sorting the row: its k-th value,
    # everything above it, then the first of its ties that fill the k (a running count only where ties overfill)
    kth = np.partition(s, n - k, axis=1)[:, n - k:n - k + 1]  # (N, 1) k-th largest
    above, tie = s > kth, s == kth
    need = k - above.sum(axis=1)  # (N,)
    top = above | tie  # (N, N)
    extra = np.flatnonzero(tie.sum(axis=1) > need)
    if extra.size:
        ties = tie[extra]
        top[extra] = above[extra] | (ties & (np.cumsum(ties, axis=1) <= need[extra, None]))
    return float((top & (codes[None, :] == codes[:, None])).sum() / (n * k))


def least_similar_partner(sim: np.ndarray) -> np.ndarray:
    """(N, N) -> (N,) index of each company's least similar other company."""
    s = np.where(np.eye(sim.shape[0], dtype=bool), np.inf, np.nan_to_num(sim, nan=np.inf))
    return np.argmin(s, axis=1)


def pair_volatility(returns: pd.DataFrame, partner: np.ndarray, min_obs: int = MIN_OBS) -> float:
    """Annualised volatility of each equal-weight pair (i, partner[i]) on (T, N) returns, averaged over i."""
    r = returns.to_numpy(dtype=np.float64)  # (T, N)
    assert r.shape[1] == len(partner), f"returns have {r.shape[1]} columns, partner {len(partner)}"
    pair = 0.5 * (r + r[:, partner])  # (T, N): NaN where either leg is missing
    n_obs = np.isfinite(pair).sum(axis=0)
    ok = n_obs >= max(min_obs, 2)
    if not ok.any():
        return float("nan")
    vol = np.nanstd(pair[:, ok], axis=0, ddof=1) * np.sqrt(TRADING_DAYS)
    return float(vol.mean())


def similarity_metrics(
    sim: np.ndarray,
    test_returns: pd.DataFrame,
    labels: list[str | None],
    *,
    precision_k: int = 5,
) -> tuple[dict[str, float], dict[str, float]]:
    """Similarity -> future and hedging metrics of one method: ({spearman, precision@k}, {pair_vol}).

    `labels` (N,) sectors, None for an unknown sector (left out of precision@k only).
    """
    future = return_correlation(test_returns)
    known = np.array([s is not None for s in labels], dtype=bool)
    sim_out = {
        "spearman_future_corr": spearman_future(sim, future),
        f"precision_at_{precision_k}": precision_at_k(
            sim[np.ix_(known, known)], [s for s in labels if s is not None], precision_k
        ),
    }
    hedge = {"pair_vol": pair_volatility(test_returns, least_similar_partner(sim))}
    return sim_out, hedge
