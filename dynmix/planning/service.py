"""Planning with a run's world model: `plan_at` (one date, for the dashboard) and `run_plan` (`dynmix plan`: the
walk-forward backtest of the world-model MPC against the skfolio baselines on the run's test period).

Nothing is tuned on the test period: PlanConfig and BacktestConfig of the run are used as they are. Files:
RUN/planning/equity.parquet (date, strategy, equity, net_return) and RUN/planning/weights.parquet (date,
strategy, ticker, weight), both at the config's cost; report["planning"]: {strategy: METRICS} at the config's
cost, vs_equal_weight {strategy: {p, p_memmel, sharpe_diff}}, costs_bps (that cost), impact ({coeff, nav,
adv_days} of the square-root impact term every level adds where the store has volume; null without volume or with
[plan] impact = 0), by_cost {bps: {strategy:
METRICS + p}} at every level of COSTS_BPS, ms_per_plan {strategy: mean ms of one rebalance's plan (monthly
strategic plans included)}, skill {forecast: the training-period IC of μ̂ and whether it shrank μ̂}. On a
synthetic store the strategy `oracle` (the MPC on the generator's true moments, `planning/oracle.py`) joins.
"""

from __future__ import annotations

import datetime as dt
import inspect
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import torch
from rich.progress import Progress

from dynmix.config import PlanConfig
from dynmix.data.store import Store
from dynmix.errors import DynMIXError
from dynmix.planning.backtest import Impact, WeightFn, as_wide_returns, backtest, rebalance_positions
from dynmix.planning.baselines import mpc_strategy, skfolio_baselines
from dynmix.planning.hierarchy import hierarchical_strategy, strategic_config, strategic_target
from dynmix.planning.oracle import oracle_strategy, synthetic_truth
from dynmix.planning.portfolio import PortfolioMPC
from dynmix.planning.skill import Skill, shrink, trailing_mean_skill
from dynmix.planning.stats import judge
from dynmix.planning.world_risk import WorldRiskModel, world_skill, world_strategy
from dynmix.runs.models import load_run, load_world, load_world_run, run_device
from dynmix.runs.panel import build_panel
from dynmix.runs.report_md import markdown_table, planning_rows
from dynmix.runs.rundir import RunDir
from dynmix.runs.threads import single_thread
from dynmix.workspace import Workspace

METRICS = ("ann_return", "ann_vol", "sharpe", "sharpe_lo", "sharpe_hi", "max_drawdown", "cvar95", "turnover")
COSTS_BPS = (0.0, 10.0, 25.0)  # cost levels of every backtest (with the config's own)


