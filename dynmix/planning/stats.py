"""Judging strategies: Sharpe intervals and Sharpe-difference tests on daily net returns.

Letters: T days, K strategies, B bootstrap replications.

Every strategy is resampled with the same stationary-bootstrap indices (Politis & Romano; `arch.bootstrap`), so
the intervals and the paired differences keep the cross-strategy correlation and the serial dependence of the
returns. The block length is `arch`'s optimal stationary-bootstrap length (Politis & White), averaged over the
strategies, rounded, and at least 1.

The difference test follows Ledoit & Wolf (2008, "Robust performance hypothesis testing with the Sharpe ratio"):
H0 is SR_a = SR_b, and the bootstrap distribution of d* − d̂ stands in for the null distribution of d̂. This is
their bootstrap without the studentisation (a percentile-t refinement), so it is a little less accurate in small
samples; Memmel's (2003) closed-form test (normal iid returns) is reported beside it as a cross-check.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from dynmix.errors import DynMIXError

TRADING_DAYS = 252


def sharpe(x: np.ndarray) -> np.ndarray:
    """Annualised Sharpe (rf = 0) of daily returns along axis 0: (T, ...) -> (...)."""
    sd = x.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, x.mean(axis=0) / sd * math.sqrt(TRADING_DAYS), np.nan)


def cvar(x: np.ndarray, level: float = 0.95) -> float:
    """Expected shortfall of daily returns: the mean loss (positive) over the worst (1 − level) share of days."""
    x = np.sort(np.asarray(x, dtype=np.float64))
    k = max(1, math.ceil((1.0 - level) * len(x) - 1e-9))  # 1e-9: 0.05·100 is 5.000000000000004
    return float(-x[:k].mean())


def block_length(returns: np.ndarray) -> int:
    """Mean of `arch`'s optimal stationary-bootstrap block lengths over the columns of (T, K) returns, rounded, >= 1."""
    from arch.bootstrap import optimal_block_length

    b = optimal_block_length(returns)["stationary"].to_numpy()
    b = b[np.isfinite(b)]
    return max(1, round(float(b.mean()))) if len(b) else 1


def bootstrap_sharpes(returns: np.ndarray, reps: int = 1000, seed: int = 0,
                      block: int | None = None) -> np.ndarray:
    """(B, K) annualised Sharpe ratios of (T, K) daily returns resampled jointly by a stationary bootstrap."""
    from arch.bootstrap import StationaryBootstrap

    x = np.asarray(returns, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 10:
        raise DynMIXError(f"bootstrap: expected (T, K) daily returns with T >= 10, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise DynMIXError("bootstrap: daily returns must be finite")
    bs = StationaryBootstrap(block if block is not None else block_length(x), x, seed=seed)
    return np.stack([sharpe(data[0][0]) for data in bs.bootstrap(reps)])


def sharpe_interval(boot: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval (lo, hi), each (K,), of bootstrapped Sharpe ratios (B, K)."""
    a = (1.0 - level) / 2.0
    return np.nanquantile(boot, a, axis=0), np.nanquantile(boot, 1.0 - a, axis=0)


def diff_pvalue(boot: np.ndarray, observed: np.ndarray, a: int, b: int) -> float:
    """Two-sided bootstrap p-value of H0: SR_a = SR_b from (B, K) bootstrapped and (K,) observed Sharpe ratios.

    p = share of replications with |(d* − d̂)| >= |d̂|, d = SR_a − SR_b (the centred bootstrap mimics the null).
    """
    d_hat = float(observed[a] - observed[b])
    d = boot[:, a] - boot[:, b]
    d = d[np.isfinite(d)]
    if not len(d) or not math.isfinite(d_hat):
        return float("nan")
    return float((np.sum(np.abs(d - d_hat) >= abs(d_hat)) + 1) / (len(d) + 1))


def memmel_pvalue(x: np.ndarray, y: np.ndarray) -> float:
    """Memmel's (2003) correction of the Jobson–Korkie test of equal Sharpe ratios (daily iid normal returns)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    T = len(x)
    sx, sy = x.std(ddof=1), y.std(ddof=1)
    if T < 3 or sx <= 0 or sy <= 0:
        return float("nan")
    a, b = x.mean() / sx, y.mean() / sy  # daily Sharpe ratios
    rho = float(np.corrcoef(x, y)[0, 1])
    var = (2.0 - 2.0 * rho + 0.5 * (a * a + b * b - 2.0 * a * b * rho * rho)) / T
    if var <= 0:
        return float("nan") if a != b else 1.0
    z = (a - b) / math.sqrt(var)
    return float(2.0 * sps.norm.sf(abs(z)))


def judge(returns: dict[str, np.ndarray], reference: str = "equal_weight", reps: int = 1000,
          seed: int = 0) -> dict[str, dict[str, float]]:
    """Per strategy: sharpe, sharpe_lo, sharpe_hi (95 %), cvar95, and against `reference`: p (bootstrap),
    p_memmel and sharpe_diff. All strategies share one set of bootstrap indices (`seed`).
    """
    names = list(returns)
    x = np.column_stack([np.asarray(returns[n], dtype=np.float64) for n in names])  # (T, K)
    observed = sharpe(x)
    boot = bootstrap_sharpes(x, reps=reps, seed=seed)
    lo, hi = sharpe_interval(boot)
    ref = names.index(reference) if reference in names else None
    out: dict[str, dict[str, float]] = {}
    for k, n in enumerate(names):
        row = {"sharpe": float(observed[k]), "sharpe_lo": float(lo[k]), "sharpe_hi": float(hi[k]),
               "cvar95": cvar(x[:, k])}
        if ref is not None and k != ref:
            row["sharpe_diff"] = float(observed[k] - observed[ref])
            row["p"] = diff_pvalue(boot, observed, k, ref)
            row["p_memmel"] = memmel_pvalue(x[:, k], x[:, ref])
        out[n] = row
    return out
