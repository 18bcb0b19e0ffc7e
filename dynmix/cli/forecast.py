"""`dynmix forecast RUN`: the run's world model's volatility forecasts against HAR-RV / GARCH(1,1), latent and
density forecast errors, and the JEPA surprise index. Trains nothing (`dynmix train --stage world|jepa` does).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from dynmix.cli.app import app
from dynmix.cli.common import console, friendly, workspace, writes
from dynmix.cli.report_tables import section_table

HORIZONS = (("h1", "next day"), ("h5", "next 5 days"), ("h22", "next 22 days"))
TABLES = (
    ("gmv", "Global minimum variance from each covariance, rebalanced weekly: realised annualised vol, test period"),
    ("density", "Next-day NLL per company of the cross-section of % returns"),
    ("latent", "Latent forecast error h days ahead, test period (relative MSE; 1 = the mean latent)"),
)


@app.command("forecast")
@friendly
@writes("dynmix forecast")
def forecast_cmd(
    run: Annotated[str, typer.Argument(help="Run id, run folder, or 'latest'.")] = "latest",
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide the progress display.")] = False,
) -> None:
    """Forecast with the run's world model against baselines; write RUN/forecast/ and merge report.json."""
    from dynmix.forecast.service import run_forecast  # torch, arch: only when the command runs
    from dynmix.runs.report_md import SURPRISE_META, surprise_verdict, volatility_rows
    from dynmix.runs.rundir import RunDir

    ws = workspace()
    rd = RunDir.resolve(ws, run)
    result = run_forecast(ws, rd, progress=not no_progress)
    vol = result.get("volatility") or {}
    for h, span in HORIZONS:
        if vol.get(h):
            console.print(section_table(volatility_rows(vol[h]), f"Volatility of the {span}, test period: QLIKE "
                                        "(variance), MSE (daily variance, %²); dm_*: Diebold–Mariano of dynmix "
                                        "(dynmix_har) against the row, > 0: dynmix loses more"))
    for key, title in TABLES:
        if result.get(key):
            console.print(section_table(result[key], title))
    surprise = result.get("surprise")
    if isinstance(surprise, dict) and surprise:
        rows = {k: v for k, v in surprise.items() if k not in SURPRISE_META and isinstance(v, dict)}
        console.print(section_table(rows, "JEPA surprise index against next-week market volatility"))
        if isinstance(surprise.get("increment"), dict):
            console.print(surprise_verdict(surprise["increment"]), markup=False, soft_wrap=True)
    for note in result.get("notes", []):
        console.print(f"[dim]note:[/] {escape(str(note))}", soft_wrap=True)
    console.print(f"forecasts: {rd.forecast_dir}", markup=False, soft_wrap=True)
    console.print(f"report:    {rd.report_md_path}", markup=False, soft_wrap=True)
