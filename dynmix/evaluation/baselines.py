"""Baseline company vectors built from returns alone, scored with the same protocol as the embeddings.

Shapes: T dates, N companies, D features. Each builder takes one period's (T, N) daily returns and returns
(N, D) vectors in column order, so train-period vectors never see test-period returns and vice versa.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl

from dynmix.evaluation.similarity import MIN_OBS, return_correlation


def returns_panel(prices: pl.DataFrame, tickers: list[str]) -> pd.DataFrame:
    """Long canonical prices -> (T, N) simple daily returns of adj_close, columns in `tickers` order.

    A return needs the company's previous stored price; gaps leave NaN, never a filled value. The rows are laid
    into the (T, N) array by index (a pivot compares every row with every column name: minutes at 5,000 companies).
    """
    ret = (
        prices.lazy().filter(pl.col("ticker").is_in(tickers))
        .sort("ticker", "date")
        .with_columns((pl.col("adj_close") / pl.col("adj_close").shift(1).over("ticker") - 1.0).alias("ret"))
        .drop_nulls("ret")
        .select("ticker", "date", "ret", pl.col("ticker").rle_id().alias("_tid"))
        .collect()
    )
    days = ret["date"].cast(pl.Int32).to_numpy()  # (R,) days since 1970
    lo = int(days.min()) if len(days) else 0
    seen = np.zeros(int(days.max()) - lo + 1 if len(days) else 0, dtype=bool)
    seen[days - lo] = True
    row = (np.cumsum(seen) - 1)[days - lo]  # (R,) row of each return's date
    column = {t: j for j, t in enumerate(tickers)}
    col = np.array([column[t] for t in ret["ticker"].unique(maintain_order=True).to_list()], dtype=np.int64)
    panel = np.full((int(seen.sum()), len(tickers)), np.nan)
    panel[row, col[ret["_tid"].to_numpy()]] = ret["ret"].to_numpy()
    dates = pl.Series("date", np.flatnonzero(seen) + lo, dtype=pl.Int32).cast(pl.Date)
    return pd.DataFrame(panel, index=pd.Index(dates.to_list(), name="date"), columns=list(tickers))


def period(returns: pd.DataFrame, start: dt.date | None, end: dt.date | None) -> pd.DataFrame:
    """Rows with start <= date <= end (open ends when None)."""
    idx = returns.index
    mask = np.ones(len(idx), dtype=bool)
    if start is not None:
        mask &= np.array([d >= start for d in idx], dtype=bool)
    if end is not None:
        mask &= np.array([d <= end for d in idx], dtype=bool)
    return returns.loc[mask]


def pca_loadings(returns: pd.DataFrame, dim: int) -> np.ndarray:
    """Loadings (N, d) of the companies on the top d principal components of their standardised returns.

    d = min(dim, N - 1, T - 1). A missing return counts as the company's mean (0 after standardising).
    """
    r = returns.to_numpy(dtype=np.float64)  # (T, N)
    t, n = r.shape
    mu = np.nanmean(r, axis=0)
    sd = np.nanstd(r, axis=0, ddof=1)
    z = np.nan_to_num((r - mu) / np.where(sd > 0, sd, 1.0))  # (T, N)
    d = max(1, min(dim, n - 1, t - 1))
    _, s, vt = np.linalg.svd(z, full_matrices=False)  # vt (min(T, N), N)
    loadings = vt[:d].T * (s[:d] / np.sqrt(max(t - 1, 1)))  # (N, d): correlation of company with PC score
    sign = np.sign(loadings.sum(axis=0))  # fix the arbitrary SVD sign per component
    return np.asarray(loadings * np.where(sign == 0, 1.0, sign))


def correlation_rows(returns: pd.DataFrame) -> np.ndarray:
    """Each company's row of the (N, N) return correlation matrix (unknown pairs 0, diagonal 1)."""
    corr = np.nan_to_num(return_correlation(returns, MIN_OBS))
    np.fill_diagonal(corr, 1.0)
    return corr


def pearson_similarity(returns: pd.DataFrame) -> np.ndarray:
    """The train-period Pearson correlation itself, as a similarity matrix (docs/DESIGN.md §11)."""
    return correlation_rows(returns)


def random_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    """Seeded Gaussian (N, D) vectors: the floor every method must beat."""
    return np.random.default_rng(seed).standard_normal((n, dim))


def baseline_vectors(
    train: pd.DataFrame, test: pd.DataFrame, dim: int, seed: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{method: (train-period (N, ·), test-period (N, ·))} for pca, correlation and random."""
    n = train.shape[1]
    return {
        "pca": (pca_loadings(train, dim), pca_loadings(test, dim)),
        "correlation": (correlation_rows(train), correlation_rows(test)),
        "random": (random_vectors(n, dim, seed), random_vectors(n, dim, seed + 1)),
    }
