"""`dynmix train` (also under `torchrun --nproc_per_node N -m dynmix train …`) and `dynmix embed RUN`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from dynmix.cli.app import app
from dynmix.cli.common import console, friendly, workspace
from dynmix.config import DEVICES, load_config
from dynmix.config import VARIANCE_TARGETS as STRATEGIES
from dynmix.errors import DynMIXError


@app.command("train")
@friendly
def train_cmd(
    config: Annotated[Path | None, typer.Option("--config", help="TOML config (defaults for everything else).")] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto | cpu | cuda (default: the config's).",
                                               show_default=False)] = None,
    variance_target: Annotated[str | None, typer.Option(
        "--variance-target", help=f"{' | '.join(STRATEGIES)} (default: the config's).", show_default=False)] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="Passes over the training dates.",
                                               show_default=False)] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed.", show_default=False)] = None,
    resume: Annotated[str | None, typer.Option(
        "--resume", help="Continue a run (id, folder or 'latest') exactly from its checkpoint, with its saved config.",
        show_default=False)] = None,
    run_name: Annotated[str | None, typer.Option("--run-name", help="Tag of the run id (default: the variance "
                                                 "target).", show_default=False)] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide the progress bar.")] = False,
) -> None:
    """Train DynMIX embeddings on HOME/views; writes HOME/runs/<run-id>/."""
    from dynmix.losses.distributed import rank
    from dynmix.train.job import train

    if device is not None and device not in DEVICES:
        raise DynMIXError(f"--device {device!r}: expected one of {', '.join(DEVICES)}")
    if variance_target is not None and variance_target not in STRATEGIES:
        raise DynMIXError(f"--variance-target {variance_target!r}: expected one of {', '.join(STRATEGIES)}")
    if resume is not None:
        fixed = {"--config": config, "--variance-target": variance_target, "--epochs": epochs, "--seed": seed,
                 "--run-name": run_name}
        given = [k for k, v in fixed.items() if v is not None]
        if given:
            raise DynMIXError(f"--resume continues a run with its saved config; drop {', '.join(given)}")
    cfg = load_config(config)
    tr = cfg.train
    tr = replace(tr, device=device or tr.device, epochs=epochs or tr.epochs, seed=tr.seed if seed is None else seed)
    cfg = replace(cfg, train=tr, loss=replace(cfg.loss, variance_target=variance_target or cfg.loss.variance_target))
    run_dir = train(workspace(), cfg, resume=resume, run_name=run_name, progress=not no_progress)
    if rank() == 0:
        console.print(f"run: [bold]{run_dir}[/]")


@app.command("embed")
@friendly
def embed_cmd(
    run: Annotated[str, typer.Argument(help="Run id, run folder, or 'latest'.")] = "latest",
    device: Annotated[str, typer.Option("--device", help="auto | cpu | cuda.")] = "auto",
    ema: Annotated[bool, typer.Option("--ema", help="Use the EMA weights instead of the final ones.")] = False,
) -> None:
    """Re-export embeddings.parquet of a run with its saved model (every valid ticker and date)."""
    from dynmix.train.dist import resolve_device
    from dynmix.train.embed import export_embeddings
    from dynmix.train.runs import load_run, resolve_run

    ws = workspace()
    run_dir = resolve_run(ws, run)
    cfg, model, vt = load_run(run_dir, resolve_device(device), views_dir=ws.views, ema=ema)
    path = export_embeddings(model, vt, run_dir / "embeddings.parquet", 2 * cfg.train.dates_per_batch, cfg.train.amp)
    console.print(f"embeddings: [bold]{path}[/]")
