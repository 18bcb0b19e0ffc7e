"""`dynmix train [--stage dynmix|jepa|world]` (also under `torchrun --nproc_per_node N -m dynmix train …`) and
`dynmix embed RUN`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from dynmix.cli.app import app
from dynmix.cli.common import console, friendly, workspace, writes
from dynmix.config import DEVICES, OBJECTIVES, load_config
from dynmix.config import VARIANCE_TARGETS as STRATEGIES
from dynmix.errors import DynMIXError

STAGES = ("dynmix", "jepa", "world")


@app.command("train")
@friendly
@writes("dynmix train")
def train_cmd(
    stage: Annotated[str, typer.Option("--stage", help="dynmix: the encoders (a new run); jepa | world: the "
                                       "temporal JEPA or the world model of a trained run (--run).")] = "dynmix",
    run: Annotated[str, typer.Option("--run", help="--stage jepa|world: the run (id, folder or 'latest').")
                   ] = "latest",
    config: Annotated[Path | None, typer.Option("--config", help="TOML config (defaults for everything else).")] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto | cpu | cuda (default: the config's).",
                                               show_default=False)] = None,
    objective: Annotated[str | None, typer.Option(
        "--objective", help=f"{' | '.join(OBJECTIVES)}: the pair loss (default: the config's [loss] objective).",
        show_default=False)] = None,
    variance_target: Annotated[str | None, typer.Option(
        "--variance-target", help=f"{' | '.join(STRATEGIES)} (default: the config's).", show_default=False)] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="Passes over the training dates.",
                                               show_default=False)] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed.", show_default=False)] = None,
    resume: Annotated[str | None, typer.Option(
        "--resume", help="Continue exactly from the checkpoint, with the saved config: the run's encoders (--stage "
        "dynmix) or that run's unfinished JEPA / world model (--stage jepa|world); a run id, folder or 'latest'.",
        show_default=False)
    ] = None,
    run_name: Annotated[str | None, typer.Option("--run-name", help="Tag of the run id (default: the variance "
                                                 "target, or the objective when not vicreg).", show_default=False)
                   ] = None,
    max_steps: Annotated[int | None, typer.Option(
        "--max-steps", min=1, help="--stage dynmix: stop after N optimiser steps in all (smoke runs, benchmarks) with "
        "a checkpoint; `dynmix embed RUN` exports its embeddings, --resume RUN continues it.", show_default=False)
    ] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide the progress bar.")] = False,
) -> None:
    """Train on HOME/views: the DynMIX encoders into a new HOME/runs/<run-id>/, or a run's JEPA or world model."""
    from dynmix.losses.distributed import rank  # torch and the models: only when the command runs
    from dynmix.runs.rundir import RunDir
    from dynmix.train.jepa import fit_jepa
    from dynmix.train.job import train
    from dynmix.train.world import fit_world

    if stage not in STAGES:
        raise DynMIXError(f"--stage {stage!r}: expected one of {', '.join(STAGES)}")
    if device is not None and device not in DEVICES:
        raise DynMIXError(f"--device {device!r}: expected one of {', '.join(DEVICES)}")
    if stage != "dynmix":
        given = [k for k, v in {"--config": config, "--device": device, "--variance-target": variance_target,
                                "--objective": objective, "--seed": seed, "--run-name": run_name,
                                "--max-steps": max_steps}.items()
                 if v is not None]
        if given:
            raise DynMIXError(f"--stage {stage} trains with the run's saved config; drop {', '.join(given)}")
        ws = workspace()
        rd = RunDir.resolve(ws, resume if resume is not None else run)  # --resume RUN: continue that run's model
        if rd.incomplete:
            raise DynMIXError(f"run {rd.name} did not finish training its encoders: continue it first with "
                              f"`dynmix train --resume {rd.name}`")
        fit = fit_jepa if stage == "jepa" else fit_world
        path = fit(ws, rd, epochs=epochs, resume=resume is not None, progress=not no_progress)
        if rank() == 0:
            console.print(f"{stage}: [bold]{path}[/]")
        return
    if variance_target is not None and variance_target not in STRATEGIES:
        raise DynMIXError(f"--variance-target {variance_target!r}: expected one of {', '.join(STRATEGIES)}")
    if objective is not None and objective not in OBJECTIVES:
        raise DynMIXError(f"--objective {objective!r}: expected one of {', '.join(OBJECTIVES)}")
    if resume is not None:
        fixed = {"--config": config, "--variance-target": variance_target, "--objective": objective,
                 "--epochs": epochs, "--seed": seed,
                 "--run-name": run_name}
        given = [k for k, v in fixed.items() if v is not None]
        if given:
            raise DynMIXError(f"--resume continues a run with its saved config; drop {', '.join(given)}")
    cfg = load_config(config)
    tr = cfg.train
    tr = replace(tr, device=device or tr.device, epochs=epochs or tr.epochs, seed=tr.seed if seed is None else seed)
    cfg = replace(cfg, train=tr, loss=replace(cfg.loss, variance_target=variance_target or cfg.loss.variance_target,
                                              objective=objective or cfg.loss.objective))
    run_dir = train(workspace(), cfg, resume=resume, run_name=run_name, progress=not no_progress,
                    max_steps=max_steps)
    if rank() == 0:
        console.print(f"run: [bold]{run_dir}[/]")


@app.command("embed")
@friendly
@writes("dynmix embed")
def embed_cmd(
    run: Annotated[str, typer.Argument(help="Run id, run folder, or 'latest'.")] = "latest",
    device: Annotated[str, typer.Option("--device", help="auto | cpu | cuda.")] = "auto",
    ema: Annotated[bool, typer.Option("--ema", help="Use the EMA weights instead of the final ones.")] = False,
    every: Annotated[int, typer.Option("--every", min=1, help="Keep every k-th date, counted back from the last "
                                       "(1: every date; 5: weekly, a fifth of the size on disk).")] = 1,
) -> None:
    """Re-export the embeddings of a run with its saved model (every valid ticker; every date, or every k-th)."""
    from dynmix.runs.device import resolve_device
    from dynmix.runs.memory import embed_dates_per_batch
    from dynmix.runs.models import load_run
    from dynmix.runs.rundir import RunDir
    from dynmix.train.embed import export_embeddings

    ws = workspace()
    rd = RunDir.resolve(ws, run)
    dev = resolve_device(device)
    cfg, model, vt = load_run(rd, dev, views_dir=ws.views, ema=ema, every=every)  # explicit rows of those dates
    dates = embed_dates_per_batch(cfg.train, cfg.model, vt.window, len(vt.tickers), dev)
    path = export_embeddings(model, vt, rd.embeddings_dir, dates, cfg.train.amp, every=every)
    console.print(f"embeddings: [bold]{path}[/]")
