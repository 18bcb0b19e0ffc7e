"""Loading a run's trained models back: the DynMIX encoders, the temporal JEPA and the world model.

The models are rebuilt from the config saved in their checkpoint (never the editable config.toml) and read from
checkpoints in the engine's format (weights_only).
A missing JEPA or world model is an error naming the `dynmix train --stage` command that trains it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from dynmix.config import DynMIXConfig, WorldConfig, config_from_dict
from dynmix.errors import DynMIXError
from dynmix.models.dynmix import DynMIX
from dynmix.models.encoders import ImplicitEncoder
from dynmix.models.jepa import TemporalJEPA
from dynmix.models.world import WorldModel
from dynmix.runs.checkpoint import load_checkpoint
from dynmix.runs.device import resolve_device
from dynmix.runs.panel import WorldPanel, build_panel
from dynmix.runs.rundir import RunDir
from dynmix.runs.split import time_split
from dynmix.runs.viewstamp import check_views, views_signature, views_stamp
from dynmix.views.tensors import ViewTensors, load_view_tensors
from dynmix.workspace import Workspace


def run_device(rd: RunDir) -> torch.device:
    """The device of the run's config (auto: CUDA when available)."""
    return resolve_device(rd.read_config().train.device)


def load_run(run: str | Path | RunDir, device: str | torch.device = "cpu", *, views_dir: str | Path | None = None,
             ema: bool = False, every: int = 1) -> tuple[DynMIXConfig, DynMIX, ViewTensors]:
    """(config, model in eval mode, views) of a trained run; the views default to HOME/views of the run's HOME.

    With `ema`, the EMA weights are loaded instead of the live ones; `every` = k: the explicit features of every
    k-th date only (`load_view_tensors`), for a strided export.
    """
    rd = RunDir.of(run)
    ckpt = rd.read_checkpoint(device)
    cfg = checkpoint_config(rd, ckpt)
    vdir = views_dir if views_dir is not None else rd.path.parent.parent / "views"
    vt = load_view_tensors(vdir, device, every=every)
    check_views(ckpt.get("views", {}), vt, vdir, f"run {rd.name}")
    model = DynMIX(cfg.model, len(vt.feature_names), len(vt.channels), vt.window,
                   predictor=cfg.loss.objective == "byol").to(device)
    model.load_state_dict(ckpt["ema"] if ema else ckpt["model"])
    model.eval()
    return cfg, model, vt


def checkpoint_config(rd: RunDir, ckpt: dict[str, Any]) -> DynMIXConfig:
    """The config a checkpoint was trained with (its own copy, not the editable config.toml beside it)."""
    saved = ckpt.get("config")
    if not isinstance(saved, dict) or not saved:
        return rd.read_config()
    try:
        return config_from_dict(saved)
    except DynMIXError as e:
        raise DynMIXError(f"checkpoint {rd.checkpoint_path}: its saved config does not load ({e})") from e


def train_last_index(rd: RunDir, cfg: DynMIXConfig, vt: ViewTensors) -> int:
    """The index of the run's last training date: split.json's train_end, else the config's split recomputed."""
    if rd.split_path.exists():
        return vt.date_index(rd.read_split()["train_end"])
    return vt.date_index(time_split(vt, cfg.train).train_end)


def derived_stamp(rd: RunDir, vt: ViewTensors, views_dir: str | Path, train_last: int) -> dict[str, Any]:
    """What a model derived from a run (JEPA, world model) depends on besides its config: the views, the run's
    split and the step of its DynMIX checkpoint. A change makes the derived model stale.
    """
    return {**views_signature(vt), "views_stamp": views_stamp(views_dir), "train_end": vt.dates[train_last].isoformat(),
            "dynmix_step": rd.checkpoint_step()}


def build_jepa(cfg: DynMIXConfig, vt: ViewTensors) -> tuple[TemporalJEPA, ImplicitEncoder]:
    """An untrained (JEPA, target encoder) pair shaped by the run's model config and the views."""
    m, j = cfg.model, cfg.jepa

    def encoder() -> ImplicitEncoder:
        return ImplicitEncoder(len(vt.channels), vt.window, m.implicit_width, m.implicit_layers, m.dim, m.dropout)

    return TemporalJEPA(encoder(), m.dim, j.horizon, j.predictor_hidden, j.horizon_dim), encoder()


