"""The world model trained by the engine on a run: world.pt in the checkpoint format, reuse, exact resume."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from dynmix.config import DynMIXConfig, WorldConfig
from dynmix.errors import DynMIXError
from dynmix.io import read_jsonl
from dynmix.runs.checkpoint import load_checkpoint
from dynmix.runs.models import load_world, load_world_run
from dynmix.runs.rundir import RunDir
from dynmix.train.world import fit_world
from dynmix.views.tensors import ViewTensors
from dynmix.workspace import Workspace

TRAIN_END = 150


def world_cfg(tiny_cfg: Callable[..., DynMIXConfig], **world: object) -> DynMIXConfig:
    base: dict[str, object] = {"latent": 8, "market_latent": 4, "hidden": 16, "loadings": 2, "rollout": 3,
                               "epochs": 2, "dates_per_batch": 16, "log_every": 1, "checkpoint_every": 0}
    return replace(tiny_cfg(), world=WorldConfig(**(base | world)))  # type: ignore[arg-type]


def test_world_training_writes_a_checkpoint_metrics_and_is_reused(
        views_home: Workspace, views: ViewTensors, tiny_cfg: Callable[..., DynMIXConfig],
        seeded_run: Callable[..., Path]) -> None:
    rd = RunDir(seeded_run(views_home, views, world_cfg(tiny_cfg), TRAIN_END))
    with pytest.raises(DynMIXError, match="train --stage world"):
        load_world(rd)
    assert fit_world(views_home, rd, progress=False) == rd.world_path
    lines = read_jsonl(rd.world_metrics_path)
    ckpt = load_checkpoint(rd.world_path)
    assert [r["step"] for r in lines] == list(range(1, ckpt["step"] + 1)) and "nll_h1" in lines[0]
    assert ckpt["meta"]["complete"] and ckpt["views"]["train_end"] == views.dates[TRAIN_END].isoformat()
    world, meta = load_world(rd)
    assert world.cfg.loadings == 2 and meta["train_nll"] > 0 and not world.training
    wr = load_world_run(views_home, rd)
    assert wr.train_last == TRAIN_END and wr.panel.reps.shape[:2] == (len(views.dates), len(views.tickers))
    # the stacking model: the same model on the first 70 % of the training origins only
    stack = load_checkpoint(rd.world_stack_path)
    assert stack["meta"]["complete"] and wr.stack is not None
    assert stack["views"]["train_end"] == views.dates[wr.stack_last].isoformat()
    assert 0.6 * TRAIN_END < wr.stack_last < 0.8 * TRAIN_END
    assert stack["meta"]["train_origins"] < ckpt["meta"]["train_origins"]
    mtimes = [p.stat().st_mtime_ns for p in (rd.world_path, rd.world_stack_path)]
    assert fit_world(views_home, rd, progress=False) == rd.world_path
    assert [p.stat().st_mtime_ns for p in (rd.world_path, rd.world_stack_path)] == mtimes


def test_interrupted_and_resumed_world_training_ends_with_the_same_weights(
        views_home: Workspace, views: ViewTensors, tiny_cfg: Callable[..., DynMIXConfig],
        seeded_run: Callable[..., Path]) -> None:
    cfg = world_cfg(tiny_cfg, epochs=3)
    whole = RunDir(seeded_run(views_home, views, cfg, TRAIN_END, "20260101-000000-whole"))
    parts = RunDir(seeded_run(views_home, views, cfg, TRAIN_END, "20260101-000000-parts"))
    fit_world(views_home, whole, progress=False)
    fit_world(views_home, parts, progress=False, max_steps=13)  # stops mid-epoch with a checkpoint
    assert load_checkpoint(parts.world_path)["step"] == 13 and not load_checkpoint(parts.world_path)["meta"]["complete"]
    with pytest.raises(DynMIXError, match="train --stage world"):
        load_world_run(views_home, parts)  # unfinished: not used for forecasts
    fit_world(views_home, parts, progress=False, resume=True)
    a, b = read_jsonl(whole.world_metrics_path), read_jsonl(parts.world_metrics_path)
    assert [(r["step"], r["loss"]) for r in a] == [(r["step"], r["loss"]) for r in b]
    for path in ("world_path", "world_stack_path"):  # the stacking model starts after world.pt, also complete
        wa, wb = load_checkpoint(getattr(whole, path)), load_checkpoint(getattr(parts, path))
        for k in wa["model"]:
            torch.testing.assert_close(wa["model"][k], wb["model"][k], rtol=0, atol=0)
        assert wa["meta"]["train_nll"] == wb["meta"]["train_nll"]
