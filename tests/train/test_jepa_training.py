"""Temporal-JEPA training: future-only targets, the EMA target encoder, learning without collapse, exact resume."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from dynmix.config import DynMIXConfig, JEPAConfig
from dynmix.io import read_jsonl
from dynmix.models.jepa import encode_targets
from dynmix.runs.checkpoint import load_checkpoint
from dynmix.runs.device import DistContext
from dynmix.runs.models import build_jepa
from dynmix.runs.rundir import RunDir
from dynmix.runs.threads import single_thread
from dynmix.train.ema import EMA
from dynmix.train.jepa import fit_jepa
from dynmix.train.jepa_objective import JEPALoss, JEPAObjective, future_windows, jepa_valid
from dynmix.train.loop import Engine
from dynmix.train.schedule import make_optimizer
from dynmix.views.tensors import ViewTensors
from dynmix.workspace import Workspace

H = 5
TRAIN_END = 150  # index of the last training date of the fake run


@pytest.fixture(autouse=True)
def one_thread():  # type: ignore[no-untyped-def]
    with single_thread():  # tiny tensors on a shared 2-core machine (dynmix.runs.threads)
        yield


def jepa_cfg(tiny_cfg: Callable[..., DynMIXConfig], **jepa: object) -> DynMIXConfig:
    base: dict[str, object] = {"horizon": H, "predictor_hidden": 16, "horizon_dim": 4, "sigreg_slices": 32,
                               "epochs": 3, "dates_per_batch": 16, "date_stride": 1, "lr": 3e-3, "log_every": 1,
                               "checkpoint_every": 0}
    j = JEPAConfig(**(base | jepa))  # type: ignore[arg-type]
    return replace(tiny_cfg(), jepa=j)


def test_valid_samples_have_every_target_window(views: ViewTensors) -> None:
    ok, iv = jepa_valid(views, H), views.implicit_valid()
    ii, tt = torch.nonzero(ok, as_tuple=True)
    assert ii.numel() > 0 and int(tt.max()) <= len(views.dates) - 1 - H
    for h in range(H + 1):
        assert bool(iv[ii, tt + h].all())
    assert not bool(ok[0, :50].any())  # listed late: no window yet


def test_targets_use_only_windows_up_to_t_plus_h(views: ViewTensors, tiny_cfg: Callable[..., DynMIXConfig]) -> None:
    _, target_enc = build_jepa(jepa_cfg(tiny_cfg), views)
    i, t = torch.tensor([1, 2, 3]), torch.tensor([100, 100, 120])
    before = encode_targets(target_enc, future_windows(views, i, t, H))  # (3, H, D)
    after = views.returns.clone()
    after[:, 126:] += torch.randn_like(after[:, 126:]) * 5  # every day after the last t + H = 125
    perturbed = replace(views, returns=after)
    torch.testing.assert_close(encode_targets(target_enc, future_windows(perturbed, i, t, H)), before)
    after[:, 125] += 5.0  # day t + H of the last sample does enter its horizon-H target
    moved = encode_targets(target_enc, future_windows(replace(views, returns=after), i, t, H))
    assert not torch.allclose(moved[2, H - 1], before[2, H - 1])
    torch.testing.assert_close(moved[:2], before[:2])


def test_target_encoder_gets_no_gradient_and_follows_the_ema_schedule(
        views: ViewTensors, tiny_cfg: Callable[..., DynMIXConfig]) -> None:
    cfg = jepa_cfg(tiny_cfg)
    model, _ = build_jepa(cfg, views)
    total = 20
    ema = EMA(model.encoder, (0.9, 1.0), total)
    opt, sched = make_optimizer(model, cfg.train, total)
    objective = JEPAObjective(model, ema, cfg.jepa, views, DistContext(0, 1, views.device))
    engine = Engine(objective, [], opt, sched, ema=ema)  # type: ignore[arg-type]
    i, t = torch.nonzero(jepa_valid(views, H)[:, 60:70], as_tuple=True)
    for k in range(3):
        old = [p.clone() for p in ema.module.parameters()]
        out = engine.train_step((i, t + 60))
        assert out["ema_momentum"] == pytest.approx(0.9 + 0.1 * k / total)
        assert all(p.grad is None and not p.requires_grad for p in ema.module.parameters())
        m = ema.momentum(k)
        for p_old, p_ema, p in zip(old, ema.module.parameters(), model.encoder.parameters(), strict=True):
            torch.testing.assert_close(p_ema, m * p_old + (1 - m) * p.detach())
    assert engine.step == 3


def test_training_lowers_the_loss_without_collapse(views_home: Workspace, views: ViewTensors,
                                                   tiny_cfg: Callable[..., DynMIXConfig],
                                                   seeded_run: Callable[..., Path]) -> None:
    run_dir = seeded_run(views_home, views, jepa_cfg(tiny_cfg, epochs=4), TRAIN_END)
    path = fit_jepa(views_home, run_dir, progress=False)
    assert path == RunDir(run_dir).jepa_path
    lines = read_jsonl(RunDir(run_dir).jepa_metrics_path)
    assert [r["step"] for r in lines] == list(range(1, len(lines) + 1))
    first, last = lines[:3], lines[-3:]
    assert sum(r["pred_loss"] for r in last) < 0.8 * sum(r["pred_loss"] for r in first)
    assert sum(r["reg"] for r in last) < sum(r["reg"] for r in first)
    assert min(r["context_std_min"] for r in last) >= min(r["context_std_min"] for r in first) > 0.1  # no collapse
    assert last[-1]["ema_momentum"] > lines[0]["ema_momentum"]
    ckpt = load_checkpoint(path)
    assert ckpt["step"] == len(lines) and ckpt["views"]["train_end"] == views.dates[TRAIN_END].isoformat()
    mtime = path.stat().st_mtime_ns
    assert fit_jepa(views_home, run_dir, progress=False) == path and path.stat().st_mtime_ns == mtime  # reused


def test_interrupted_and_resumed_training_logs_the_same_losses(
        views_home: Workspace, views: ViewTensors, tiny_cfg: Callable[..., DynMIXConfig],
        seeded_run: Callable[..., Path]) -> None:
    cfg = jepa_cfg(tiny_cfg, epochs=2)
    whole = seeded_run(views_home, views, cfg, TRAIN_END, "20260101-000000-whole")
    parts = seeded_run(views_home, views, cfg, TRAIN_END, "20260101-000000-parts")
    fit_jepa(views_home, whole, progress=False)
    fit_jepa(views_home, parts, progress=False, max_steps=11)  # stops mid-epoch 1 with a checkpoint
    assert load_checkpoint(RunDir(parts).jepa_path)["step"] == 11
    fit_jepa(views_home, parts, progress=False, resume=True)
    a, b = read_jsonl(RunDir(whole).jepa_metrics_path), read_jsonl(RunDir(parts).jepa_metrics_path)
    assert len(a) == len(b) > 11
    for x, y in zip(a, b, strict=True):
        assert (x["step"], x["loss"], x["pred_loss"], x["reg"]) == (y["step"], y["loss"], y["pred_loss"], y["reg"])
    wa, wb = load_checkpoint(RunDir(whole).jepa_path), load_checkpoint(RunDir(parts).jepa_path)
    for key in ("model", "ema"):
        for k in wa[key]:
            torch.testing.assert_close(wa[key][k], wb[key][k], rtol=0, atol=0)


def test_vicreg_regulariser_and_mse_loss_train_too(views_home: Workspace, views: ViewTensors,
                                                   tiny_cfg: Callable[..., DynMIXConfig],
                                                   seeded_run: Callable[..., Path]) -> None:
    run_dir = seeded_run(views_home, views, jepa_cfg(tiny_cfg, epochs=1, reg="vicreg", loss="mse"), TRAIN_END)
    fit_jepa(views_home, run_dir, progress=False)
    lines = read_jsonl(RunDir(run_dir).jepa_metrics_path)
    assert lines and all(torch.isfinite(torch.tensor(r["loss"])) for r in lines)
    with pytest.raises(ValueError, match="unknown JEPA regulariser"):
        JEPALoss(JEPAConfig(reg="none"))


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
def test_two_gloo_processes_train_the_jepa_like_one(views_home: Workspace, views: ViewTensors,
                                                     tiny_cfg: Callable[..., DynMIXConfig], tmp_path: Path,
        seeded_run: Callable[..., Path]) -> None:
    cfg = jepa_cfg(tiny_cfg, epochs=1)
    single = seeded_run(views_home, views, cfg, TRAIN_END, "20260101-000000-one")
    ddp = seeded_run(views_home, views, cfg, TRAIN_END, "20260101-000000-ddp")
    script = tmp_path / "fit.py"
    script.write_text("import sys\nfrom dynmix.train.jepa import fit_jepa\nfrom dynmix.workspace import Workspace\n"
                      "fit_jepa(Workspace.at(sys.argv[1]), sys.argv[2], progress=False)\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
           str(views_home.home), str(ddp)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    fit_jepa(views_home, single, progress=False)
    a, b = read_jsonl(RunDir(single).jepa_metrics_path), read_jsonl(RunDir(ddp).jepa_metrics_path)
    assert [r["step"] for r in a] == [r["step"] for r in b] and len(a) >= 5
    for ra, rb in zip(a, b, strict=True):
        for k in ("loss", "pred_loss", "reg", "ema_momentum"):
            assert rb[k] == pytest.approx(ra[k], rel=1e-4, abs=1e-6), (ra["step"], k)
