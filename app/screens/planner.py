"""Planner: run the portfolio MPC on a chosen date (planned weights, imagined trajectories) and compare the
walk-forward backtest with the skfolio baselines."""

from __future__ import annotations

import polars as pl
import streamlit as st

from app import artifacts, components, loaders
from app.charts import planner as charts
from dynmix.errors import DynMIXError
from dynmix.runs.report_md import planning_rows
from dynmix.runs.rundir import RunDir

st.title("Planner")
ws = loaders.workspace()
run = components.run_picker(ws, key="planner_run")
if run is None:
    st.stop()

plan_cfg = artifacts.read_toml(RunDir(run).config_path).get("plan", {})
equity = loaders.parquet(RunDir(run).equity_path)
weights = loaders.parquet(RunDir(run).weights_path)
gamma = loaders.parquet(RunDir(run).gamma_path)


def plan_dates() -> list:
    """Dates to plan on: the run's test dates, else all its dates, else the backtest's."""
    if gamma is not None and gamma.height:
        test = gamma.filter(~pl.col("train")) if "train" in gamma.columns else gamma
        return (test if test.height else gamma)["date"].to_list()
    return equity["date"].unique().sort().to_list() if equity is not None else []


st.subheader("Plan on a date")
dates = plan_dates()
if not dates:
    components.hint(f"Run {run.name} has no dates to plan on (gamma.parquet is absent).")
else:
    c1, c2, c3 = st.columns(3)
    rho = c1.slider("Risk aversion ρ", 0.0, 50.0, float(plan_cfg.get("risk_aversion", 5.0)), 0.5, key="plan_rho")
    cost_bps = c2.number_input("Cost (bps per unit of turnover)", 0.0, 500.0,
                               float(plan_cfg.get("cost", 1e-3)) * 1e4, 5.0, key="plan_cost")
    horizon = c3.slider("Horizon (days)", 1, 20, int(plan_cfg.get("horizon", 5)), key="plan_horizon")
    date = st.select_slider("Date", options=dates, value=dates[0], key="plan_date")
    hierarchical = st.toggle("Hierarchical (a monthly strategic target over groups, tracked weekly)",
                             value=False, key="plan_hier")
    if st.button("Plan", icon=":material/play_arrow:", key="plan_button", type="primary"):
        st.session_state["planner_on"] = True  # from now on every change of a control re-plans
    if st.session_state.get("planner_on"):
        try:
            planned, traj = loaders.plan(ws, run, date, risk_aversion=rho, cost=cost_bps / 1e4, horizon=horizon,
                                         hierarchical=hierarchical)
        except DynMIXError as e:
            st.error(f"The planner could not run: {e}")
        except Exception as e:  # noqa: BLE001 - the page explains any planner failure instead of a traceback
            st.error(f"The planner failed ({type(e).__name__}): {e}")
        else:
            left, right = st.columns(2)
            with left:
                components.chart(charts.planned_weights_chart(planned), key="planned_weights")
            with right:
                components.chart(charts.trajectories_chart(traj), key="trajectories")
            if "target" in planned.columns:
                components.chart(charts.targets_chart(planned), key="targets")
            step = int(planned["step"].min())  # type: ignore[arg-type]
            first = planned.filter(pl.col("step") == step).sort("weight", descending=True)
            st.caption(f"Weights to hold now (step {step}), largest first:")
            components.table(first.select("ticker", "weight").head(15))
    else:
        st.caption("Set the controls and press Plan: the MPC samples weight sequences, rolls the world model "
                   "forward and keeps the cheapest (return − ρ·risk − cost·turnover).")

st.subheader("Backtest against the baselines")
planning = loaders.report(run).get("planning")
table = artifacts.section_table(planning_rows(planning), first="strategy")
if equity is None and table.height == 0:
    components.hint(f"Run {run.name} has no planner backtest yet.", f"dynmix plan {run.name}")
    st.stop()
if equity is not None:
    components.chart(charts.equity_chart(equity), key="equity")
if table.height:
    components.table(table)
    st.caption("Walk-forward, out of sample, after costs: annualised return and volatility, Sharpe ratio with its "
               "95 % stationary-bootstrap interval (sharpe_lo .. sharpe_hi), maximum drawdown, CVaR 95 % of daily "
               "returns, turnover per year (sum of |w_target - w_drifted|), and p_vs_1N, the bootstrap p-value of "
               "the Sharpe difference against equal weight (small: the gap is unlikely to be noise).")
    by_cost = planning.get("by_cost") if isinstance(planning, dict) else None
    if isinstance(by_cost, dict) and by_cost:
        st.caption("Costs as a control: the same walk-forward at each cost level (bps per unit of turnover).")
        level = st.radio("Cost level (bps)", list(by_cost), horizontal=True, key="plan_cost_level")
        components.table(artifacts.section_table(by_cost[level], first="strategy"))
if weights is not None and weights.height:
    strategies = weights["strategy"].unique().sort().to_list()
    strategy = st.selectbox("Strategy", strategies, key="plan_strategy")
    components.chart(charts.weights_area_chart(weights, strategy), key="weights_area")
