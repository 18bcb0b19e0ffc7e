"""The oracle volatility forecast on a synthetic market: the generator's true variance, the limit of forecasting.

`data synth` stores, per company and day, E[r²] of the day's log return given the day before and the day's
regime (`true_variance` in the store). The oracle's h-day forecast at t is the mean of those over t+1 .. t+h:
it knows the regimes of the forecast days, so no forecast that sees data up to t only can match it on average;
how far a forecast lands from it is the room left.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from dynmix.data.sources.synthetic import SOURCE
from dynmix.data.store import Store
from dynmix.forecast.baselines import forward_mean
from dynmix.workspace import Workspace


def true_variance_panel(ws: Workspace, tickers: list[str], dates: list[dt.date]) -> np.ndarray | None:
    """(N, T) the store's true daily E[r²] on the views' companies and dates (NaN where unknown); None when the
    store has no truth (not a synthetic market, or one too large to keep it) or holds data of another source too
    (the truth would describe a market no longer there).
    """
    store = Store(ws.store)
    table = store.read_extra("true_variance")
    if table is None or set(store.read_manifest()["source"].unique().to_list()) != {SOURCE}:
        return None
    index = pl.DataFrame({"ticker": tickers, "i": np.arange(len(tickers))}, schema_overrides={"ticker": pl.String})
    days = pl.DataFrame({"date": dates, "t": np.arange(len(dates))}, schema_overrides={"date": pl.Date})
    hit = table.join(index, on="ticker").join(days, on="date")
    out = np.full((len(tickers), len(dates)), np.nan)
    out[hit["i"].to_numpy(), hit["t"].to_numpy()] = hit["variance"].cast(pl.Float64).to_numpy()
    return out


def oracle_variance(true_var: np.ndarray, horizon: int) -> np.ndarray:
    """(N, T) the oracle's forecast at t of the mean squared return of t+1 .. t+H."""
    return forward_mean(true_var, horizon)


__all__ = ["oracle_variance", "true_variance_panel"]
