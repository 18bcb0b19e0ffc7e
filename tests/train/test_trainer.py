from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from dynmix.config import DynMIXConfig
from dynmix.io import read_jsonl
from dynmix.losses.variance_target import VarianceTarget
from dynmix.models.dynmix import DynMIX
from dynmix.runs.device import DistContext
from dynmix.runs.split import time_split
from dynmix.train.ema import EMA
from dynmix.train.loop import Engine
from dynmix.train.pair import VICRegObjective
from dynmix.train.recorder import Recorder
from dynmix.train.schedule import make_optimizer
from dynmix.views.tensors import DateBlockSampler, ViewTensors


def make_trainer(vt: ViewTensors, cfg: DynMIXConfig, recorder: Recorder | None = None) -> Engine:
    split = time_split(vt, cfg.train)
    sampler = DateBlockSampler(vt.valid(), split.train_mask, cfg.train.dates_per_batch, seed=cfg.train.seed)
    torch.manual_seed(cfg.train.seed)
    model = DynMIX(cfg.model, len(vt.feature_names), len(vt.channels), vt.window)
    total = cfg.train.epochs * len(sampler)
    opt, sched = make_optimizer(model, cfg.train, total)
    target = VarianceTarget.from_config(cfg.loss, vt.market_vol, vt.dispersion, split.train_mask)
    objective = VICRegObjective(model, cfg.loss, vt, target, DistContext(0, 1, vt.device))
    return Engine(objective, sampler, opt, sched, ema=EMA(model, cfg.train.ema_momentum, total), recorder=recorder)


def test_step_returns_detached_scalars(views: ViewTensors, tiny_cfg: Callable[..., DynMIXConfig]) -> None:
    tr = make_trainer(views, tiny_cfg())
    i, t = next(tr.sampler.epoch(0))
    before = [p.clone() for p in tr.ema.module.parameters()]  # type: ignore[union-attr]
    out = tr.train_step((i, t), stats=True)
    assert tr.step == 1
    for key in ("loss", "invariance", "variance", "covariance", "gamma"):
        assert out[key].ndim == 0 and not out[key].requires_grad, key
    assert float(out["gamma"]) == float(tr.objective.variance_target(t))  # type: ignore[attr-defined]
    assert float(out["grad_norm"]) > 0
    assert {"explicit_std_min", "explicit_std_mean", "explicit_erank", "implicit_std_min", "implicit_std_mean",
            "implicit_erank"} <= set(out)
    assert any(not torch.equal(a, b) for a, b in zip(before, tr.ema.module.parameters(), strict=True))  # type: ignore[union-attr]
    assert "implicit_erank" not in tr.train_step((i, t))


def test_training_is_deterministic_on_cpu(views: ViewTensors, tiny_cfg: Callable[..., DynMIXConfig]) -> None:
    runs = []
    for _ in range(2):
        tr = make_trainer(views, tiny_cfg())
        runs.append([float(tr.train_step((i, t))["loss"]) for i, t in tr.sampler.epoch(0)])
    assert runs[0] == runs[1]
    other = make_trainer(views, tiny_cfg(seed=5))
    assert [float(other.train_step((i, t))["loss"]) for i, t in other.sampler.epoch(0)] != runs[0]


def test_fit_logs_checkpoints_and_the_loss_falls(views: ViewTensors, tiny_cfg: Callable[..., DynMIXConfig],
                                                 tmp_path: Path) -> None:
    cfg = tiny_cfg(epochs=4, log_every=3)
    cfg.loss.variance_target = "static"  # gamma fixed, so losses of different batches compare
    tr = make_trainer(views, cfg, Recorder(tmp_path / "metrics.jsonl", progress=False))
    saved: list[tuple[int, int]] = []
    spe = tr.steps_per_epoch
    assert tr.fit(cfg.train.epochs, log_every=3, checkpoint_every=4, save=lambda s, e: saved.append((s, e)))
    assert tr.step == 4 * spe
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    steps = [r["step"] for r in rows]
    expected = sorted({s for s in range(1, 4 * spe + 1) if s % 3 == 0 or s % spe == 0})
    assert steps == expected
    assert [r["step"] for r in rows if r["epoch_end"]] == [spe, 2 * spe, 3 * spe, 4 * spe]
    assert all(r["samples_per_s"] > 0 and r["lr"] >= 0 for r in rows)
    assert saved[-1] == (4 * spe, 3) and all(s % 4 == 0 for s, _ in saved[:-1])
    first = sum(r["loss"] for r in rows if r["epoch"] == 0) / sum(r["epoch"] == 0 for r in rows)
    last = sum(r["loss"] for r in rows if r["epoch"] == 3) / sum(r["epoch"] == 3 for r in rows)
    assert last < 0.97 * first, (first, last)  # tiny model, 36 steps: about -6 % on this panel


def test_fit_stops_at_max_steps_and_a_fresh_trainer_continues(views: ViewTensors,
                                                              tiny_cfg: Callable[..., DynMIXConfig]) -> None:
    cfg = tiny_cfg()
    tr = make_trainer(views, cfg)
    saved: list[int] = []
    assert not tr.fit(cfg.train.epochs, max_steps=5, save=lambda s, e: saved.append(s))
    assert tr.step == 5 and saved == [5]
    assert tr.fit(cfg.train.epochs, save=lambda s, e: saved.append(s))
    assert tr.step == cfg.train.epochs * tr.steps_per_epoch and saved[-1] == tr.step
