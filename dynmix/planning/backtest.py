"""Walk-forward backtest of allocation strategies, net of costs.

Letters: T dates, A assets, L trailing window (lookback).

Timing: at each rebalance date d a strategy sees only the `lookback` daily returns strictly before d
(decide at the close of d−1), and its target weights earn d's return onwards. Between rebalances weights
drift with returns; turnover = Σ|w_target − w_drifted| (the first trade starts from cash) and its cost,
turnover · cost_bps / 1e4, is subtracted from the return of the rebalance day. A missing return (asset not
trading) counts as 0; an asset is eligible at a rebalance only when its whole trailing window is observed.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from dynmix.errors import DataError, DynMIXError

TRADING_DAYS = 252
WeightFn = Callable[..., Any]  # fn(window: pd.DataFrame (L, A'), [w_prev: np.ndarray (A',)]) -> weights (A',)


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


def _wants_w_prev(fn: WeightFn) -> bool:
    try:
        return "w_prev" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _target(name: str, fn: WeightFn, window: pd.DataFrame, w_prev: np.ndarray, date: Any) -> np.ndarray:
    out = fn(window, w_prev=w_prev) if _wants_w_prev(fn) else fn(window)
    w = np.asarray(out, dtype=np.float64).reshape(-1)
    if w.shape != (window.shape[1],) or not np.all(np.isfinite(w)):
        raise DynMIXError(
            f"strategy {name!r} on {date}: expected {window.shape[1]} finite weights (one per asset), got {w.shape}"
        )
    return w


def _run(name: str, fn: WeightFn, frame: pd.DataFrame, starts: np.ndarray, lookback: int, bps: float) -> dict:
    R = frame.to_numpy()  # (T, A), NaN where not trading
    T, A = R.shape
    R0 = np.nan_to_num(R, nan=0.0)
    net = np.zeros(T - starts[0])
    w_drift = np.zeros(A)  # start in cash
    turnovers, targets = [], []
    for i, p in enumerate(starts):
        q = starts[i + 1] if i + 1 < len(starts) else T
        window = R[max(0, p - lookback) : p]  # (L, A): strictly before p
        eligible = np.flatnonzero(~np.isnan(window).any(0))
        if len(eligible) == 0:
            raise DataError(f"returns: no asset has a complete {lookback}-day window before {frame.index[p].date()}")
        w = np.zeros(A)
        sub = frame.iloc[max(0, p - lookback) : p, eligible]
        w[eligible] = _target(name, fn, sub, w_drift[eligible], frame.index[p].date())
        turnover = float(np.abs(w - w_drift).sum())
        growth = np.cumprod(1.0 + R0[p:q], axis=0)  # (q - p, A)
        value = (1.0 - w.sum()) + growth @ w  # (q - p,): the rest of the capital is cash
        seg = np.diff(np.r_[1.0, value]) / np.r_[1.0, value[:-1]]
        seg[0] -= turnover * bps / 1e4
        net[p - starts[0] : q - starts[0]] = seg
        w_drift = w * growth[-1] / value[-1]
        turnovers.append(turnover)
        targets.append(w)
    return {"net": net, "turnover": np.array(turnovers), "weights": np.array(targets)}


def backtest(
    returns: pl.DataFrame | pd.DataFrame,
    strategies: dict[str, WeightFn],
    *,
    start: str | dt.date | None = None,
    end: str | dt.date | None = None,
    rebalance: str | int = "W",
    cost_bps: float = 10.0,
    lookback: int = 252,
) -> BacktestResult:
    """Walk-forward backtest of `strategies` on daily simple `returns` (dates x assets) from `start` to `end`."""
    frame = as_wide_returns(returns)
    if end is not None:
        frame = frame.loc[: pd.Timestamp(end)]
    first = int(frame.index.searchsorted(pd.Timestamp(start))) if start is not None else min(lookback, len(frame))
    if first >= len(frame):
        raise DataError(f"returns: no dates on or after start {start} (last date {frame.index[-1].date()})")
    if first < 2:
        raise DataError(f"returns: need at least 2 days of history before {frame.index[first].date()}, got {first}")
    starts = rebalance_positions(frame.index, first, rebalance)
    dates = pl.Series("date", list(frame.index[first:].date), dtype=pl.Date)
    rb_dates = pl.Series("date", list(frame.index[starts].date), dtype=pl.Date)
    runs = {name: _run(name, fn, frame, starts, lookback, cost_bps) for name, fn in strategies.items()}
    years = len(dates) / TRADING_DAYS
    metrics = {}
    for name, run in runs.items():
        metrics[name] = performance(run["net"])
        metrics[name]["turnover"] = float(run["turnover"].sum() / years)
        metrics[name]["total_cost"] = float(run["turnover"].sum() * cost_bps / 1e4)
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
