"""Statistical factors of the cross-section: the implicit view's window on what the other companies did.

A company's own return series tells its volatility, beta and autocorrelation, but not which companies it moves
with; its covariances with these statistical factors do (the planted-sector recovery they give is in the README
and tests/train/test_learns.py).

Letters: T days, N companies, P factors (the `[views] factors` setting: the implicit view has 2 + P channels).

The factors are principal components of the companies' scaled returns (no labels, no sectors), estimated
with no look-ahead:

- every `refit` grid days s, the loadings V_s (N, P) are the top-P right singular vectors of the trailing
  `fit_window` days [s - fit_window, s) of the demeaned panel, over the companies observed on at least
  `min_share` of those days (the others load 0);
- V_s is rotated onto V_{s-refit} (orthogonal Procrustes) so a factor keeps its meaning from one fit to the
  next (eigenvectors swap order and flip sign when their eigenvalues are close); the first fit's columns get
  a positive largest loading;
- the factor returns on the days [s, s + refit) are F[t] = X[t] V_s: day t's returns with loadings fitted
  strictly before s <= t. Days before the first fit are null.

Only components that stand out of noise are kept: at most half the companies in the fit, and only those whose
variance clears the Marchenko-Pastur edge sigma^2 (1 + sqrt(n / days))^2 of an n-company, `fit_window`-day sample
of pure noise, with sigma^2 the per-company variance left beside the top (market) component. The other columns
are 0. On the 500 x 10 synthetic market that keeps the 10 large components (eigenvalues 6-170 vs an edge of
3-4; the 11th is ~2.6); on a market of a few companies moving together it keeps the market alone.

The fit runs BLAS on one thread: its (W, W) problems are too small to share, and on a busy 2-core machine
OpenBLAS's waiting threads spin (5,000 companies x 25 years: 1.6 s on one thread, 32 s on two under load).
"""

from __future__ import annotations

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

from dynmix.config import ViewsConfig
from dynmix.views.implicit import trailing_scaled

CHANNELS = ["ret_scaled", "mkt_scaled"]  # the implicit view's company and market channels; then factor_channels


def factor_channels(k: int) -> list[str]:
    """Names of the statistical-factor channels of the implicit view (columns of market.parquet)."""
    return [f"factor{j + 1}_scaled" for j in range(k)]


def with_factor_channels(market: pl.DataFrame, panel: np.ndarray, cfg: ViewsConfig) -> pl.DataFrame:
    """`market` (by date, with gidx) plus the factor channels: the statistical factors of the equities' scaled
    returns `panel` (T, N), each scaled like the market by its own trailing std.
    """
    if cfg.factors == 0:
        return market
    first = min(cfg.factor_min_days, cfg.factor_window) if cfg.partial_history else cfg.factor_window
    f = statistical_factors(panel, cfg.factors, cfg.factor_window, cfg.factor_refit, first_fit=first)  # (T, P)
    raw = [pl.Series(f"_f{j}", f[:, j]).fill_nan(None).gather(market["gidx"]) for j in range(cfg.factors)]
    return market.with_columns(raw).with_columns(
        trailing_scaled(pl.col(f"_f{j}"), cfg.vol_scale_window).alias(name)
        for j, name in enumerate(factor_channels(cfg.factors))).drop(r.name for r in raw)


def _top_loadings(w: np.ndarray, k: int) -> np.ndarray:
    """(n, j) top right singular vectors of the demeaned (days, n) window `w`, through its (days, days) Gram
    matrix: the j <= k components whose variance clears the Marchenko-Pastur noise edge (see the module).
    """
    days, n = w.shape
    vals, vecs = np.linalg.eigh((w @ w.T).astype(np.float64))  # (W,), (W, W) ascending
    vals, vecs = vals[::-1], vecs[:, ::-1]
    noise = vals[1:].sum() / max(n - 1, 1)  # per-company variance left beside the top (market) component, x W
    edge = noise * (1.0 + np.sqrt(n / days)) ** 2
    j = min(k, int((vals > edge).sum()))
    s = np.sqrt(vals[:j])  # (j,) singular values
    return (w.T @ np.ascontiguousarray(vecs[:, :j]).astype(w.dtype)).astype(np.float64) / s  # (n, j) unit columns


