"""`dynmix plan RUN`: walk-forward backtest of the world-model MPC against the skfolio baselines."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from dynmix.cli.app import app
from dynmix.cli.common import console, friendly, workspace, writes
from dynmix.cli.report_tables import section_table


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
    from dynmix.runs.rundir import RunDir

    ws = workspace()
    rd = RunDir.resolve(ws, run)
    result = run_plan(ws, rd, progress=not no_progress)
    s = result["setup"]
    title = (f"Walk-forward {s['test_start']} .. {s['test_end']}, {s['assets']} assets, rebalance {s['rebalance']} "
             f"({s['rebalances']} times), {s['cost_bps']:g} bps per unit of turnover; net of costs, annualised")
    console.print(section_table(result["planning"], title, first="strategy"))
    for note in result.get("notes", []):
        console.print(f"[dim]note:[/] {escape(str(note))}", soft_wrap=True)
    console.print(f"backtest: {rd.planning_dir}", markup=False, soft_wrap=True)
