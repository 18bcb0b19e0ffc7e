"""`dynmix pipeline [--config F]`: every step after the data on what HOME/store holds (see pipelines/demo.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dynmix.cli.app import app
from dynmix.cli.common import console, friendly, workspace, writes


@app.command("pipeline")
@friendly
@writes("dynmix pipeline")
def pipeline(
    config: Annotated[Path | None, typer.Option("--config", help="TOML config (default: the built-in defaults).",
                                                show_default=False)] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="Override the config's epochs.",
                                               show_default=False)] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto | cpu | cuda", show_default=False)] = None,
    forecast: Annotated[bool, typer.Option("--forecast/--no-forecast", help="Also train the JEPA and the world "
                                           "model, forecast and plan.")] = True,
    tag: Annotated[str, typer.Option("--tag", help="Prefix of the run ids.")] = "run",
) -> None:
    """Views -> train (configured variance target + static ablation) -> evaluate -> JEPA + world model ->
    forecast -> plan, on the data in HOME/store.
    """
    from pipelines.demo import demo_config, run_pipeline  # every stage: only when the command runs

    cfg = demo_config(epochs, device, path=config)
    run_pipeline(workspace(), cfg, tag=tag, forecast=forecast, console=console)
