"""Volatility forecast targets and baselines: realised variance, HAR-RV (Corsi 2009) and GARCH(1,1) (`arch`).

Letters: N companies, T dates, H horizon (days ahead). Inputs are (N, T) daily log returns, NaN where missing.
Every forecast made at origin t uses returns up to t only and targets the mean daily variance (squared
returns) of days t+1 .. t+H. Both baselines are fitted on the training period only (origins whose targets
end on or before `last`) and then applied to later origins with fixed parameters, never refitted.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from dynmix.errors import DynMIXError

HAR_LAGS = (1, 5, 22)  # daily, weekly, monthly realised variance (Corsi 2009)
GARCH_MIN_OBS = 250  # fewer training returns than this: no GARCH fit for that company
GARCH_SCALE = 100.0  # arch works in percent returns


def trailing_mean(x: np.ndarray, window: int, min_obs: int | None = None) -> np.ndarray:
    """(N, T) mean of x over days t−window+1 .. t (NaN-aware); NaN with fewer than `min_obs` observed."""
    obs = np.isfinite(x)
    c = np.cumsum(np.where(obs, x, 0.0), axis=1)
    k = np.cumsum(obs, axis=1)
    c = np.concatenate([np.zeros_like(c[:, :1]), c], 1)
    k = np.concatenate([np.zeros_like(k[:, :1]), k], 1)
    s = c[:, window:] - c[:, :-window]  # (N, T − window + 1): sums ending at t = window − 1 ..
    n = k[:, window:] - k[:, :-window]
    out = np.full(x.shape, np.nan)
    need = window if min_obs is None else min_obs
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:, window - 1 :] = np.where(n >= need, s / np.maximum(n, 1), np.nan)
    return out


def forward_mean(x: np.ndarray, horizon: int) -> np.ndarray:
    """(N, T) mean of x over days t+1 .. t+H; NaN when any of them is missing or beyond the last date."""
    out = np.full(x.shape, np.nan)
    back = trailing_mean(x, horizon)  # mean of t−H+1 .. t
    out[:, : x.shape[1] - horizon] = back[:, horizon:]
    return out


def har_design(r2: np.ndarray) -> np.ndarray:
    """(N, T, 3) HAR regressors at each origin: mean squared return of the last 1, 5 and 22 days."""
    return np.stack([trailing_mean(r2, lag, min_obs=max(1, int(0.8 * lag))) for lag in HAR_LAGS], axis=-1)


def har_rows(returns: np.ndarray, horizon: int, last: int) -> tuple[np.ndarray, np.ndarray]:
    """A HAR regression's training rows: (N, D) mean squared return over the next `horizon` days at origins
    t <= last − horizon, and their (N, D, 3) regressors.
    """
    r2 = np.asarray(returns, dtype=np.float64) ** 2  # (N, T) daily RV proxy
    y = forward_mean(r2, horizon)[:, : max(last - horizon + 1, 0)]
    return y, har_design(r2)[:, : y.shape[1]]


class HARRV:
    """Pooled HAR-RV: RV_{t+1..t+H} = b0 + b_d RV_d + b_w RV_w + b_m RV_m, by OLS over companies and origins.

    `fit(returns, last)` uses origins t with t + H <= last (targets inside the training period); `coef_` =
    (b0, b_d, b_w, b_m); `predict` floors forecasts at `floor_` (1 % of the mean training target).
    """

    def __init__(self, horizon: int = 5) -> None:
        self.horizon = horizon

    def fit(self, returns: np.ndarray, last: int) -> HARRV:
        y, x = har_rows(returns, self.horizon, last)
        ok = np.isfinite(y) & np.isfinite(x).all(-1)
        if ok.sum() < 10:
            raise DynMIXError(f"HAR-RV: only {int(ok.sum())} complete (company, date) rows in the training period; "
                              "expected at least 10")
        design = np.column_stack([np.ones(ok.sum()), x[ok]])
        self.coef_, *_ = np.linalg.lstsq(design, y[ok], rcond=None)
        self.floor_ = 0.01 * float(y[ok].mean())
        return self

    def predict(self, returns: np.ndarray) -> np.ndarray:
        """(N, T) forecast of the mean daily variance of t+1 .. t+H at every origin t."""
        x = har_design(returns.astype(np.float64) ** 2)
        pred = self.coef_[0] + x @ self.coef_[1:]
        return np.maximum(pred, self.floor_)


def garch_forecasts(returns: np.ndarray, last: int, horizon: int = 5,
                    on_company: Callable[[int], None] | None = None) -> tuple[np.ndarray, list[str]]:
    """(N, T) GARCH(1,1) forecast of the mean daily variance (plus squared mean) of t+1 .. t+H, and notes.

    Per company: constant mean, GARCH(1,1), normal errors, fitted on its observed returns up to `last`
    (arch's `last_obs`), then filtered through the later returns with those parameters for 1..H-step
    forecasts from every origin. Missing days are skipped (the series is the company's observed returns).
    """
    from arch import arch_model

    n, t = returns.shape
    out = np.full((n, t), np.nan)
    notes: list[str] = []
    for i in range(n):
        obs = np.flatnonzero(np.isfinite(returns[i]))
        n_train = int((obs <= last).sum())
        if n_train < GARCH_MIN_OBS:
            notes.append(f"GARCH: company {i} has {n_train} training returns (< {GARCH_MIN_OBS}); no forecast")
        else:
            y = returns[i, obs] * GARCH_SCALE
            model = arch_model(y, mean="Constant", vol="GARCH", p=1, q=1, dist="normal", rescale=False)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # convergence chatter; the parameters are checked below
                res = model.fit(last_obs=n_train, disp="off")
            if not np.all(np.isfinite(res.params.to_numpy())):
                notes.append(f"GARCH: company {i} did not converge; no forecast")
            else:
                f = res.forecast(horizon=horizon, start=0, reindex=False)  # rows: origins 0 .. len(y) − 1
                var = f.variance.to_numpy().mean(1) + float(res.params["mu"]) ** 2
                out[i, obs[-var.shape[0]:]] = var / GARCH_SCALE**2
        if on_company is not None:
            on_company(i)
    return out, notes
