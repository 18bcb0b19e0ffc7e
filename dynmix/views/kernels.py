"""Compiled (numba) kernels of the views build: one pass over a chunk's rows, no temporary columns.

    cross_sums        count, sum and sum of squares per grid day of each feature (the cross-sectional sums)
    standardise_rows  z-score of each feature against its day's mean and 1 / std, clipped, as float32

Rows are a chunk's company-days in (ticker, date) order; a feature is a float32 row of an (F, R) array, NaN where
null (the raw features are finite or null: prices are finite and > 0). Sums run in row order, as `np.bincount`
did (dynmix/views/crosssection.py), so a chunk's sums have the same bits. The kernels release the GIL (`nogil`):
the build's worker thread computes the next chunk beside them. They are compiled on first use and cached beside
this file (`cache=True`), so a later process loads them instead of compiling.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def cross_sums(x: np.ndarray, g: np.ndarray, n_days: int) -> np.ndarray:
    """(F, 3, n_days) float64 count, sum and sum of squares of each non-NaN x[f, r] on day g[r] (x (F, R))."""
    n_f, n_r = x.shape
    out = np.zeros((n_f, 3, n_days))
    for f in range(n_f):
        for r in range(n_r):
            v = x[f, r]
            if v == v:  # not NaN (null)
                d = g[r]
                w = np.float64(v)
                out[f, 0, d] += 1.0
                out[f, 1, d] += w
                out[f, 2, d] += w * w
    return out


@numba.njit(cache=True, nogil=True)
def standardise_rows(x: np.ndarray, g: np.ndarray, mu: np.ndarray, inv: np.ndarray, fill: np.ndarray,
                     winsor: float) -> np.ndarray:
    """(F, R) float32 clip((x - mu[f, g]) * inv[f, g], +-winsor); NaN (null) stays NaN, or 0 where fill[f].

    The arithmetic is float64, as polars' `standardise` (dynmix/views/crosssection.py): the same bits.
    """
    n_f, n_r = x.shape
    out = np.empty((n_f, n_r), dtype=np.float32)
    for f in range(n_f):
        for r in range(n_r):
            d = g[r]
            z = (np.float64(x[f, r]) - mu[f, d]) * inv[f, d]
            if z != z:
                out[f, r] = 0.0 if fill[f] else np.nan
            else:
                out[f, r] = np.float32(min(max(z, -winsor), winsor))
    return out
