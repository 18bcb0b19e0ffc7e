"""`dynmix demo`: everything at once on the embedded data (see pipelines/demo.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from dynmix.cli.app import app
from dynmix.cli.common import console, friendly, workspace, writes


@app.command("demo")
@friendly
@writes("dynmix demo")
def demo(
    epochs: Annotated[int | None, typer.Option("--epochs", help="Override the demo's epochs.")] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto | cpu | cuda")] = None,
    forecast: Annotated[bool, typer.Option("--forecast/--no-forecast", help="Also train the JEPA and the world "
                                           "model, forecast and plan.")] = True,
    synthetic: Annotated[bool, typer.Option(
        "--synthetic", help="A synthetic market with planted sectors instead of the embedded sample.")] = False,
    tickers: Annotated[int, typer.Option("--tickers", "-n", help="--synthetic: companies.")] = 100,
    sectors: Annotated[int, typer.Option("--sectors", "-k", help="--synthetic: planted sectors.")] = 5,
    years: Annotated[float, typer.Option("--years", "-y", help="--synthetic: years of history.")] = 12.0,
    seed: Annotated[int, typer.Option("--seed", help="--synthetic: seed of the market.")] = 0,
) -> None:
    """Sample data, then `dynmix pipeline`: views -> train (market-vol + static) -> evaluate -> JEPA + world model
    -> forecast -> plan, with a summary.

    With --synthetic: a seeded market with planted sectors -> views -> train both -> evaluate (sector recovery)
    -> world model -> volatility forecasts with the oracle (the generator's true variances) -> plan with the oracle
    planner (the MPC on the true moments; --no-forecast skips both).
    """
    from pipelines.demo import run_demo  # every stage: only when the command runs
    from pipelines.synthetic import run_synthetic

    if synthetic:
        run_synthetic(workspace(), tickers=tickers, sectors=sectors, years=years, seed=seed, epochs=epochs,
                      device=device, console=console, forecast=forecast)
        return
    run_demo(workspace(), epochs=epochs, device=device, forecast=forecast, console=console)
