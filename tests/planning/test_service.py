"""The world model behind planning: WorldRiskModel, plan_at, and forecast -> plan end to end on a tiny trained run."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import torch

from dynmix.data.store import MANIFEST_SCHEMA, Store
from dynmix.errors import DynMIXError
from dynmix.forecast.service import BASELINES, METHODS, forecast_table, run_forecast
from dynmix.io import write_parquet
from dynmix.planning.service import METRICS, plan_at, planning_table, run_plan
from dynmix.planning.world_risk import WorldRiskModel
from dynmix.runs.models import load_world_run
from dynmix.runs.rundir import RunDir
from dynmix.train.job import train
from dynmix.train.world import fit_world
from dynmix.views.build import build_views
from dynmix.workspace import Workspace

STRATEGIES = {"world_mpc", "world_hierarchical", "sample_mpc", "equal_weight", "inverse_vol", "min_variance", "hrp"}


def tiny_market(n: int = 6, days: int = 420, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(close (T, N), sector (N,)): two sectors, a market factor with GARCH-like volatility, idiosyncratic noise."""
    rng = np.random.default_rng(seed)
    mkt, var = np.empty(days), 1e-4
    for k in range(days):
        mkt[k] = np.sqrt(var) * rng.standard_normal()
        var = 1e-5 + 0.1 * mkt[k] ** 2 + 0.85 * var
    sector = np.arange(n) % 2
    r = mkt[:, None] + rng.normal(0, 0.008, (days, 2))[:, sector] + rng.normal(0, 0.01, (days, n))
    return 50 * np.exp(np.cumsum(r, 0)), sector


def tiny_true_variance(days: int = 420, seed: int = 0) -> np.ndarray:
    """(T,) E[r²] of every company of `tiny_market` on each day: the market's GARCH variance plus the sector's
    and the company's noise (the same draws as tiny_market, which takes the market's first)."""
    rng = np.random.default_rng(seed)
    out, var = np.empty(days), 1e-4
    for k in range(days):
        out[k] = var
        var = 1e-5 + 0.1 * (np.sqrt(var) * rng.standard_normal()) ** 2 + 0.85 * var
    return out + 0.008**2 + 0.01**2


@dataclass
class TinyRun:
    ws: Workspace
    run_dir: Path
    forecast: dict[str, Any]
    plan: dict[str, Any]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, write_panel, tiny_run_config) -> TinyRun:  # type: ignore[no-untyped-def]
    ws = Workspace(tmp_path_factory.mktemp("world") / "ws")
    write_panel(ws.store, dt.date(2012, 1, 2), *tiny_market())
    cfg = tiny_run_config()
    build_views(Store(ws.store), ws.views, cfg.views, progress=False)
    run_dir = train(ws, cfg, progress=False)
    (run_dir / "report.json").write_text(json.dumps({"sector": {"pca": {"knn_accuracy": 0.5}}, "notes": ["kept"]}))
    for step in (run_forecast, run_plan):  # neither trains a model: they name the step that does
        with pytest.raises(DynMIXError, match=f"dynmix train --stage world --run {run_dir.name}"):
            step(ws, run_dir, progress=False)
    fit_world(ws, run_dir, progress=False)
    forecast = run_forecast(ws, run_dir, progress=False)
    return TinyRun(ws, run_dir, forecast, run_plan(ws, run_dir, progress=False, reps=200))