def plan_at(ws: Workspace, run_dir: str | Path | RunDir, date: dt.date | str, *, risk_aversion: float | None = None,
            cost: float | None = None, horizon: int | None = None,
            hierarchical: bool = False) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Plan from cash at the close of `date` (the last view date <= it) over the companies alive then.

    Returns (weights: ticker, step, weight [, target]) with step 1..H the day each weight is held, and the
    planner's elite imagined trajectories (sample, step, ret, vol, realised): predicted daily portfolio return and
    volatility per step, and what the planned weights actually returned that day (NaN after the last date).
    μ̂ is shrunk by the skill `dynmix plan` measured (report["planning"]["skill"]) when there is one. With
    `hierarchical`, the strategic level sets a target first (`target`: its weight per ticker) that the plan tracks.
    """
    rd = RunDir.of(run_dir)
    device = run_device(rd)
    world, _ = load_world(rd, device)  # first: a missing world model names the command to train it
    cfg, model, vt = load_run(rd, device, views_dir=ws.views)
    t = vt.date_index(date)
    panel = build_panel(model, vt, world.cfg.return_scale, dates=torch.tensor([t]), embeddings=rd.embeddings_path)
    pc = cfg.plan
    pc = replace(pc, risk_aversion=pc.risk_aversion if risk_aversion is None else float(risk_aversion),
                 cost=pc.cost if cost is None else float(cost), horizon=pc.horizon if horizon is None else int(horizon))
    risk = WorldRiskModel(world, panel, 0)
    forecast = risk.forecast(pc.horizon)
    measured = ((rd.read_report().get("planning") or {}).get("skill") or {}).get("world_mpc")
    if pc.shrink_mu and isinstance(measured, dict):  # the skill `dynmix plan` measured on the training period
        forecast = shrink(forecast, Skill(**{k: measured[k] for k in ("ic", "ic_se", "origins", "dispersion")},
                                          horizon=int(measured.get("horizon", 1))))
    cash = torch.zeros(len(risk.tickers))
    target = None
    with single_thread():
        if hierarchical:
            long = risk.forecast(pc.strategic_days * pc.strategic_horizon)
            if pc.shrink_mu and isinstance(measured, dict):
                long = shrink(long, Skill(**{k: measured[k] for k in ("ic", "ic_se", "origins", "dispersion")},
                                          horizon=int(measured.get("horizon", 1))))
            target, _ = strategic_target(PortfolioMPC(strategic_config(pc)), long,
                                         panel.reps[0, risk.assets].float().cpu().numpy(), cash, pc)
        plan = PortfolioMPC(pc).plan(forecast, cash, target=target)
    H, A = plan.weights.shape
    weights = pl.DataFrame({
        "ticker": risk.tickers * H,
        "step": np.repeat(np.arange(1, H + 1), A),
        "weight": plan.weights.double().numpy().reshape(-1),  # (H, A) row-major
    })
    if target is not None:
        weights = weights.with_columns(pl.Series("target", np.tile(target.double().numpy(), H)))
    ahead = vt.raw_returns[risk.assets.to(vt.raw_returns.device)].double().cpu().numpy()  # (A, T) log returns
    realised = np.full(H, np.nan)
    for h in range(1, H + 1):
        if t + h < ahead.shape[1]:
            realised[h - 1] = float(plan.weights[h - 1].double().numpy() @ np.nan_to_num(np.expm1(ahead[:, t + h])))
    ret, vol = plan.trajectories["ret"], plan.trajectories["vol"]  # (H, E)
    E = ret.shape[1]
    traj = pl.DataFrame({
        "sample": np.tile(np.arange(E), H), "step": np.repeat(np.arange(1, H + 1), E),
        "ret": ret.double().numpy().reshape(-1), "vol": vol.double().numpy().reshape(-1),
        "realised": np.repeat(realised, E),
    })
    return weights, traj


def _counted(fn: WeightFn, advance: Callable[[], None], times: list[float] | None = None) -> WeightFn:
    params = inspect.signature(fn).parameters

    def weights(window: pd.DataFrame, w_prev: np.ndarray, impact: np.ndarray | None = None) -> Any:
        advance()
        t0 = time.perf_counter()
        kwargs = {k: v for k, v in (("w_prev", w_prev), ("impact", impact)) if k in params}
        out = fn(window, **kwargs)
        if times is not None:
            times.append(time.perf_counter() - t0)
        return out

    return weights


def _long_frames(res: Any) -> tuple[pl.DataFrame, pl.DataFrame]:
    eq = res.equity.unpivot(index="date", variable_name="strategy", value_name="equity")
    net = res.returns.unpivot(index="date", variable_name="strategy", value_name="net_return")
    equity = eq.join(net, on=["date", "strategy"], how="left").sort("strategy", "date")
    weights = pl.concat([w.unpivot(index="date", variable_name="ticker", value_name="weight")
                         .with_columns(pl.lit(name).alias("strategy")) for name, w in res.weights.items()])
    return equity, weights.select("date", "strategy", "ticker", "weight").sort("strategy", "date", "ticker")


def cost_levels(headline: float, extra: tuple[float, ...] = COSTS_BPS) -> list[float]:
    """The backtest's cost levels in bps: `extra` and the config's own, sorted, each once."""
    return sorted({float(c) for c in extra} | {float(headline)})


def planner_cost(cfg: PlanConfig, bt_cost_bps: float, level_bps: float) -> PlanConfig:
    """The PlanConfig for a backtest at `level_bps`: the planner's κ scales with the cost it will pay (κ = bps/1e4
    with the defaults; a κ set apart from the backtest's cost keeps its ratio to it).
    """
    kappa = cfg.cost * level_bps / bt_cost_bps if bt_cost_bps > 0 else level_bps / 1e4
    return replace(cfg, cost=float(kappa))


def judged_metrics(res: Any, reps: int, seed: int) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """({strategy: METRICS}, {strategy: {p, p_memmel, sharpe_diff}} against equal weight) of a BacktestResult."""
    names = [c for c in res.returns.columns if c != "date"]
    judged = judge({n: res.returns[n].to_numpy() for n in names}, reference="equal_weight", reps=reps, seed=seed)
    table: dict[str, dict[str, float]] = {}
    versus: dict[str, dict[str, float]] = {}
    for n in names:
        m = {**res.metrics[n], **judged[n]}
        table[n] = {k: float(m[k]) for k in METRICS}
        if "p" in judged[n]:
            versus[n] = {k: float(judged[n][k]) for k in ("p", "p_memmel", "sharpe_diff")}
    return table, versus


def dollar_volume(store: Store, dates: list[dt.date], tickers: list[str]) -> pd.DataFrame | None:
    """(T, A) close × volume of the store on `dates` x `tickers` (NaN where unknown); None when no ticker has any
    positive volume there (the impact term is then off).
    """
    if not tickers or not store.exists():
        return None
    traded = store.collect(store.scan_prices()
                           .filter(pl.col("ticker").is_in(tickers) & pl.col("volume").is_not_null()
                                   & (pl.col("volume") > 0))
                           .select("date", "ticker", (pl.col("close") * pl.col("volume")).alias("value")))
    if traded.height == 0:
        return None
    wide = traded.to_pandas().pivot(index="date", columns="ticker", values="value")
    wide.index = pd.DatetimeIndex(pd.to_datetime(wide.index))
    return wide.reindex(index=pd.DatetimeIndex(pd.to_datetime(dates)), columns=tickers).astype("float64")


def run_plan(ws: Workspace, run_dir: str | Path | RunDir, *, progress: bool = True,
             costs_bps: tuple[float, ...] = COSTS_BPS, reps: int = 1000, plan: PlanConfig | None = None,
             write: bool = True) -> dict[str, Any]:
    """Walk-forward backtests on the run's test period at each cost level of `costs_bps` and the config's
    `backtest.cost_bps` (the headline); writes RUN/planning/*.parquet (headline cost) and report["planning"].

    Needs the run's world model (`dynmix train --stage world`); trains nothing. Every level starts the strategies
    afresh; the MPCs' κ follows the level (`planner_cost`). `plan` replaces the run's [plan] config and
    `write=False` leaves the run folder alone (design comparisons: benchmarks/planning_designs.py).
    """
    rd = RunDir.of(run_dir)
    wr = load_world_run(ws, rd)
    cfg = wr.cfg if plan is None else replace(wr.cfg, plan=plan)
    vt, bt = wr.vt, cfg.backtest
    if wr.train_last + 1 >= len(vt.dates):
        raise DynMIXError(f"run {rd.name} has no test period after {wr.train_end}: nothing to backtest")
    simple = np.expm1(vt.raw_returns.double().cpu().numpy()).T  # (T, N) simple returns, NaN where missing
    frame = as_wide_returns(pd.DataFrame(simple, index=pd.DatetimeIndex(vt.dates), columns=vt.tickers))
    start = vt.dates[wr.train_last + 1]
    levels = cost_levels(bt.cost_bps, costs_bps)
    H = cfg.plan.horizon
    # the stacking model's IC after its cut is out of sample; world.pt's own IC would be in-sample (an upper bound)
    skill_world = world_skill(wr.stack, wr.panel, wr.train_last, H, first=wr.stack_last) if wr.stack is not None \
        else world_skill(wr.world, wr.panel, wr.train_last, H)
    skills = {"world_mpc": skill_world,
              "sample_mpc": trailing_mean_skill(frame.to_numpy(), bt.lookback, H, wr.train_last)}
    use = skills if cfg.plan.shrink_mu else {}
    store = Store(ws.store)
    truth = synthetic_truth(store)  # a synthetic market: the oracle joins the table
    notes = list(wr.notes)
    dv = dollar_volume(store, list(vt.dates), list(vt.tickers)) if cfg.plan.impact > 0 else None
    impact = Impact(dv, coeff=cfg.plan.impact, nav=cfg.plan.nav) if dv is not None else None
    if impact is not None:
        known = int(dv.notna().any().sum()) if dv is not None else 0
        notes.append(f"costs: + square-root impact {cfg.plan.impact:g}·σ·sqrt(|Δw|·NAV/ADV) per unit traded, NAV "
                     f"{cfg.plan.nav:,.0f}, {known} of {len(vt.tickers)} companies with volume (every cost level)")
    if truth is not None:
        notes.append("oracle: the same MPC on the generator's true next-day moments (synthetic market), the limit "
                     "of planning there")

    def strategies(level: float) -> dict[str, WeightFn]:
        pc = planner_cost(cfg.plan, bt.cost_bps, level)
        oracle = {"oracle": oracle_strategy(truth, pc)} if truth is not None else {}
        return {"world_mpc": world_strategy(wr.world, wr.panel, pc, use.get("world_mpc")),
                "world_hierarchical": hierarchical_strategy(wr.world, wr.panel, pc, use.get("world_mpc")),
                "sample_mpc": mpc_strategy(pc, skill=use.get("sample_mpc")), **oracle, **skfolio_baselines()}

    n_rebal = len(rebalance_positions(frame.index, int(frame.index.searchsorted(pd.Timestamp(start))), bt.rebalance))
    n_strat = len(strategies(bt.cost_bps))
    by_cost: dict[str, dict[str, dict[str, float]]] = {}
    planning: dict[str, Any] = {}
    times: dict[str, list[float]] = {"world_mpc": [], "world_hierarchical": []}
    with Progress(disable=not progress) as bar, single_thread():
        task = bar.add_task("walk-forward rebalances", total=n_rebal * n_strat * len(levels))
        for level in levels:
            headline = level == float(bt.cost_bps)
            counted = {k: _counted(fn, lambda: bar.advance(task), times.get(k) if headline else None)
                       for k, fn in strategies(level).items()}
            res = backtest(frame, counted, start=start, rebalance=bt.rebalance, cost_bps=level, lookback=bt.lookback,
                           impact=impact)
            table, versus = judged_metrics(res, reps, cfg.plan.seed)
            by_cost[f"{level:g}"] = {n: {**row, **({"p": versus[n]["p"]} if n in versus else {})}
                                     for n, row in table.items()}
            if headline and write:
                equity, weights = _long_frames(res)
                rd.write_table(rd.equity_path, equity)
                rd.write_table(rd.weights_path, weights)
            if headline:
                planning = {**table, "vs_equal_weight": versus}
    planning["costs_bps"] = float(bt.cost_bps)
    planning["impact"] = ({"coeff": float(cfg.plan.impact), "nav": float(cfg.plan.nav), "adv_days": impact.days}
                          if impact is not None else None)
    planning["by_cost"] = by_cost
    planning["ms_per_plan"] = {k: 1e3 * float(np.mean(v)) for k, v in times.items() if v}
    planning["skill"] = {k: {**v.to_dict(), "used": bool(cfg.plan.shrink_mu)} for k, v in skills.items()}
    report = rd.update_report({"planning": planning}) if write else {"planning": planning}
    setup = {"test_start": str(res.equity["date"][0]), "test_end": str(res.equity["date"][-1]),
             "rebalance": bt.rebalance, "cost_bps": bt.cost_bps, "lookback": bt.lookback, "rebalances": n_rebal,
             "assets": len(vt.tickers), "costs_bps": levels, "bootstrap_reps": reps}
    return {"planning": report["planning"], "setup": setup, "notes": notes}


def planning_table(result: dict[str, Any]) -> str:
    """Markdown table of the backtest metrics (from run_plan's result or a whole report)."""
    section = result.get("planning", result)
    if not isinstance(section, dict) or not section:
        return "no planning results"
    setup = result.get("setup") or {}
    head = (f"Walk-forward {setup['test_start']} .. {setup['test_end']}, rebalance {setup['rebalance']}, "
            f"{setup['cost_bps']:g} bps per unit of turnover (annualised; turnover per year)\n") if setup else ""
    rows = planning_rows(section) if "costs_bps" in section else section
    ms = section.get("ms_per_plan") or {}
    tail = ("\nms per plan: " + ", ".join(f"{k} {v:.1f}" for k, v in ms.items())) if ms else ""
    tail += "".join(f"\nnote: {n}" for n in result.get("notes") or [] if str(n).startswith(("oracle:", "costs:")))
    return head + markdown_table(rows, "strategy") + tail
