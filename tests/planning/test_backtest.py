from __future__ import annotations

import math

import numpy as np
import pandas as pd
import polars as pl
import pytest
import torch

from dynmix.config import PlanConfig
from dynmix.errors import DataError, DynMIXError
from dynmix.planning.backtest import Impact, backtest, impact_coefficients, performance, rebalance_positions
from dynmix.planning.baselines import mpc_strategy, skfolio_baselines


def panel(n_days: int = 200, n_assets: int = 4, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2021-01-04", periods=n_days)
    vols = np.linspace(0.005, 0.03, n_assets)
    data = rng.normal(3e-4, 1.0, (n_days, n_assets)) * vols
    return pd.DataFrame(data, index=index, columns=[f"A{i}" for i in range(n_assets)])


def equal(window: pd.DataFrame) -> np.ndarray:
    return np.full(window.shape[1], 1.0 / window.shape[1])


def inverse_vol(window: pd.DataFrame) -> np.ndarray:
    w = 1.0 / window.std().to_numpy()
    return w / w.sum()


def test_equal_weight_on_constant_returns_matches_the_closed_form():
    r = 0.001
    frame = pd.DataFrame(r, index=pd.bdate_range("2021-01-04", periods=120), columns=["A", "B", "C"])
    res = backtest(frame, {"ew": equal}, start="2021-03-01", cost_bps=10.0, lookback=20)
    net = res.returns["ew"].to_numpy()
    assert net[0] == pytest.approx(r - 10.0 / 1e4)  # the first trade buys from cash: turnover 1
    assert np.allclose(net[1:], r)  # nothing drifts apart, so later rebalances trade nothing
    assert res.turnover["ew"].to_numpy()[1:] == pytest.approx(0.0, abs=1e-12)
    assert res.metrics["ew"]["ann_return"] == pytest.approx(252 * net.mean())
    assert res.equity["ew"][-1] == pytest.approx((1 + r - 1e-3) * (1 + r) ** (len(net) - 1))


def test_equal_weight_drifts_between_rebalances_as_in_the_closed_form():
    rates = np.array([0.002, 0.0, -0.001])
    index = pd.bdate_range("2021-01-04", periods=80)
    frame = pd.DataFrame(np.tile(rates, (80, 1)), index=index, columns=["A", "B", "C"])
    res = backtest(frame, {"ew": equal}, start="2021-02-01", rebalance="W", cost_bps=0.0, lookback=10)
    starts = rebalance_positions(index, int(index.searchsorted(pd.Timestamp("2021-02-01"))), "W")
    lengths = np.diff(np.r_[starts, len(index)])
    expected = np.prod([np.mean((1 + rates) ** n) for n in lengths])  # each week: grow 1/N of each, rebalance
    assert res.equity["ew"][-1] == pytest.approx(expected, rel=1e-12)
    n = lengths[0]  # turnover at the 2nd rebalance: from the drifted weights back to 1/N
    drifted = (1 + rates) ** n / np.sum((1 + rates) ** n)
    assert res.turnover["ew"][1] == pytest.approx(np.abs(drifted - 1 / 3).sum())


def test_costs_reduce_returns_by_exactly_turnover_times_bps():
    frame = panel()
    free = backtest(frame, {"iv": inverse_vol}, start="2021-06-01", cost_bps=0.0, lookback=60)
    paid = backtest(frame, {"iv": inverse_vol}, start="2021-06-01", cost_bps=25.0, lookback=60)
    diff = free.returns["iv"].to_numpy() - paid.returns["iv"].to_numpy()
    on_rebalance = free.returns["date"].is_in(free.turnover["date"].implode()).to_numpy()
    assert np.allclose(diff[on_rebalance], free.turnover["iv"].to_numpy() * 25e-4, atol=1e-15)
    assert np.all(diff[~on_rebalance] == 0.0)
    assert paid.metrics["iv"]["total_cost"] == pytest.approx(free.turnover["iv"].sum() * 25e-4)
    years = len(diff) / 252
    assert paid.metrics["iv"]["turnover"] == pytest.approx(free.turnover["iv"].sum() / years)
    assert paid.metrics["iv"]["sharpe"] < free.metrics["iv"]["sharpe"]


def test_no_look_ahead_perturbing_the_future_leaves_the_weights_of_that_date():
    frame = panel(seed=1)
    seen: list[pd.DataFrame] = []

    def spy(window: pd.DataFrame) -> np.ndarray:
        seen.append(window)
        return inverse_vol(window)

    base = backtest(frame, {"iv": spy}, start="2021-06-01", lookback=40)
    dates = base.turnover["date"].to_list()
    for window, date in zip(seen, dates, strict=True):
        assert window.index[-1] < pd.Timestamp(date) and len(window) == 40
    cut = dates[5]
    shocked = frame.copy()
    shocked.loc[pd.Timestamp(cut) :] *= -3.0  # rewrite the rebalance day and everything after it
    other = backtest(shocked, {"iv": inverse_vol}, start="2021-06-01", lookback=40)
    a, b = base.weights["iv"], other.weights["iv"]
    assert a.filter(pl.col("date") <= cut).equals(b.filter(pl.col("date") <= cut))
    assert not a.filter(pl.col("date") > cut).equals(b.filter(pl.col("date") > cut))


def test_performance_on_a_hand_example():
    m = performance(np.array([0.1, -0.5, 0.2, 0.1]))  # equity 1.1, 0.55, 0.66, 0.726
    assert m["max_drawdown"] == pytest.approx(0.5)  # 0.55 / 1.1 - 1
    mean, std = -0.025, math.sqrt((0.125**2 + 0.475**2 + 0.225**2 + 0.125**2) / 3)
    assert m["ann_return"] == pytest.approx(252 * mean)
    assert m["ann_vol"] == pytest.approx(std * math.sqrt(252))
    assert m["sharpe"] == pytest.approx(mean / std * math.sqrt(252))
    assert m["cagr"] == pytest.approx(0.726 ** (252 / 4) - 1)
    assert performance(np.array([-0.1, 0.05]))["max_drawdown"] == pytest.approx(0.1)  # the start is a peak
    assert performance(np.array([0.01, 0.02]))["max_drawdown"] == 0.0


def test_rebalance_calendars():
    index = pd.bdate_range("2021-01-04", periods=70)  # Monday 4 January
    weekly = rebalance_positions(index, 3, "W")
    assert index[weekly[0]] == pd.Timestamp("2021-01-07")  # the start always trades
    assert all(index[p].day_of_week == 0 for p in weekly[1:]) and np.all(np.diff(weekly[1:]) == 5)
    monthly = index[rebalance_positions(index, 0, "M")]
    assert list(monthly.strftime("%m-%d")) == ["01-04", "02-01", "03-01", "04-01"]
    assert list(rebalance_positions(index, 10, 7)[:3]) == [10, 17, 24]
    with pytest.raises(DynMIXError, match="rebalance"):
        rebalance_positions(index, 0, "fortnight")


def test_strategies_that_ask_get_the_drifted_weights():
    got = []

    def hold(window: pd.DataFrame, w_prev: np.ndarray) -> np.ndarray:
        got.append(w_prev.copy())
        return equal(window) if w_prev.sum() == 0 else w_prev  # buy 1/N once, then never trade

    res = backtest(panel(), {"hold": hold}, start="2021-06-01", lookback=20)
    assert got[0].sum() == 0.0 and all(g.sum() == pytest.approx(1.0) for g in got[1:])
    assert not np.allclose(got[1], 0.25)  # drifted
    assert res.turnover["hold"].to_numpy()[1:] == pytest.approx(0.0, abs=1e-12)


def test_polars_input_missing_returns_and_bad_values():
    frame = panel(n_days=120)
    wide = pl.from_pandas(frame.reset_index(names="date")).with_columns(pl.col("date").cast(pl.Date))
    a = backtest(frame, {"ew": equal}, start="2021-04-01", lookback=30)
    b = backtest(wide, {"ew": equal}, start="2021-04-01", lookback=30)
    assert a.returns.equals(b.returns)
    gappy = frame.copy()
    gappy.iloc[:70, 0] = np.nan  # A0 starts trading late: out until its window is complete
    res = backtest(gappy, {"ew": equal}, start="2021-04-01", lookback=30)
    w = res.weights["ew"]
    early = w.filter(pl.col("date") < pd.Timestamp(gappy.index[100]).date())
    assert early["A0"].to_list()[0] == 0.0 and w["A0"][-1] == pytest.approx(0.25)
    bad = frame.copy()
    bad.iloc[50, 2] = -1.5
    with pytest.raises(DataError, match="A2 on 2021-03-15"):
        backtest(bad, {"ew": equal}, start="2021-04-01")
    with pytest.raises(DynMIXError, match="'short'"):
        backtest(frame, {"short": lambda x: np.ones(2)}, start="2021-04-01")
    with pytest.raises(DataError, match="start"):
        backtest(frame, {"ew": equal}, start="2030-01-01")


def test_skfolio_baselines_give_weights_on_the_simplex():
    frame = panel(n_days=160, n_assets=6, seed=2)
    res = backtest(frame, skfolio_baselines(), start="2021-05-03", rebalance="M", lookback=80)
    assert set(res.metrics) == {"equal_weight", "inverse_vol", "min_variance", "hrp"}
    for name, w in res.weights.items():
        x = w.drop("date").to_numpy()
        assert np.all(x >= 0) and np.allclose(x.sum(1), 1.0), name
    first = int(frame.index.searchsorted(pd.Timestamp("2021-05-03")))
    iv = res.weights["inverse_vol"].drop("date").to_numpy()
    assert np.allclose(iv[0], inverse_vol(frame.iloc[first - 80 : first]))
    mv = res.weights["min_variance"].drop("date").to_numpy()
    assert np.all(mv[:, 0] > mv[:, -1])
    assert res.metrics["min_variance"]["ann_vol"] < res.metrics["equal_weight"]["ann_vol"]


def test_mpc_strategy_runs_with_costs_in_view():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny plans: one thread avoids OpenMP stalls on a busy shared CPU
    try:
        _check_mpc_strategy()
    finally:
        torch.set_num_threads(threads)


def _check_mpc_strategy() -> None:
    frame = panel(n_days=120, n_assets=5, seed=3)
    cheap = mpc_strategy(PlanConfig(iterations=3, samples=128, elites=16, cost=0.0))
    dear = mpc_strategy(PlanConfig(iterations=3, samples=128, elites=16, cost=0.05))
    res = backtest(frame, {"cheap": cheap, "dear": dear}, start="2021-04-01", lookback=60)
    for name in ("cheap", "dear"):
        x = res.weights[name].drop("date").to_numpy()
        assert np.all(x >= 0) and np.allclose(x.sum(1), 1.0, atol=1e-5)
    assert res.turnover["dear"][1:].sum() < res.turnover["cheap"][1:].sum()


def test_square_root_impact_on_a_hand_example():
    """Asset A alternates ±1 %, B ±2 % (so σ is known); traded value 4e6 and 1e6 a day, NAV 1e6, c = 0.5: buying
    1/2 of each from cash costs Σ c·σ·sqrt(NAV/ADV)·(1/2)^1.5 on top of the 10 bps; without volume, exactly
    the proportional costs."""
    index = pd.bdate_range("2021-01-04", periods=60)
    sign = np.where(np.arange(60) % 2 == 0, 1.0, -1.0)
    frame = pd.DataFrame({"A": 0.01 * sign, "B": 0.02 * sign}, index=index)
    dv = pd.DataFrame({"A": 4e6, "B": 1e6}, index=index)
    sd = np.std(np.r_[[0.01, -0.01] * 10], ddof=1)  # 20 days of ±1 %: 0.01·sqrt(20/19)
    assert impact_coefficients(frame.to_numpy()[:20], dv.to_numpy()[:20], 0.5, 1e6) == pytest.approx(
        [0.5 * sd * 0.5, 0.5 * 2 * sd * 1.0])
    got: list[np.ndarray | None] = []

    def half(window: pd.DataFrame, impact: np.ndarray | None) -> np.ndarray:
        got.append(impact)
        return np.full(2, 0.5)

    start = str(index[40].date())
    plain = backtest(frame, {"h": half}, start=start, rebalance="M", cost_bps=10.0, lookback=20)
    paid = backtest(frame, {"h": half}, start=start, rebalance="M", cost_bps=10.0, lookback=20,
                    impact=Impact(dv, coeff=0.5, nav=1e6))
    impact = 0.5 * sd * (0.5 + 2.0) * 0.5**1.5
    assert paid.returns["h"][0] == pytest.approx(plain.returns["h"][0] - impact, abs=1e-12)
    assert paid.metrics["h"]["impact_cost"] >= impact > 0.0 and plain.metrics["h"]["impact_cost"] == 0.0
    assert paid.metrics["h"]["total_cost"] == pytest.approx(plain.metrics["h"]["total_cost"]
                                                            + paid.metrics["h"]["impact_cost"])
    assert got[0] is None and got[-1] is not None and got[-1] == pytest.approx([0.5 * sd * 0.5, 0.5 * 2 * sd])
    unknown = Impact(dv * np.nan, coeff=0.5, nav=1e6)  # no volume known: exactly the proportional costs
    none = backtest(frame, {"h": half}, start=start, rebalance="M", cost_bps=10.0, lookback=20, impact=unknown)
    assert none.returns["h"].to_list() == plain.returns["h"].to_list()
