"""`dynmix compare`: objectives x seeds on the workspace's views, summarised with intervals and paired tests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dynmix.cli.app import app
from dynmix.cli.common import console, friendly, workspace, writes


@app.command("compare")
@friendly
@writes("dynmix compare")
def compare_cmd(
    objectives: Annotated[str | None, typer.Option(
        "--objectives", help="Comma-separated arms: vicreg:static, vicreg:market-vol, vicreg:dispersion, sigreg, "
        "barlow, infonce, byol (default: vicreg:static, vicreg:market-vol, barlow, infonce, byol; --full: all).",
        show_default=False)] = None,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Seeds per arm (0 .. N-1).")] = 3,
    config: Annotated[Path | None, typer.Option("--config", help="TOML config (default: the demo's, its model "
                                                "size).", show_default=False)] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="Epochs per run (default: 2; --full: the "
                                               "config's).", show_default=False)] = None,
    full: Annotated[bool, typer.Option("--full", help="Every arm, the config's epochs.")] = False,
    device: Annotated[str | None, typer.Option("--device", help="auto | cpu | cuda", show_default=False)] = None,
    threads: Annotated[int, typer.Option("--threads", min=0, help="Torch threads on a CPU (0: torch's default). "
                                         "One is faster on a shared machine; another count changes the weights "
                                         "in their last bits.")] = 1,
) -> None:
    """Train objectives x seeds with the same budget on HOME/views; write HOME/compare/compare.json and .md."""
    from pipelines.compare import ALL_ARMS, QUICK_ARMS, QUICK_EPOCHS, run_compare  # heavy: only when run
    from pipelines.demo import CONFIG, demo_config

    arms = tuple(a.strip() for a in objectives.split(",") if a.strip()) if objectives else (
        ALL_ARMS if full else QUICK_ARMS)
    cfg = demo_config(None, device, path=config or CONFIG)
    n_epochs = epochs or (cfg.train.epochs if full else QUICK_EPOCHS)
    run_compare(workspace(), cfg, arms=arms, seeds=seeds, epochs=n_epochs, console=console,
                threads=threads)
