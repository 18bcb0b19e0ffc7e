"""The oracle planner knows the generator's moments: on a market built to reward planning it beats 1/N, and the
judgement says the gap is significant; on a market with nothing to know it does not. On a synthetic store,
`dynmix plan` (and so `dynmix demo --synthetic`) reads the truth the generator wrote and adds the oracle."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
import torch

from dynmix.config import PlanConfig
from dynmix.data.sources.synthetic import generate_market, write_market
from dynmix.data.store import Store
from dynmix.errors import DynMIXError
from dynmix.io import write_parquet
from dynmix.planning.backtest import backtest
from dynmix.planning.baselines import skfolio_strategy
from dynmix.planning.oracle import oracle_strategy, synthetic_truth
from dynmix.planning.service import run_plan
from dynmix.planning.stats import judge
from dynmix.train.job import train
from dynmix.train.world import fit_world
from dynmix.views.build import build_views
from dynmix.workspace import Workspace

A, T = 6, 900


def market(mu: np.ndarray, sigma: np.ndarray, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    r = mu + sigma * rng.standard_normal((T, A))
    return pd.DataFrame(r, index=pd.bdate_range("2010-01-04", periods=T), columns=[f"S{i}" for i in range(A)])


def run(mu: np.ndarray, sigma: np.ndarray) -> dict[str, dict[str, float]]:
    from skfolio.optimization import EqualWeighted

    def truth(day: dt.date, tickers: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return mu, np.zeros((A, 1)), sigma

    cfg = PlanConfig(risk_aversion=5.0, cost=1e-3, samples=128, iterations=4, elites=16)
    res = backtest(market(mu, sigma), {"oracle": oracle_strategy(truth, cfg),
                                       "equal_weight": skfolio_strategy(EqualWeighted)},
                   rebalance="W", cost_bps=10.0, lookback=20)
    return judge({k: res.returns[k].to_numpy() for k in ("oracle", "equal_weight")}, reps=300)


def test_oracle_beats_equal_weight_where_the_truth_rewards_planning() -> None:
    mu = np.array([0.0015, 0.001, 0.0, 0.0, -0.0005, -0.001])  # persistent differences in mean
    sigma = np.array([0.01, 0.01, 0.01, 0.03, 0.03, 0.03])  # and in risk
    out = run(mu, sigma)
    assert out["oracle"]["sharpe"] > out["equal_weight"]["sharpe"] + 1.0
    assert out["oracle"]["p"] < 0.05


def test_oracle_gains_nothing_significant_where_all_assets_are_alike() -> None:
    out = run(np.full(A, 0.0004), np.full(A, 0.01))
    assert out["oracle"]["p"] > 0.05


def test_a_synthetic_store_adds_the_oracle_to_the_plan_report(tmp_path: Path, tiny_run_config) -> None:  # type: ignore[no-untyped-def]
    torch.set_num_threads(1)
    ws = Workspace(tmp_path / "ws")
    store = Store(ws.store)
    write_market(store, generate_market(8, 2, 1.6, seed=0))
    truth = synthetic_truth(store)
    assert truth is not None
    day = store.read_extra("true_factors")["date"].unique().sort()[100]  # type: ignore[index]
    mu, loadings, idio = truth(day, ["S0001", "S0002"])
    assert mu.shape == (2,) and loadings.shape == (2, 3) and idio.shape == (2,)  # market + 2 sector factors
    assert np.all(idio > 0) and np.all(np.abs(mu) < 0.05)  # daily simple returns
    cfg = tiny_run_config()
    build_views(store, ws.views, cfg.views, progress=False)
    run_dir = train(ws, cfg, progress=False)
    fit_world(ws, run_dir, progress=False)
    out = run_plan(ws, run_dir, progress=False, reps=100, costs_bps=(10.0,))
    planning = out["planning"]
    assert {"ann_return", "sharpe", "sharpe_lo", "sharpe_hi", "turnover"} <= set(planning["oracle"])
    assert 0 < planning["vs_equal_weight"]["oracle"]["p"] <= 1
    assert "oracle" in planning["by_cost"]["10"] and any(n.startswith("oracle:") for n in out["notes"])
    # another source's data in the store: the truth no longer describes the market, so no oracle
    manifest = store.read_manifest()
    write_parquet(manifest.with_columns(pl.when(pl.col("ticker") == "S0001").then(pl.lit("csv"))
                                        .otherwise(pl.col("source")).alias("source")), store.manifest_path)
    assert synthetic_truth(store) is None
    with pytest.raises(DynMIXError, match="not companies"):
        truth(day, ["NOPE"])
