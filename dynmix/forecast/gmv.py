"""Global minimum variance portfolios from each covariance forecast: whether the world model's Σ̂ pays off.

Every REBALANCE-th test date t (data up to t): the companies valid at t with returns on each of the last WINDOW
days and on each day until the next rebalance. Covariances of daily log returns: the world model's (the mean
of its Σ̂ over the next H days), the sample covariance of the last WINDOW days, Ledoit–Wolf (scikit-learn), a
PCA factor model (PCA_FACTORS factors plus the diagonal residual) and EWMA (RiskMetrics, λ = 0.94, zero mean).
GMV weights unconstrained (Σ⁺1 / 1ᵀΣ⁺1) and long-only (scipy SLSQP on the simplex), held until the next
rebalance (rebalanced daily to those weights); the score is the annualised volatility of their daily simple
returns over the test period.

Letters: N companies, T dates, A assets at a rebalance, L window.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import minimize
from sklearn.covariance import LedoitWolf

from dynmix.forecast.compare import EWMA_LAMBDA
from dynmix.forecast.world import world_covariance
from dynmix.models.world import WorldModel
from dynmix.runs.panel import WorldPanel

WINDOW = 252  # trailing days of returns behind the estimates
REBALANCE = 5  # days between rebalances (weekly)
PCA_FACTORS = 3
MAX_ASSETS = 1000  # Σ̂ is formed densely: larger universes are not scored
TRADING_DAYS = 252
METHODS = ("world_model", "sample", "ledoit_wolf", "pca_factor", "ewma")


def gmv_weights(cov: np.ndarray) -> np.ndarray:
    """(A,) unconstrained global-minimum-variance weights Σ⁺1 / 1ᵀΣ⁺1 (pseudo-inverse: a singular Σ is allowed)."""
    x = np.linalg.pinv(cov, hermitian=True) @ np.ones(len(cov))
    return x / x.sum()


def gmv_long_only(cov: np.ndarray) -> np.ndarray:
    """(A,) long-only GMV weights: min wᵀΣw on the simplex (SLSQP from 1/A)."""
    a = len(cov)
    scale = float(np.mean(np.diag(cov))) or 1.0  # the solver's tolerances are absolute
    c = cov / scale
    res = minimize(lambda w: w @ c @ w, np.full(a, 1.0 / a), jac=lambda w: 2.0 * c @ w, method="SLSQP",
                   bounds=[(0.0, 1.0)] * a, constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0,
                                                          "jac": lambda w: np.ones_like(w)}],
                   options={"ftol": 1e-12, "maxiter": 500})
    w = np.clip(res.x, 0.0, None)
    return w / w.sum()


def pca_factor_cov(x: np.ndarray, k: int = PCA_FACTORS) -> np.ndarray:
    """(A, A) k-factor covariance of the (L, A) returns x: top-k eigenpairs of the sample covariance plus the
    residual variances on the diagonal.
    """
    s = np.cov(x, rowvar=False)
    k = max(1, min(k, s.shape[0] - 1))
    vals, vecs = np.linalg.eigh(s)
    v, lam = vecs[:, -k:], vals[-k:]
    common = (v * lam) @ v.T
    return common + np.diag(np.maximum(np.diag(s - common), 1e-12))


def ewma_cov(x: np.ndarray, lam: float = EWMA_LAMBDA) -> np.ndarray:
    """(A, A) RiskMetrics covariance of the (L, A) returns x (zero mean, weights λ^age normalised to 1)."""
    w = lam ** np.arange(len(x))[::-1]
    return (x * (w / w.sum())[:, None]).T @ x


def estimates(x: np.ndarray, world: np.ndarray) -> dict[str, np.ndarray]:
    """Every method's (A, A) covariance from the (L, A) trailing returns and the world model's forecast."""
    return {"world_model": world, "sample": np.cov(x, rowvar=False),
            "ledoit_wolf": LedoitWolf().fit(x).covariance_, "pca_factor": pca_factor_cov(x), "ewma": ewma_cov(x)}


def gmv_backtest(raw: np.ndarray, valid: np.ndarray, first: int, world_cov: Callable[[int, np.ndarray], np.ndarray],
                 ) -> tuple[dict[str, dict[str, Any]], int]:
    """{method: {ann_vol, ann_vol_long_only}} over rebalances at first, first + REBALANCE, ... and their count.

    raw (N, T) daily log returns (NaN where missing), valid (T, N) companies with a world-model latent,
    world_cov(t, assets) the world model's (A, A) forecast at t.
    """
    n, t_all = raw.shape
    daily: dict[str, list[np.ndarray]] = {f"{m}{s}": [] for m in METHODS for s in ("", "_long_only")}
    count = 0
    for t in range(max(first, WINDOW - 1), t_all - 1, REBALANCE):
        hold = slice(t + 1, min(t + 1 + REBALANCE, t_all))
        ok = valid[t] & np.isfinite(raw[:, t - WINDOW + 1 : t + 1]).all(1) & np.isfinite(raw[:, hold]).all(1)
        assets = np.flatnonzero(ok)
        if len(assets) < 2 or len(assets) > MAX_ASSETS:
            continue
        x = raw[assets, t - WINDOW + 1 : t + 1].T  # (L, A)
        future = np.expm1(raw[assets, hold])  # (A, days) simple returns
        for m, cov in estimates(x, world_cov(t, assets)).items():
            daily[m].append(gmv_weights(cov) @ future)
            daily[f"{m}_long_only"].append(gmv_long_only(cov) @ future)
        count += 1
    out: dict[str, dict[str, Any]] = {}
    for m in METHODS:
        vols = [float(np.std(np.concatenate(daily[k]), ddof=1) * np.sqrt(TRADING_DAYS)) if daily[k] else None
                for k in (m, f"{m}_long_only")]
        out[m] = {"ann_vol": vols[0], "ann_vol_long_only": vols[1]}
    return out, count


def gmv_comparison(world: WorldModel, panel: WorldPanel, raw: np.ndarray, train_last: int, horizon: int = REBALANCE
                   ) -> tuple[dict[str, dict[str, Any]], str]:
    """The GMV table of the test period (dates after train_last) and a note saying how it was made."""
    valid = panel.valid.cpu().numpy()
    table, count = gmv_backtest(raw, valid, train_last + 1,
                                lambda t, assets: world_covariance(world, panel, t, assets, horizon))
    note = (f"gmv: {count} weekly rebalances of the test period, estimates from the last {WINDOW} days (world model: "
            f"its Σ̂ over the next {horizon} days), weights held {REBALANCE} days; universes of more than "
            f"{MAX_ASSETS} companies are not scored")
    return table, note


__all__ = ["gmv_backtest", "gmv_comparison", "gmv_long_only", "gmv_weights"]