def test_report_gets_forecast_and_planning_with_the_exact_keys_and_keeps_the_rest(tiny: TinyRun) -> None:
    report = json.loads((tiny.run_dir / "report.json").read_text())
    assert report["sector"] == {"pca": {"knn_accuracy": 0.5}} and report["notes"] == ["kept"]
    fc = report["forecast"]
    vol = fc["volatility"]["h5"]
    assert set(vol) == set(METHODS) | {"dm", "dm_dynmix_har", "mcs"}
    assert all(set(vol[m]) == {"qlike", "mse"} and vol[m]["qlike"] > 0 and vol[m]["mse"] > 0 for m in METHODS)
    assert set(vol["dm"]) == set(METHODS) - {"dynmix"} and set(vol["dm_dynmix_har"]) == set(BASELINES)
    assert all(set(d) == {"stat", "p"} and 0 <= d["p"] <= 1 for d in [*vol["dm"].values(),
                                                                    *vol["dm_dynmix_har"].values()])
    assert vol["mcs"] and set(vol["mcs"]) <= set(METHODS)
    assert set(fc["volatility"]["h1"]) == set(vol)  # the other horizons: the same table, or a note why not
    assert ("h22" in fc["volatility"] and set(fc["volatility"]["h22"]) == set(vol)) or any(
        "h = 22 not scored" in n for n in fc["notes"])
    assert set(fc["gmv"]) == {"world_model", "sample", "ledoit_wolf", "pca_factor", "ewma"}
    assert all(0 < v["ann_vol_long_only"] < 2 and 0 < v["ann_vol"] < 2 for v in fc["gmv"].values())
    assert set(report["forecast"]["latent"]) == {"world_model", "persistence"}
    planning = report["planning"]
    assert set(planning) == STRATEGIES | {"vs_equal_weight", "costs_bps", "by_cost", "ms_per_plan", "skill", "impact"}
    assert planning["impact"] == {"coeff": 1.0, "nav": 1e6, "adv_days": 20}  # the tiny store has volume
    for forecast in ("world_mpc", "sample_mpc"):  # measured on training dates only
        assert planning["skill"][forecast]["origins"] > 0 and -1 <= planning["skill"][forecast]["ic"] <= 1
        assert planning["skill"][forecast]["dispersion"] > 0 and planning["skill"][forecast]["used"] is True
    assert all(set(planning[s]) == set(METRICS) for s in STRATEGIES)
    assert all(planning[s]["sharpe_lo"] < planning[s]["sharpe"] < planning[s]["sharpe_hi"] for s in STRATEGIES)
    assert all(planning[s]["cvar95"] > 0 for s in STRATEGIES)
    assert set(planning["vs_equal_weight"]) == STRATEGIES - {"equal_weight"}
    assert all(0 < v["p"] <= 1 and 0 <= v["p_memmel"] <= 1 for v in planning["vs_equal_weight"].values())
    assert planning["costs_bps"] == 10.0 and list(planning["by_cost"]) == ["0", "10", "25"]
    assert {k: v["sharpe"] for k, v in planning["by_cost"]["10"].items()} == {
        s: planning[s]["sharpe"] for s in STRATEGIES}
    for s in ("equal_weight", "inverse_vol"):  # the same weights at every level: costs only lower the return
        r = [planning["by_cost"][c][s]["ann_return"] for c in ("0", "10", "25")]
        assert r[0] > r[1] > r[2]
    assert planning["ms_per_plan"]["world_mpc"] > 0 and planning["ms_per_plan"]["world_hierarchical"] > 0
    md = (tiny.run_dir / "report.md").read_text()
    assert "## Forecasts" in md and "### Volatility, 5-day realised" in md and "### Global minimum variance" in md
    assert "## Planning" in md and "### Planning at 25 bps" in md
    assert "| world_mpc |" in md and "p_vs_1N" in md
    assert "| garch |" in forecast_table(tiny.forecast) and "| world_mpc |" in planning_table(tiny.plan)


def test_forecast_files_follow_the_dashboard_contract(tiny: TinyRun) -> None:
    vol = pl.read_parquet(tiny.run_dir / "forecast" / "vol_forecast.parquet")
    assert vol.columns == ["date", "ticker", "realised", *METHODS]
    split = json.loads((tiny.run_dir / "split.json").read_text())
    assert vol["date"].min() > dt.date.fromisoformat(split["train_end"])  # scored on test dates only
    assert vol.select(pl.all().exclude("date", "ticker") > 0).to_numpy().all()
    torch.load(RunDir(tiny.run_dir).world_path, weights_only=True)  # weights-only loadable


def test_forecast_again_reuses_the_world_model_and_gives_the_same_files(tiny: TinyRun) -> None:
    path = tiny.run_dir / "forecast" / "vol_forecast.parquet"
    world = RunDir(tiny.run_dir).world_path
    before, mtime = pl.read_parquet(path), world.stat().st_mtime_ns
    again = run_forecast(tiny.ws, tiny.run_dir, progress=False)
    assert world.stat().st_mtime_ns == mtime
    assert any("--stage jepa" in n for n in again["notes"])  # no JEPA trained for this run: said, not trained
    assert pl.read_parquet(path).equals(before)


