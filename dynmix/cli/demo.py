"""`dynmix demo`: everything at once on the embedded data (see pipelines/demo.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from dynmix.cli.app import app
from dynmix.cli.common import console, friendly, workspace


@app.command("demo")
@friendly
def demo(
    epochs: Annotated[int | None, typer.Option("--epochs", help="Override the demo's epochs.")] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto | cpu | cuda")] = None,
    forecast: Annotated[bool, typer.Option("--forecast/--no-forecast", help="Also forecast and plan.")] = True,
) -> None:
    """Sample data -> views -> train (market-vol + static) -> evaluate -> forecast -> plan, with a summary."""
    from pipelines.demo import run_demo

    run_demo(workspace(), epochs=epochs, device=device, forecast=forecast, console=console)
