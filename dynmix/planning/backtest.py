"""Walk-forward backtest of allocation strategies, net of costs.

Letters: T dates, A assets, L trailing window (lookback).

Timing: at each rebalance date d a strategy sees only the `lookback` daily returns strictly before d
(decide at the close of d−1), and its target weights earn d's return onwards. Between rebalances weights
drift with returns; turnover = Σ|w_target − w_drifted| (the first trade starts from cash) and its cost,
turnover · cost_bps / 1e4, is subtracted from the return of the rebalance day. A missing return (asset not
trading) counts as 0; an asset is eligible at a rebalance only when its whole trailing window is observed.

Square-root market impact (`Impact`, where volume is known): trading |Δw_a| of asset a moves its price against us by
coeff · σ_a · sqrt(|Δw_a| · NAV / ADV_a) per unit traded, so it costs k_a · |Δw_a|^1.5 of the portfolio with
k_a = coeff · σ_a · sqrt(NAV / ADV_a); σ_a is the daily volatility and ADV_a the mean daily traded value (close ×
volume) over the `days` trading days strictly before the rebalance. An asset without known volume there pays none.
A strategy that takes an `impact` argument gets the k of its assets, to plan with the costs it will pay.
"""

from __future__ import annotations

import datetime as dt
import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from dynmix.errors import DataError, DynMIXError

TRADING_DAYS = 252
ADV_DAYS = 20  # trading days of the average daily volume (and the volatility) of the impact term
# fn(window: pd.DataFrame (L, A'), [w_prev: np.ndarray (A',)], [impact: np.ndarray (A',) | None]) -> weights (A',)
WeightFn = Callable[..., Any]


@dataclass(frozen=True)
class Impact:
    """The square-root impact term of the costs (module docstring): coeff, NAV and the traded value per day."""

    dollar_volume: pd.DataFrame  # (T, A) close × volume by date and asset; NaN where unknown
    coeff: float = 1.0
    nav: float = 1e6
    days: int = ADV_DAYS


def impact_coefficients(returns: np.ndarray, dollar_volume: np.ndarray, coeff: float, nav: float) -> np.ndarray:
    """(A,) k_a = coeff · σ_a · sqrt(nav / ADV_a) from trailing (L, A) daily returns and traded values (NaN where
    unknown); 0 where σ or ADV cannot be measured (fewer than 2 returns, no positive volume).
    """
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: no volume known
        sigma = np.nanstd(returns, axis=0, ddof=1)
        adv = np.nanmean(dollar_volume, axis=0)
        k = coeff * sigma * np.sqrt(nav / adv)
    return np.where(np.isfinite(k) & (adv > 0), k, 0.0)


@dataclass
class BacktestResult:
    returns: pl.DataFrame  # date + one column per strategy: daily returns net of costs
    equity: pl.DataFrame  # date + one column per strategy: growth of 1 (net)
    turnover: pl.DataFrame  # rebalance date + one column per strategy: Σ|w_target − w_drifted|
    weights: dict[str, pl.DataFrame]  # strategy -> rebalance date + one column per asset (target weights)
    metrics: dict[str, dict[str, float]]  # strategy -> ann_return, cagr, ann_vol, sharpe, max_drawdown, turnover, ...

    def metrics_frame(self) -> pl.DataFrame:
        return pl.DataFrame([{"strategy": k, **v} for k, v in self.metrics.items()])


def performance(net: np.ndarray) -> dict[str, float]:
    """Annualised figures of daily net returns (rf = 0): mean·252, CAGR, std·√252, Sharpe, max drawdown."""
    n = len(net)
    equity = np.cumprod(1.0 + net)
    ann_return = float(net.mean() * TRADING_DAYS)
    ann_vol = float(net.std(ddof=1) * np.sqrt(TRADING_DAYS)) if n > 1 else float("nan")
    peak = np.maximum.accumulate(np.r_[1.0, equity])[1:]  # the start (1.0) counts as a peak
    return {
        "ann_return": ann_return,
        "cagr": float(equity[-1] ** (TRADING_DAYS / n) - 1.0) if equity[-1] > 0 else -1.0,
        "ann_vol": ann_vol,
        "sharpe": ann_return / ann_vol if ann_vol > 0 else float("nan"),
        "max_drawdown": float(np.max(1.0 - equity / peak)),
    }