def test_backtest_files(tiny: TinyRun) -> None:
    equity = pl.read_parquet(tiny.run_dir / "planning" / "equity.parquet")
    weights = pl.read_parquet(tiny.run_dir / "planning" / "weights.parquet")
    assert equity.columns == ["date", "strategy", "equity", "net_return"]
    assert weights.columns == ["date", "strategy", "ticker", "weight"]
    assert set(equity["strategy"].unique()) == STRATEGIES
    sums = weights.filter(pl.col("strategy") == "world_mpc").group_by("date").agg(pl.col("weight").sum())
    assert np.allclose(sums["weight"].to_numpy(), 1.0, atol=1e-5)
    assert weights["weight"].min() >= -1e-9  # type: ignore[operator]
    assert tiny.plan["setup"]["test_start"] > json.loads((tiny.run_dir / "split.json").read_text())["train_end"]


def test_world_risk_model_speaks_the_planning_protocol(tiny: TinyRun) -> None:
    wr = load_world_run(tiny.ws, RunDir(tiny.run_dir))
    t = wr.train_last + 5
    risk = WorldRiskModel(wr.world, wr.panel, t)
    fc = risk.forecast(4)
    a = int(wr.panel.valid[t].sum())
    assert fc.mu.shape == (4, a) and fc.loadings.shape == (4, a, wr.cfg.world.loadings)
    assert bool((fc.sigma_idio > 0).all())
    steps = wr.world.rollout(wr.world.encode(*wr.panel.inputs(torch.tensor([t]))), 4)
    s = wr.cfg.world.return_scale  # the model's scaled daily log returns -> daily simple returns
    assert torch.allclose(fc.mu[1], torch.expm1(steps[1].mu[0] / s + 0.5 * steps[1].variance()[0] / s**2), atol=1e-7)
    assert torch.allclose(fc.sigma_idio[1], steps[1].sigma_idio[0] / s * (1 + fc.mu[1]), atol=1e-7)
    daily_vol = fc.variance(torch.full((4, 1, a), 1.0 / a)).sqrt()  # equal weights, (H, 1)
    assert bool(((daily_vol > 1e-4) & (daily_vol < 0.2)).all())  # a daily volatility, not percent
    sub = WorldRiskModel(wr.world, wr.panel, t, torch.tensor([0, 2])).forecast(2)
    assert torch.allclose(sub.mu, fc.mu[:2, [0, 2]])


def test_plan_at_gives_simplex_weights_and_trajectories(tiny: TinyRun) -> None:
    date = json.loads((tiny.run_dir / "split.json").read_text())["test_start"]
    weights, traj = plan_at(tiny.ws, tiny.run_dir, date, risk_aversion=10.0, cost=0.002, horizon=3)
    assert weights.columns == ["ticker", "step", "weight"]
    assert traj.columns == ["sample", "step", "ret", "vol", "realised"]
    realised = traj.group_by("step").agg(pl.col("realised").n_unique().alias("n"), pl.col("realised").first())
    assert (realised["n"] == 1).all() and realised["realised"].is_finite().all()  # test dates: it happened
    assert realised["realised"].abs().max() < 0.2  # type: ignore[operator]
    assert sorted(weights["step"].unique().to_list()) == [1, 2, 3]
    per_step = weights.group_by("step").agg(pl.col("weight").sum(), pl.len())
    assert np.allclose(per_step["weight"].to_numpy(), 1.0, atol=1e-5) and (per_step["len"] == 6).all()
    assert weights["weight"].min() >= 0  # type: ignore[operator]
    assert traj["sample"].n_unique() == 8 and (traj["vol"] > 0).all()
    hier, _ = plan_at(tiny.ws, tiny.run_dir, date, horizon=3, hierarchical=True)
    assert hier.columns == ["ticker", "step", "weight", "target"]
    target = hier.filter(pl.col("step") == 1)["target"].to_numpy()
    assert np.isclose(target.sum(), 1.0, atol=1e-5) and (target >= -1e-9).all()


def test_plan_at_without_a_world_model_says_what_to_run(tiny: TinyRun, tmp_path: Path) -> None:
    other = tiny.ws.run("20200101-000000-copy")
    shutil.copytree(tiny.run_dir, other, ignore=shutil.ignore_patterns("forecast"))
    try:
        with pytest.raises(DynMIXError, match="dynmix train --stage world"):
            plan_at(tiny.ws, other, "2013-06-03")
    finally:
        shutil.rmtree(other)


