"""More volatility baselines (EWMA, log-HAR) and the tests that compare forecasters: Diebold–Mariano and the
Model Confidence Set.

Letters: N companies, T dates, D scored dates, M methods. Inputs are (N, T) daily log returns, NaN where missing;
every forecast at origin t uses returns up to t only and targets the mean daily variance of days t+1 .. t+H.
"""

from __future__ import annotations

import math

import numpy as np

from dynmix.errors import DynMIXError
from dynmix.forecast.baselines import har_design, har_rows

EWMA_LAMBDA = 0.94  # RiskMetrics (1996), daily data
EWMA_WARMUP = 22  # observed days before an EWMA forecast is issued


def ewma_variance(returns: np.ndarray, lam: float = EWMA_LAMBDA) -> np.ndarray:
    """(N, T) RiskMetrics EWMA variance σ²_t = λ σ²_{t−1} + (1 − λ) r²_t (zero mean), the forecast of every
    future day's variance (flat term structure). Missing days leave σ² unchanged; seeded with the mean of the
    first observed squared returns; NaN until a company has EWMA_WARMUP observed days.
    """
    r2 = np.asarray(returns, dtype=np.float64) ** 2
    n, t_all = r2.shape
    out = np.full((n, t_all), np.nan)
    var = np.full(n, np.nan)
    seen = np.zeros(n, dtype=np.int64)
    for t in range(t_all):
        x = r2[:, t]
        obs = np.isfinite(x)
        fresh = obs & ~np.isfinite(var)
        var[fresh] = x[fresh]
        upd = obs & ~fresh
        var[upd] = lam * var[upd] + (1.0 - lam) * x[upd]
        seen += obs
        out[:, t] = np.where(seen >= EWMA_WARMUP, var, np.nan)
    return out


class LogHAR:
    """Pooled log-HAR: log RV_{t+1..t+H} = b0 + Σ b_j log RV_j (j = day, week, month), by OLS on training origins
    (t + H <= last), back-transformed with Duan's smearing factor (mean of exp(residual) on the training rows).
    """

    def __init__(self, horizon: int = 5) -> None:
        self.horizon = horizon

    def fit(self, returns: np.ndarray, last: int) -> LogHAR:
        y, x = har_rows(returns, self.horizon, last)
        with np.errstate(divide="ignore", invalid="ignore"):
            ly, lx = np.log(y), np.log(x)
        ok = np.isfinite(ly) & np.isfinite(lx).all(-1)
        if ok.sum() < 10:
            raise DynMIXError(f"log-HAR: only {int(ok.sum())} complete (company, date) rows with positive variance "
                              "in the training period; expected at least 10")
        design = np.column_stack([np.ones(ok.sum()), lx[ok]])
        self.coef_, *_ = np.linalg.lstsq(design, ly[ok], rcond=None)
        self.smear_ = float(np.mean(np.exp(ly[ok] - design @ self.coef_)))
        return self

    def predict(self, returns: np.ndarray) -> np.ndarray:
        x = har_design(np.asarray(returns, dtype=np.float64) ** 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            lx = np.log(x)
        return np.exp(self.coef_[0] + lx @ self.coef_[1:]) * self.smear_


def qlike_loss(real_var: np.ndarray, pred_var: np.ndarray) -> np.ndarray:
    """Elementwise QLIKE x − log x − 1, x = σ²_real / σ²_hat."""
    x = np.asarray(real_var, dtype=np.float64) / np.asarray(pred_var, dtype=np.float64)
    return x - np.log(x) - 1.0


def diebold_mariano(loss_a: np.ndarray, loss_b: np.ndarray, lags: int) -> tuple[float, float]:
    """Diebold–Mariano test of equal expected loss on (D,) per-date losses: (statistic, two-sided p-value).

    d_t = loss_a − loss_b regressed on a constant with Newey–West (HAC, Bartlett kernel, `lags` lags)
    variance (statsmodels); the statistic is that t-value, compared with the standard normal. Positive: a has
    the larger loss. Use lags >= H − 1 for H-day-ahead forecasts (their errors overlap).
    """
    import statsmodels.api as sm

    d = np.asarray(loss_a, dtype=np.float64) - np.asarray(loss_b, dtype=np.float64)
    if d.ndim != 1 or d.size < 3 or not np.all(np.isfinite(d)):
        raise DynMIXError(f"Diebold–Mariano: expected at least 3 finite per-date loss differences, got shape "
                          f"{d.shape} with {int(np.isfinite(d).sum())} finite")
    if np.allclose(d, d[0]):  # constant differential: no variance to test against
        return (0.0, 1.0) if d[0] == 0 else (math.copysign(math.inf, d[0]), 0.0)
    res = sm.OLS(d, np.ones_like(d)).fit(cov_type="HAC", cov_kwds={"maxlags": max(int(lags), 0)}, use_t=False)
    return float(res.tvalues[0]), float(res.pvalues[0])


def model_confidence_set(losses: dict[str, np.ndarray], size: float = 0.1, reps: int = 1000,
                         seed: int = 0, block_size: int | None = None) -> list[str]:
    """The methods in Hansen's Model Confidence Set at level 1 − size (arch, range statistic, stationary
    bootstrap) of (D,) per-date losses, in the order given.
    """
    import pandas as pd
    from arch.bootstrap import MCS

    frame = pd.DataFrame({k: np.asarray(v, dtype=np.float64) for k, v in losses.items()})
    if frame.shape[0] < 3 or not np.isfinite(frame.to_numpy()).all():
        raise DynMIXError(f"MCS: expected at least 3 dates of finite losses, got {frame.shape[0]}")
    mcs = MCS(frame, size=size, reps=reps, block_size=block_size, method="R", seed=seed)
    mcs.compute()
    kept = set(mcs.included)
    return [k for k in losses if k in kept]


__all__ = ["EWMA_LAMBDA", "LogHAR", "diebold_mariano", "ewma_variance", "model_confidence_set", "qlike_loss"]
