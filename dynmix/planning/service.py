"""Planning with a run's world model: `plan_at` (one date, for the dashboard) and `run_plan` (`dynmix plan`: the
walk-forward backtest of the world-model MPC against the skfolio baselines on the run's test period).

Nothing is tuned on the test period: PlanConfig and BacktestConfig of the run are used as they are. Files:
RUN/planning/equity.parquet (date, strategy, equity, net_return) and RUN/planning/weights.parquet (date,
strategy, ticker, weight); report["planning"] = {strategy: {ann_return, ann_vol, sharpe, max_drawdown, turnover}}.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import torch
from rich.progress import Progress

from dynmix.errors import DynMIXError
from dynmix.planning.backtest import WeightFn, as_wide_returns, backtest, rebalance_positions
from dynmix.planning.baselines import mpc_strategy, skfolio_baselines
from dynmix.planning.portfolio import PortfolioMPC
from dynmix.planning.world_risk import WorldRiskModel, world_strategy
from dynmix.runs.models import load_run, load_world, load_world_run, run_device
from dynmix.runs.panel import build_panel
from dynmix.runs.report_md import markdown_table
from dynmix.runs.rundir import RunDir
from dynmix.runs.threads import single_thread
from dynmix.workspace import Workspace

METRICS = ("ann_return", "ann_vol", "sharpe", "max_drawdown", "turnover")


def plan_at(ws: Workspace, run_dir: str | Path | RunDir, date: dt.date | str, *, risk_aversion: float | None = None,
            cost: float | None = None, horizon: int | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Plan from cash at the close of `date` (the last view date <= it) over the companies alive then.

    Returns (weights: ticker, step, weight) with step 1..H the day each weight is held, and the planner's elite
    imagined trajectories (sample, step, ret, vol): predicted daily portfolio return and volatility per step.
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
    with single_thread():
        plan = PortfolioMPC(pc).plan(risk.forecast(pc.horizon), torch.zeros(len(risk.tickers)))
    H, A = plan.weights.shape
    weights = pl.DataFrame({
        "ticker": risk.tickers * H,
        "step": np.repeat(np.arange(1, H + 1), A),
        "weight": plan.weights.double().numpy().reshape(-1),  # (H, A) row-major
    })
    ret, vol = plan.trajectories["ret"], plan.trajectories["vol"]  # (H, E)
    E = ret.shape[1]
    traj = pl.DataFrame({
        "sample": np.tile(np.arange(E), H), "step": np.repeat(np.arange(1, H + 1), E),
        "ret": ret.double().numpy().reshape(-1), "vol": vol.double().numpy().reshape(-1),
    })
    return weights, traj


def _counted(fn: WeightFn, advance: Callable[[], None]) -> WeightFn:
    wants = "w_prev" in inspect.signature(fn).parameters

    def weights(window: pd.DataFrame, w_prev: np.ndarray) -> Any:
        advance()
        return fn(window, w_prev=w_prev) if wants else fn(window)

    return weights


def _long_frames(res: Any) -> tuple[pl.DataFrame, pl.DataFrame]:
    eq = res.equity.unpivot(index="date", variable_name="strategy", value_name="equity")
    net = res.returns.unpivot(index="date", variable_name="strategy", value_name="net_return")
    equity = eq.join(net, on=["date", "strategy"], how="left").sort("strategy", "date")
    weights = pl.concat([w.unpivot(index="date", variable_name="ticker", value_name="weight")
                         .with_columns(pl.lit(name).alias("strategy")) for name, w in res.weights.items()])
    return equity, weights.select("date", "strategy", "ticker", "weight").sort("strategy", "date", "ticker")


def run_plan(ws: Workspace, run_dir: str | Path | RunDir, *, progress: bool = True) -> dict[str, Any]:
    """Walk-forward backtest on the run's test period; writes RUN/planning/*.parquet and report["planning"].

    Needs the run's world model (`dynmix train --stage world`); trains nothing.
    """
    rd = RunDir.of(run_dir)
    wr = load_world_run(ws, rd)
    vt, cfg, bt = wr.vt, wr.cfg, wr.cfg.backtest
    if wr.train_last + 1 >= len(vt.dates):
        raise DynMIXError(f"run {rd.name} has no test period after {wr.train_end}: nothing to backtest")
    simple = np.expm1(vt.raw_returns.double().cpu().numpy()).T  # (T, N) simple returns, NaN where missing
    frame = as_wide_returns(pd.DataFrame(simple, index=pd.DatetimeIndex(vt.dates), columns=vt.tickers))
    start = vt.dates[wr.train_last + 1]
    strategies: dict[str, WeightFn] = {"world_mpc": world_strategy(wr.world, wr.panel, cfg.plan),
                                       "sample_mpc": mpc_strategy(cfg.plan), **skfolio_baselines()}
    n_rebal = len(rebalance_positions(frame.index, int(frame.index.searchsorted(pd.Timestamp(start))), bt.rebalance))
    with Progress(disable=not progress) as bar, single_thread():
        task = bar.add_task("walk-forward rebalances", total=n_rebal * len(strategies))
        counted = {k: _counted(fn, lambda: bar.advance(task)) for k, fn in strategies.items()}
        res = backtest(frame, counted, start=start, rebalance=bt.rebalance, cost_bps=bt.cost_bps,
                       lookback=bt.lookback)
    equity, weights = _long_frames(res)
    rd.write_table(rd.equity_path, equity)
    rd.write_table(rd.weights_path, weights)
    planning = {name: {k: m[k] for k in METRICS} for name, m in res.metrics.items()}
    report = rd.update_report({"planning": planning})
    setup = {"test_start": str(res.equity["date"][0]), "test_end": str(res.equity["date"][-1]),
             "rebalance": bt.rebalance, "cost_bps": bt.cost_bps, "lookback": bt.lookback, "rebalances": n_rebal,
             "assets": len(vt.tickers)}
    return {"planning": report["planning"], "setup": setup, "notes": wr.notes}


def planning_table(result: dict[str, Any]) -> str:
    """Markdown table of the backtest metrics (from run_plan's result or a whole report)."""
    section = result.get("planning", result)
    if not isinstance(section, dict) or not section:
        return "no planning results"
    setup = result.get("setup") or {}
    head = (f"Walk-forward {setup['test_start']} .. {setup['test_end']}, rebalance {setup['rebalance']}, "
            f"{setup['cost_bps']:g} bps per unit of turnover (annualised; turnover per year)\n") if setup else ""
    return head + markdown_table(section, "strategy")