def test_a_failing_surprise_step_keeps_the_volatility_results(tiny: TinyRun) -> None:
    rd = RunDir(tiny.run_dir)
    old = rd.read_report()
    old["forecast"].pop("volatility")
    rd.report_path.write_text(json.dumps(old))
    rd.jepa_path.write_bytes(b"not a checkpoint")
    try:
        with pytest.raises(DynMIXError, match="could not be read"):
            run_forecast(tiny.ws, tiny.run_dir, progress=False)
    finally:
        rd.jepa_path.unlink()
    assert set(METHODS) <= set(rd.read_report()["forecast"]["volatility"]["h5"])


def test_skill_is_measured_on_the_training_period_only(tiny: TinyRun) -> None:
    from dataclasses import replace

    from dynmix.planning.skill import trailing_mean_skill
    from dynmix.planning.world_risk import world_skill

    wr = load_world_run(tiny.ws, RunDir(tiny.run_dir))
    last = wr.train_last
    before = world_skill(wr.world, wr.panel, last, 5)
    scrambled = wr.panel.returns.clone()
    scrambled[last + 1 :] = torch.randn_like(scrambled[last + 1 :]) * 5  # another test period
    assert world_skill(wr.world, replace(wr.panel, returns=scrambled), last, 5) == before
    assert before.origins > 0 and before.horizon == 5
    # the planner's skill: the stacking model's, on origins after its cut only (out of sample for it)
    assert wr.stack is not None and 0 < wr.stack_last < last
    stacked = world_skill(wr.stack, wr.panel, last, 5, first=wr.stack_last)
    early = wr.panel.returns.clone()
    early[: wr.stack_last + 1] = torch.randn_like(early[: wr.stack_last + 1]) * 5
    assert world_skill(wr.stack, replace(wr.panel, returns=early), last, 5, first=wr.stack_last).ic == stacked.ic
    assert 0 < stacked.origins < before.origins
    assert tiny.plan["planning"]["skill"]["world_mpc"]["origins"] == stacked.origins
    simple = np.expm1(wr.panel.returns.double().cpu().numpy() / wr.cfg.world.return_scale)
    other = simple.copy()
    other[last + 1 :] = 0.01
    assert trailing_mean_skill(simple, 60, 5, last) == trailing_mean_skill(other, 60, 5, last)


def test_the_oracle_joins_the_table_where_the_store_knows_the_true_variance(tiny: TinyRun, tmp_path: Path) -> None:
    home = tmp_path / "ws"
    shutil.copytree(tiny.ws.home, home)
    ws, run_dir = Workspace(home), home / "runs" / tiny.run_dir.name
    prices = Store(ws.store).read_prices().select("date", "ticker").sort("ticker", "date")
    true_var = tiny_true_variance()
    store = Store(ws.store)
    store.write_extra("true_variance", prices.with_columns(
        pl.Series("variance", np.tile(true_var, prices["ticker"].n_unique()))))
    assert "oracle" not in run_forecast(ws, run_dir, progress=False)["volatility"]["h5"]  # not a synthetic store
    tickers = prices["ticker"].unique().to_list()
    write_parquet(store.manifest_from_prices("synthetic", tickers).select(list(MANIFEST_SCHEMA)), store.manifest_path)
    fc = run_forecast(ws, run_dir, progress=False)
    for h in ("h1", "h5"):
        vol = fc["volatility"][h]
        assert "oracle" in vol and "oracle" in vol["dm"] and "oracle" not in vol["mcs"]  # a reference only
    vol = fc["volatility"]["h5"]  # (one day's squared return is too noisy a target on 6 companies to rank them)
    assert vol["oracle"]["qlike"] < min(vol[m]["qlike"] for m in METHODS)  # the truth beats every forecast
    assert any(n.startswith("oracle:") for n in fc["notes"])
    assert "oracle" in pl.read_parquet(RunDir(run_dir).vol_forecast_path).columns
    before = tiny.forecast["volatility"]["h5"]  # the other methods score the same pairs as without the truth
    assert all(fc["volatility"]["h5"][m] == pytest.approx(before[m]) for m in METHODS)