def _procrustes(v: np.ndarray, prev: np.ndarray) -> np.ndarray:
    """`v` rotated by the orthogonal Q minimising ||v Q - prev||_F."""
    a, _, b = np.linalg.svd(v.T @ prev)
    return v @ (a @ b)  # type: ignore[no-any-return]


def statistical_factors(panel: np.ndarray, k: int, fit_window: int = 252, refit: int = 63,
                        min_share: float = 0.8, first_fit: int | None = None) -> np.ndarray:
    """(T, k) float64 factor returns of the (T, N) panel (NaN where a company has no return); NaN before the
    first fit, on the first `first_fit` days (default `fit_window`).

    With `first_fit` < `fit_window` the fits before day `fit_window` use the expanding window [0, s) (a short
    panel or a young market gets factors after `first_fit` days); from the first fit on the schedule is every
    `refit` days, so the default (`first_fit = fit_window`) is the trailing-window fit alone.
    """
    if panel.ndim != 2:
        raise ValueError(f"statistical_factors: expected a (T, N) panel, got shape {panel.shape}")
    first = fit_window if first_fit is None else first_fit
    if k < 1 or fit_window < 2 or refit < 1 or not 0.0 < min_share <= 1.0 or not 2 <= first <= fit_window:
        raise ValueError(f"statistical_factors: k={k}, fit_window={fit_window}, refit={refit}, "
                         f"min_share={min_share}, first_fit={first} (expected k >= 1, fit_window >= 2, refit >= 1, "
                         "0 < min_share <= 1, 2 <= first_fit <= fit_window)")
    with threadpool_limits(1, user_api="blas"):  # small (W, W) problems: BLAS threads would only spin
        return _fit(panel, k, fit_window, refit, min_share, first)


def _fit(panel: np.ndarray, k: int, fit_window: int, refit: int, min_share: float, first: int) -> np.ndarray:
    t, n = panel.shape
    observed = ~np.isnan(panel)
    x = np.where(observed, panel, 0.0).astype(np.float32)
    out = np.full((t, k), np.nan)
    start = fit_window - ((fit_window - first) // refit) * refit  # the trailing-window fit days, extended back
    days = list(range(start, t, refit))
    fits: list[np.ndarray] = []  # (N, k) loadings of each fit day, before rotation
    for s in days:
        lo = max(0, s - fit_window)  # expanding until the window is full
        live = observed[lo:s].mean(axis=0) >= min_share  # (N,)
        kk = min(k, int(live.sum()) // 2)
        v = np.zeros((n, k))
        if kk > 0:
            w = x[lo:s, live]
            top = _top_loadings(w - w.mean(axis=0), kk)
            v[live, : top.shape[1]] = top
        fits.append(v)
    if not fits:
        return out
    # the anchor is the first full-window fit (the first fit when there is none): its columns get a positive
    # largest loading, later fits are rotated onto their predecessor, earlier (expanding-window) fits onto their
    # successor; so the factors from fit_window on are the same whatever `first` is
    a = next((j for j, s in enumerate(days) if s >= fit_window), 0)
    sign = np.sign(fits[a][np.abs(fits[a]).argmax(axis=0), np.arange(k)])  # (k,) 0 for an all-zero column
    fits[a] = fits[a] * np.where(sign == 0, 1.0, sign)
    for j in range(a + 1, len(fits)):
        fits[j] = _procrustes(fits[j], fits[j - 1])
    for j in range(a - 1, -1, -1):
        fits[j] = _procrustes(fits[j], fits[j + 1])
    for s, v in zip(days, fits, strict=True):
        out[s : s + refit] = x[s : s + refit] @ v
    return out
