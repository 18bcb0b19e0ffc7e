"""The oracle planner: the portfolio MPC fed the generator's true moments instead of a forecast.

On a market whose generator is known (the synthetic market, tests) it is the limit of what planning can gain over
1/N there: any planner with estimated inputs should land between 1/N and the oracle.

`synthetic_truth` reads that truth from a synthetic store: the generator writes the factor model of each day's log
returns (`true_factors`: per date and sector, the mean and loading per unit of a company's planted beta, sector
loading and idiosyncratic volatility, which the metadata holds), so nothing is regenerated. The day after a
rebalance's window is converted to simple returns as the world model's forecasts are (`Forecast.simple_from_log`:
lognormal mean, first-order covariance; the idiosyncratic noise is Student-t, so the mean is exact to second order).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import torch

from dynmix.config import PlanConfig
from dynmix.data.sources.synthetic import SOURCE
from dynmix.data.store import Store
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

    def weights(window: pd.DataFrame, w_prev: np.ndarray, impact: np.ndarray | None = None) -> np.ndarray:
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
        plan = mpc.plan(forecast, torch.tensor(w_prev, dtype=torch.float32), prev_mean=warm,
                        impact=None if impact is None else torch.as_tensor(impact, dtype=torch.float32))
        state.update(columns=columns, mean=plan.mean)
        return plan.first.double().numpy()

    return weights


EXPOSURES = ("beta", "sector_loading", "idio_vol")  # the planted profile columns of a synthetic market's metadata


def synthetic_truth(store: Store) -> Truth | None:
    """The generator's true next-day moments of a synthetic store as a `Truth`; None when the store has no
    `true_factors` table or holds data of another source too (the truth would describe a market no longer there).
    """
    table = store.read_extra("true_factors")
    if table is None or set(store.read_manifest()["source"].unique().to_list()) != {SOURCE}:
        return None
    meta = store.read_meta()
    missing = [c for c in ("ticker", "sector", *EXPOSURES) if c not in meta.columns]
    if missing:
        raise DynMIXError(f"{store.meta_path}: a synthetic market's metadata needs columns {missing} for the oracle; "
                          "regenerate it with `dynmix data synth`")
    dates = np.sort(table["date"].unique().to_numpy())  # datetime64[D]
    sectors = sorted(table["sector"].unique().to_list())
    factors = ["market", *sorted(set(table["factor"].unique().to_list()) - {"market", "idio"}), "idio"]
    codes = table.with_columns(
        pl.col("date").cast(pl.Int64).alias("t"),
        pl.col("sector").replace_strict(sectors, list(range(len(sectors))), return_dtype=pl.Int64).alias("s"),
        pl.col("factor").replace_strict(factors, list(range(len(factors))), return_dtype=pl.Int64).alias("f"))
    t = np.searchsorted(dates.astype(np.int64), codes["t"].to_numpy())
    mean = np.zeros((len(dates), len(sectors), len(factors)))  # (D, K, market + innovations + idio)
    loading = np.zeros_like(mean)
    mean[t, codes["s"].to_numpy(), codes["f"].to_numpy()] = codes["mean"].to_numpy()
    loading[t, codes["s"].to_numpy(), codes["f"].to_numpy()] = codes["loading"].to_numpy()
    companies = meta.filter(pl.col("sector").is_in(sectors))
    row = {tk: i for i, tk in enumerate(companies["ticker"].to_list())}
    sector_of = np.array([sectors.index(s) for s in companies["sector"].to_list()])
    expo = companies.select(EXPOSURES).to_numpy().astype(np.float64)  # (N, 3)

    def truth(day: dt.date, tickers: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        d = int(np.searchsorted(dates, np.datetime64(day, "D"), side="right"))  # the first date after `day`
        if d >= len(dates):
            raise DynMIXError(f"oracle: the synthetic market has no date after {day}")
        unknown = [tk for tk in tickers if tk not in row]
        if unknown:
            raise DynMIXError(f"oracle: {', '.join(unknown[:5])} are not companies of the synthetic market's metadata")
        idx = np.array([row[tk] for tk in tickers])
        beta, load, idio = expo[idx].T  # (A,) each
        m, b = mean[d, sector_of[idx]], loading[d, sector_of[idx]]  # (A, F)
        log_mu = beta * m[:, 0] + load * m[:, 1:-1].sum(1)
        log_b = np.column_stack([beta * b[:, 0], load[:, None] * b[:, 1:-1]])  # (A, 1 + K)
        log = Forecast(mu=torch.as_tensor(log_mu[None], dtype=torch.float64),
                       loadings=torch.as_tensor(log_b[None], dtype=torch.float64),
                       sigma_idio=torch.as_tensor((idio * b[:, -1])[None], dtype=torch.float64)).simple_from_log()
        return log.mu[0].numpy(), log.loadings[0].numpy(), log.sigma_idio[0].numpy()

    return truth