def load_jepa(rd: RunDir, vt: ViewTensors, device: str | torch.device = "cpu"
              ) -> tuple[DynMIXConfig, TemporalJEPA, ImplicitEncoder, dict[str, Any]]:
    """(config, JEPA, target encoder, checkpoint) of RUN/forecast/jepa.pt, both modules in eval mode."""
    if not rd.jepa_path.exists():
        raise DynMIXError(f"run {rd.name} has no JEPA ({rd.jepa_path}): train it with "
                          f"`dynmix train --stage jepa --run {rd.name}`")
    ckpt = load_checkpoint(rd.jepa_path, device)
    cfg = config_from_dict(ckpt["config"])
    model, target = build_jepa(cfg, vt)
    model.load_state_dict(ckpt["model"])
    target.load_state_dict(ckpt["ema"])
    return cfg, model.to(device).eval(), target.to(device).eval(), ckpt


def build_world(cfg: WorldConfig, rep_dim: int, market_dim: int) -> WorldModel:
    return WorldModel(cfg, rep_dim, market_dim)


def load_world(rd: RunDir, device: str | torch.device = "cpu", path: Path | None = None
               ) -> tuple[WorldModel, dict[str, Any]]:
    """(world model in eval mode, its checkpoint's stamp and meta) of RUN/forecast/world.pt (or `path`, e.g. the
    stacking model), trained to the end.
    """
    again = f"`dynmix train --stage world --run {rd.name}`"
    path = path or rd.world_path
    if not path.exists():
        raise DynMIXError(f"run {rd.name} has no world model ({path}): train it with {again}")
    try:
        ckpt = load_checkpoint(path, device)
        cfg = config_from_dict(ckpt["config"]).world
        meta = dict(ckpt["meta"])
        world = build_world(cfg, int(meta["rep_dim"]), int(meta["market_dim"])).to(device)
        world.load_state_dict(ckpt["model"])
    except Exception as e:  # a torn, foreign or outdated file
        raise DynMIXError(f"world model {path} could not be read ({type(e).__name__}: {e}); train it "
                          f"again with {again}") from e
    if not meta.get("complete"):
        raise DynMIXError(f"the world model of run {rd.name} is unfinished (step {ckpt['step']}): continue it with "
                          f"`dynmix train --stage world --resume {rd.name}`")
    world.eval()
    return world, {**meta, **dict(ckpt["views"]), "step": int(ckpt["step"])}


@dataclass
class WorldRun:
    """A run with its trained world model and the world panel over all dates."""

    rd: RunDir
    cfg: DynMIXConfig
    vt: ViewTensors
    panel: WorldPanel
    world: WorldModel
    train_last: int  # index of the last training date (split.json's train_end)
    meta: dict[str, Any]  # what world.pt records: its stamp, train_origins, train_nll
    notes: list[str]
    stack: WorldModel | None = None  # world_stack.pt: trained on origins up to stack_last only
    stack_last: int = -1

    @property
    def train_end(self) -> dt.date:
        return self.vt.dates[self.train_last]


def load_world_run(ws: Workspace, rd: RunDir) -> WorldRun:
    """The run, its world model and the panel; an error naming the command when world.pt is missing or stale."""
    device = run_device(rd)
    cfg, model, vt = load_run(rd, device, views_dir=ws.views)
    world, meta = load_world(rd, device)
    last = train_last_index(rd, cfg, vt)
    panel = build_panel(model, vt, world.cfg.return_scale, embeddings=rd.embeddings_path)
    expected = {"train_end": vt.dates[last].isoformat(), "dynmix_step": rd.checkpoint_step()}
    stale = [k for k, v in expected.items() if meta.get(k) != v]
    if stale:
        raise DynMIXError(f"the world model of run {rd.name} is stale ({', '.join(stale)} changed since it was "
                          f"trained): train it again with `dynmix train --stage world --run {rd.name}`")
    notes = [f"world model {rd.world_path.name}: {meta.get('train_origins')} training origins, step {meta['step']}"]
    stack, stack_last = None, -1
    if world.cfg.stack_share > 0:
        stack, smeta = load_world(rd, device, rd.world_stack_path)
        stack_last = vt.date_index(dt.date.fromisoformat(smeta["train_end"]))
        if smeta.get("dynmix_step") != expected["dynmix_step"] or not 0 < stack_last < last:
            raise DynMIXError(f"the stacking world model of run {rd.name} is stale: train it again with "
                              f"`dynmix train --stage world --run {rd.name}`")
        notes.append(f"stacking world model {rd.world_stack_path.name}: trained to {smeta['train_end']} "
                     f"({smeta.get('train_origins')} origins); dynmix_har's correction is fitted on its forecasts "
                     "after that date, which are out of sample for it")
    return WorldRun(rd, replace(cfg, world=world.cfg), vt, panel, world, last, meta, notes, stack, stack_last)
