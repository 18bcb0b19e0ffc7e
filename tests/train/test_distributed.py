"""Two CPU processes (torchrun, gloo) train exactly like one process on the same global batches."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from dynmix.config import DynMIXConfig, save_config
from dynmix.io import read_jsonl
from dynmix.runs.checkpoint import load_checkpoint
from dynmix.train import train
from dynmix.workspace import Workspace


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
def test_two_gloo_processes_match_one(views_home: Workspace, tiny_cfg: Callable[..., DynMIXConfig],
                                      tmp_path: Path) -> None:
    cfg = tiny_cfg(epochs=1, checkpoint_every=1000)
    save_config(cfg, tmp_path / "tiny.toml")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DYNMIX_HOME": str(views_home.home)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "dynmix", "train", "--config", str(tmp_path / "tiny.toml"), "--device", "cpu",
           "--run-name", "ddp", "--no-progress"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    single = train(views_home, cfg, run_name="single", progress=False)
    runs = {p.name.split("-", 2)[-1]: p for p in views_home.list_runs()}
    assert set(runs) == {"ddp", "single"}, "one run folder: only rank 0 writes"
    a, b = read_jsonl(single / "metrics.jsonl"), read_jsonl(runs["ddp"] / "metrics.jsonl")
    assert [r["step"] for r in a] == [r["step"] for r in b] and len(a) >= 5
    for ra, rb in zip(a, b, strict=True):
        for k in ("loss", "invariance", "variance", "covariance", "gamma", "grad_norm"):
            assert rb[k] == pytest.approx(ra[k], rel=1e-5, abs=1e-6), (ra["step"], k, ra[k], rb[k])
    ca, cb = load_checkpoint(single / "checkpoint.pt"), load_checkpoint(runs["ddp"] / "checkpoint.pt")
    # Same weights after every step: DDP's averaging of the gathered loss's gradients is right. Biases feeding a
    # BatchNorm (the encoders' last biases, the projector's first) have an exactly-zero gradient, so Adam moves them
    # by float noise alone: they are left out.
    for k, v in ca["model"].items():
        if v.ndim >= 2:
            torch.testing.assert_close(cb["model"][k], v, rtol=1e-4, atol=1e-5, msg=k)
