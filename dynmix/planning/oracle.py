"""The oracle planner: the portfolio MPC fed the generator's true moments instead of a forecast.

On a market whose generator is known (the synthetic market, tests) it is the limit of what planning can gain over
1/N there: any planner with estimated inputs should land between 1/N and the oracle.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch

from dynmix.config import PlanConfig
from dynmix.errors import DynMIXError
from dynmix.models.risk import Forecast
from dynmix.planning.backtest import WeightFn
from dynmix.planning.portfolio import PortfolioMPC

# truth(date, tickers) -> (mu (A,), loadings (A, k), sigma_idio (A,)): the true daily simple-return moments of the
# day after `date` for those tickers
Truth = Callable[[dt.date, list[str]], tuple[np.ndarray, np.ndarray, np.ndarray]]


def oracle_strategy(truth: Truth, cfg: PlanConfig) -> WeightFn:
    """A backtest WeightFn: PortfolioMPC on the true moments at the window's last date (held over the horizon)."""
    mpc = PortfolioMPC(cfg)
    state: dict[str, Any] = {"columns": None, "mean": None}

    def weights(window: pd.DataFrame, w_prev: np.ndarray) -> np.ndarray:
        day = pd.Timestamp(window.index[-1]).date()
        tickers = [str(c) for c in window.columns]
        mu, loadings, idio = (np.asarray(x, dtype=np.float64) for x in truth(day, tickers))
        A = len(tickers)
        if mu.shape != (A,) or loadings.ndim != 2 or loadings.shape[0] != A or idio.shape != (A,):
            raise DynMIXError(f"oracle truth on {day}: expected mu ({A},), loadings ({A}, k), sigma_idio ({A},); "
                              f"got {mu.shape}, {loadings.shape}, {idio.shape}")
        H = cfg.horizon
        t = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in (("mu", mu), ("B", loadings), ("s", idio))}
        forecast = Forecast(mu=t["mu"].expand(H, -1), loadings=t["B"].expand(H, -1, -1),
                            sigma_idio=t["s"].expand(H, -1))
        columns = tuple(tickers)
        warm = state["mean"] if cfg.warm_start and state["columns"] == columns else None
        plan = mpc.plan(forecast, torch.tensor(w_prev, dtype=torch.float32), prev_mean=warm)
        state.update(columns=columns, mean=plan.mean)
        return plan.first.double().numpy()

    return weights
