"""`dynmix plan RUN`: walk-forward backtest of the world-model MPC against the skfolio baselines."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from dynmix.cli.app import app
from dynmix.cli.common import console, friendly, workspace, writes
from dynmix.cli.report_tables import section_table


def _compact(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Rows for an 80-column terminal: the Sharpe interval as one text column, short names, no return
    (= Sharpe x vol) and no CVaR (report.md has every column).
    """
    names = {"ann_return": None, "ann_vol": "vol", "max_drawdown": "maxDD", "turnover": "turn", "p_vs_1N": "p",
             "cvar95": None}
    out = {}
    for name, r in rows.items():
        row: dict[str, Any] = {}
        for k, v in r.items():
            if k == "sharpe_lo":
                row["95% CI"] = f"{v:.2f}..{r.get('sharpe_hi', float('nan')):.2f}" if v is not None else None
            elif k != "sharpe_hi" and names.get(k, k) is not None:
                row[str(names.get(k, k))] = v
        out[name] = row
    return out


@app.command("plan")
@friendly
@writes("dynmix plan")
def plan_cmd(
    run: Annotated[str, typer.Argument(help="Run id, run folder, or 'latest'.")] = "latest",
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide the progress display.")] = False,
) -> None:
    """Backtest the planner on the run's test period (costs and rebalancing from the run's config); needs the
    run's world model (`dynmix train --stage world`).
    """
    from dynmix.planning.service import run_plan  # torch, skfolio: only when the command runs
    from dynmix.runs.report_md import planning_rows
    from dynmix.runs.rundir import RunDir

    ws = workspace()
    rd = RunDir.resolve(ws, run)
    result = run_plan(ws, rd, progress=not no_progress)
    s = result["setup"]
    title = (f"Walk-forward {s['test_start']} .. {s['test_end']}, {s['assets']} assets, rebalance {s['rebalance']} "
             f"({s['rebalances']} times), {s['cost_bps']:g} bps per unit of turnover; net of costs, annualised")
    console.print(section_table(_compact(planning_rows(result["planning"])), title, first="strategy"))
    for level, table in result["planning"].get("by_cost", {}).items():
        if float(level) != s["cost_bps"]:
            console.print(section_table(_compact(table), f"at {level} bps per unit of turnover", first="strategy"))
    console.print("95% CI: stationary-bootstrap interval of the Sharpe ratio; p: bootstrap p-value of its difference "
                  "from equal_weight's; turn: turnover per year; report.md adds CVaR 95 % and Memmel's p.",
                  markup=False)
    ms = result["planning"].get("ms_per_plan") or {}
    console.print("ms per plan: " + ", ".join(f"{k} {v:.1f}" for k, v in ms.items()), markup=False)
    for note in result.get("notes", []):
        console.print(f"[dim]note:[/] {escape(str(note))}", soft_wrap=True)
    console.print(f"backtest: {rd.planning_dir}", markup=False, soft_wrap=True)