def as_wide_returns(returns: pl.DataFrame | pd.DataFrame) -> pd.DataFrame:
    """(T, A) float64 pandas frame on a sorted DatetimeIndex from a wide polars (with `date`) or pandas frame."""
    if isinstance(returns, pl.DataFrame):
        if "date" not in returns.columns:
            raise DataError(f"returns: expected a `date` column and one column per asset, got {returns.columns[:5]}")
        returns = returns.to_pandas().set_index("date")
    frame = returns.copy()
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.index)).tz_localize(None)
    if frame.index.has_duplicates:
        raise DataError(f"returns: duplicate date {frame.index[frame.index.duplicated()][0].date()}")
    frame = frame.sort_index().astype("float64")
    values = frame.to_numpy()
    bad = np.argwhere(np.isinf(values) | (values <= -1.0))
    if len(bad):
        t, a = bad[0]
        raise DataError(f"returns: {frame.columns[a]} on {frame.index[t].date()} is {values[t, a]}; expected > -1")
    return frame


def rebalance_positions(index: pd.DatetimeIndex, first: int, rebalance: str | int) -> np.ndarray:
    """Row positions (>= first) of the first trading day of each period (D/W/M/Q/Y), or every N rows."""
    if isinstance(rebalance, int):
        if rebalance < 1:
            raise DynMIXError(f"rebalance every N days needs N >= 1, got {rebalance}")
        return np.arange(first, len(index), rebalance)
    freq = {"D": "D", "W": "W", "M": "M", "Q": "Q", "Y": "Y", "A": "Y"}.get(rebalance.upper())
    if freq is None:
        raise DynMIXError(f"rebalance must be D, W, M, Q, Y or a number of days, got {rebalance!r}")
    keys = index.to_period(freq).asi8
    new_period = np.r_[True, keys[1:] != keys[:-1]]
    new_period[first] = True
    return np.flatnonzero(new_period[first:]) + first


def _wants(fn: WeightFn, arg: str) -> bool:
    try:
        return arg in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _target(name: str, fn: WeightFn, window: pd.DataFrame, w_prev: np.ndarray, date: Any,
            impact: np.ndarray | None = None) -> np.ndarray:
    kwargs: dict[str, Any] = {"w_prev": w_prev} if _wants(fn, "w_prev") else {}
    if _wants(fn, "impact"):
        kwargs["impact"] = impact
    out = fn(window, **kwargs)
    w = np.asarray(out, dtype=np.float64).reshape(-1)
    if w.shape != (window.shape[1],) or not np.all(np.isfinite(w)):
        raise DynMIXError(
            f"strategy {name!r} on {date}: expected {window.shape[1]} finite weights (one per asset), got {w.shape}"
        )
    return w


