"""`dynmix evaluate RUN [--compare RUN2]`: out-of-sample evaluation of a run's embeddings."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from dynmix.cli.app import app
from dynmix.cli.common import console, friendly, workspace, writes


@app.command("evaluate")
@friendly
@writes("dynmix evaluate")
def evaluate(
    run: Annotated[str, typer.Argument(help="Run id, run folder, or 'latest'.")] = "latest",
    compare: Annotated[
        str | None,
        typer.Option("--compare", help="Another run (e.g. the static-gamma ablation): its implicit view is "
                                       "scored beside this run's.", show_default=False),
    ] = None,
) -> None:
    """Score the embeddings against baselines on the test period; write report.json and report.md."""
    from dynmix.evaluation.report import evaluate_run, headline_table  # scipy, sklearn: only when run
    from dynmix.runs.rundir import RunDir

    ws = workspace()
    rd = RunDir.resolve(ws, run)
    other = RunDir.resolve(ws, compare) if compare is not None else None
    with console.status(f"evaluating {rd.name} …"):
        report = evaluate_run(ws, rd, compare=other)
    console.print(headline_table(report), markup=False, soft_wrap=True)
    for note in report.get("notes", []):
        console.print(f"[dim]note:[/] {escape(note)}", soft_wrap=True)
    console.print(f"report: {rd.report_path}", markup=False, soft_wrap=True)
    console.print(f"        {rd.report_md_path}", markup=False, soft_wrap=True)
