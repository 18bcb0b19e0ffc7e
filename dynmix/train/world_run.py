"""A run with its world model: load the trained DynMIX run, build the world panel, and train RUN/forecast/world.pt
when it is missing (or stale, or `retrain`), else reuse it. Shared by `dynmix forecast` and `dynmix plan`.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from dynmix.config import DynMIXConfig, load_config
from dynmix.errors import DynMIXError
from dynmix.models.world import WorldModel
from dynmix.train.checkpoint import load_checkpoint
from dynmix.train.dist import resolve_device
from dynmix.train.runs import load_run, views_signature
from dynmix.train.split import time_split
from dynmix.train.world_data import WorldPanel, build_panel
from dynmix.train.world_trainer import WorldTrainer, load_world, mean_nll, origin_dates, save_world
from dynmix.views.tensors import ViewTensors
from dynmix.workspace import Workspace

WORLD_FILE = Path("forecast") / "world.pt"


@dataclass
class WorldRun:
    run_dir: Path
    cfg: DynMIXConfig
    vt: ViewTensors
    panel: WorldPanel
    world: WorldModel
    train_last: int  # index of the last training date (split.json's train_end)
    meta: dict  # what world.pt records: train_end, dynmix_step, views, epochs, history, nll
    notes: list[str]

    @property
    def train_end(self) -> dt.date:
        return self.vt.dates[self.train_last]


def train_last_index(run_dir: Path, cfg: DynMIXConfig, vt: ViewTensors) -> int:
    """The index of the run's last training date: split.json's train_end, else the config's split recomputed."""
    path = run_dir / "split.json"
    if path.exists():
        try:
            return vt.date_index(json.loads(path.read_text(encoding="utf-8"))["train_end"])
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise DynMIXError(f"{path}: expected a JSON object with train_end (YYYY-MM-DD)") from e
    return vt.date_index(time_split(vt, cfg.train).train_end)


def fit_world(panel: WorldPanel, cfg: DynMIXConfig, train_last: int, progress: bool = True
              ) -> tuple[WorldModel, dict]:
    """A fresh world model trained on origins whose targets all lie on or before `train_last`."""
    torch.manual_seed(cfg.world.seed)
    world = WorldModel(cfg.world, panel.rep_dim, panel.market_dim).to(panel.reps.device)
    dates = origin_dates(panel, 0, train_last, cfg.world.rollout)
    history = WorldTrainer(world, panel, cfg.world, dates).fit(progress)
    return world, {"epochs": cfg.world.epochs, "history": history, "train_origins": int(dates.numel()),
                   "train_nll": mean_nll(world, panel, origin_dates(panel, 0, train_last, 1))}


def prepare_world(ws: Workspace, run_dir: str | Path, *, epochs: int | None = None, retrain: bool = False,
                  progress: bool = True) -> WorldRun:
    """Load the run and its world model, training the latter when absent, stale or `retrain`."""
    run_dir = Path(run_dir)
    device = resolve_device(load_config(run_dir / "config.toml").train.device)
    cfg, model, vt = load_run(run_dir, device, views_dir=ws.views)
    if epochs is not None:
        cfg = replace(cfg, world=replace(cfg.world, epochs=epochs))
    panel = build_panel(model, vt, cfg.world.return_scale, embeddings=run_dir / "embeddings.parquet")
    last = train_last_index(run_dir, cfg, vt)
    stamp = {"train_end": vt.dates[last].isoformat(), "views": views_signature(vt),
             "dynmix_step": int(load_checkpoint(run_dir / "checkpoint.pt", "cpu")["step"]),
             "return_scale": cfg.world.return_scale}
    path = run_dir / WORLD_FILE
    notes: list[str] = []
    if path.exists() and not retrain:
        world, meta = load_world(path, device)
        stale = [k for k, v in stamp.items() if meta.get(k) != v]
        if not stale:
            notes.append(f"world model reused from {path} ({meta.get('epochs')} epochs); --retrain to train it again")
            return WorldRun(run_dir, replace(cfg, world=world.cfg), vt, panel, world, last, meta, notes)
        notes.append(f"world model retrained: {', '.join(stale)} changed since {path.name} was trained")
    world, meta = fit_world(panel, cfg, last, progress)
    meta = {**meta, **stamp}
    save_world(path, world, meta)
    notes.append(f"world model trained for {cfg.world.epochs} epochs on {meta['train_origins']} training dates")
    return WorldRun(run_dir, cfg, vt, panel, world, last, meta, notes)