def _run(name: str, fn: WeightFn, frame: pd.DataFrame, starts: np.ndarray, lookback: int, bps: float,
         impact: Impact | None = None) -> dict:
    R = frame.to_numpy()  # (T, A), NaN where not trading
    T, A = R.shape
    R0 = np.nan_to_num(R, nan=0.0)
    DV = impact.dollar_volume.to_numpy() if impact is not None else None  # (T, A)
    net = np.zeros(T - starts[0])
    w_drift = np.zeros(A)  # start in cash
    turnovers, targets, impact_costs = [], [], []
    for i, p in enumerate(starts):
        q = starts[i + 1] if i + 1 < len(starts) else T
        window = R[max(0, p - lookback) : p]  # (L, A): strictly before p
        eligible = np.flatnonzero(~np.isnan(window).any(0))
        if len(eligible) == 0:
            raise DataError(f"returns: no asset has a complete {lookback}-day window before {frame.index[p].date()}")
        w = np.zeros(A)
        sub = frame.iloc[max(0, p - lookback) : p, eligible]
        k = None
        if impact is not None and DV is not None:
            lo = max(0, p - impact.days)
            k = impact_coefficients(R[lo:p], DV[lo:p], impact.coeff, impact.nav)  # (A,)
        w[eligible] = _target(name, fn, sub, w_drift[eligible], frame.index[p].date(),
                              None if k is None else k[eligible])
        trade = np.abs(w - w_drift)
        turnover = float(trade.sum())
        growth = np.cumprod(1.0 + R0[p:q], axis=0)  # (q - p, A)
        value = (1.0 - w.sum()) + growth @ w  # (q - p,): the rest of the capital is cash
        seg = np.diff(np.r_[1.0, value]) / np.r_[1.0, value[:-1]]
        if k is None:
            seg[0] -= turnover * bps / 1e4
        else:
            paid = float(k @ trade**1.5)
            seg[0] -= turnover * bps / 1e4 + paid
            impact_costs.append(paid)
        net[p - starts[0] : q - starts[0]] = seg
        w_drift = w * growth[-1] / value[-1]
        turnovers.append(turnover)
        targets.append(w)
    return {"net": net, "turnover": np.array(turnovers), "weights": np.array(targets),
            "impact": float(np.sum(impact_costs))}


def backtest(
    returns: pl.DataFrame | pd.DataFrame,
    strategies: dict[str, WeightFn],
    *,
    start: str | dt.date | None = None,
    end: str | dt.date | None = None,
    rebalance: str | int = "W",
    cost_bps: float = 10.0,
    lookback: int = 252,
    impact: Impact | None = None,
) -> BacktestResult:
    """Walk-forward backtest of `strategies` on daily simple `returns` (dates x assets) from `start` to `end`;
    with `impact`, costs add the square-root impact term (module docstring) where volume is known.
    """
    frame = as_wide_returns(returns)
    if end is not None:
        frame = frame.loc[: pd.Timestamp(end)]
    if impact is not None:
        dv = impact.dollar_volume.copy()
        dv.index = pd.DatetimeIndex(pd.to_datetime(dv.index)).tz_localize(None)
        dv = dv.reindex(index=frame.index, columns=frame.columns).astype("float64")
        impact = Impact(dv, impact.coeff, impact.nav, impact.days)
    first = int(frame.index.searchsorted(pd.Timestamp(start))) if start is not None else min(lookback, len(frame))
    if first >= len(frame):
        raise DataError(f"returns: no dates on or after start {start} (last date {frame.index[-1].date()})")
    if first < 2:
        raise DataError(f"returns: need at least 2 days of history before {frame.index[first].date()}, got {first}")
    starts = rebalance_positions(frame.index, first, rebalance)
    dates = pl.Series("date", list(frame.index[first:].date), dtype=pl.Date)
    rb_dates = pl.Series("date", list(frame.index[starts].date), dtype=pl.Date)
    runs = {name: _run(name, fn, frame, starts, lookback, cost_bps, impact) for name, fn in strategies.items()}
    years = len(dates) / TRADING_DAYS
    metrics = {}
    for name, run in runs.items():
        metrics[name] = performance(run["net"])
        metrics[name]["turnover"] = float(run["turnover"].sum() / years)
        metrics[name]["total_cost"] = float(run["turnover"].sum() * cost_bps / 1e4 + run["impact"])
        metrics[name]["impact_cost"] = run["impact"]
        metrics[name]["rebalances"] = float(len(starts))
    return BacktestResult(
        returns=pl.DataFrame([dates] + [pl.Series(n, r["net"]) for n, r in runs.items()]),
        equity=pl.DataFrame([dates] + [pl.Series(n, np.cumprod(1.0 + r["net"])) for n, r in runs.items()]),
        turnover=pl.DataFrame([rb_dates] + [pl.Series(n, r["turnover"]) for n, r in runs.items()]),
        weights={
            n: pl.DataFrame([rb_dates] + [pl.Series(str(c), r["weights"][:, j]) for j, c in enumerate(frame.columns)])
            for n, r in runs.items()
        },
        metrics=metrics,
    )
