"""Bounded batches: `[train] max_batch_samples` samples companies within a batch's dates; `--max-steps` smoke runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
import torch
from typer.testing import CliRunner

from dynmix.cli.app import app
from dynmix.config import DynMIXConfig, ModelConfig, TrainConfig, save_config
from dynmix.errors import DynMIXError
from dynmix.losses.variance_target import VarianceTarget
from dynmix.runs import memory
from dynmix.runs.checkpoint import load_checkpoint
from dynmix.runs.embeddings import read_embeddings
from dynmix.runs.split import time_split
from dynmix.train.job import train
from dynmix.views.tensors import DateBlockSampler, ViewTensors
from dynmix.workspace import Workspace

from .conftest import make_views

LOSS_KEYS = ("loss", "invariance", "variance", "covariance")


def read_jsonl(path: Path) -> list[dict[str, float]]:
    return pl.read_ndjson(path).to_dicts()


def test_a_capped_batch_keeps_every_date_and_a_share_of_each(views: ViewTensors) -> None:
    valid = views.valid()
    allowed = torch.ones(len(views.dates), dtype=torch.bool)
    full = DateBlockSampler(valid, allowed, dates_per_batch=8, seed=1)
    capped = DateBlockSampler(valid, allowed, dates_per_batch=8, seed=1, max_samples=40)  # blocks hold ~120
    assert full.largest_block() > 40 and len(full) == len(capped)
    target = VarianceTarget("market-vol", views.market_vol, views.dispersion, allowed)
    seen = torch.zeros_like(valid)
    for (_, t_f), (i_c, t_c) in zip(full.epoch(0), capped.epoch(0), strict=True):
        assert i_c.numel() <= 40
        assert set(t_c.tolist()) == set(t_f.tolist())  # every date of the block stays in the batch
        assert bool(valid[i_c, t_c].all()) and len(set(zip(i_c.tolist(), t_c.tolist(), strict=True))) == i_c.numel()
        per_date_f = torch.bincount(t_f, minlength=valid.shape[1])
        per_date_c = torch.bincount(t_c, minlength=valid.shape[1])
        on = per_date_f > 0
        share = per_date_c[on].float() / per_date_f[on].float()  # the same share of every date, to rounding
        assert float(share.max() - share.min()) <= 1.0 / float(per_date_f[on].min()) + 1e-6
        assert float(target(t_c)) == float(target(t_f))  # gamma sees the block's whole dates
        seen[i_c, t_c] = True
    assert int(seen.sum()) > 0.25 * int(valid.sum())  # a draw, not always the same companies
    again = list(DateBlockSampler(valid, allowed, dates_per_batch=8, seed=1, max_samples=40).epoch(0))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(again, capped.epoch(0),
                                                                                   strict=True))
    other = next(capped.epoch(1))[0]
    assert not torch.equal(other, next(capped.epoch(0))[0])  # another epoch, another draw


def test_a_cap_above_every_block_changes_nothing(views: ViewTensors) -> None:
    valid, allowed = views.valid(), torch.ones(len(views.dates), dtype=torch.bool)
    plain = DateBlockSampler(valid, allowed, dates_per_batch=4, seed=2)
    roomy = DateBlockSampler(valid, allowed, dates_per_batch=4, seed=2, max_samples=plain.largest_block())
    for a, b in zip(plain.epoch(3), roomy.epoch(3), strict=True):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(DynMIXError, match="max_samples = 0"):
        DateBlockSampler(valid, allowed, dates_per_batch=4, max_samples=0)


def test_each_date_keeps_at_least_two_companies() -> None:
    vt = make_views(n=30, t=120)
    valid, allowed = vt.valid(), torch.ones(120, dtype=torch.bool)
    for i, t in DateBlockSampler(valid, allowed, dates_per_batch=10, max_samples=5).epoch(0):
        per_date = torch.bincount(t)[t.unique()]
        assert int(per_date.min()) >= 2 and i.numel() <= max(5, 2 * t.unique().numel())
        if t.unique().numel() >= 3:
            assert int(per_date.max()) == 2  # 5 samples over >= 3 dates: the floor of two each


def test_the_automatic_cap_follows_the_free_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    model, cpu = ModelConfig(), torch.device("cpu")
    per = memory.bytes_per_sample(model, 60)
    assert 250 * 1024 < per < 1024 * 1024  # the default model: above the ~0.3 MiB/sample measured on a CPU
    monkeypatch.setattr(memory, "available_bytes", lambda device: 10 * 2**30)
    cap, how = memory.max_batch_samples(TrainConfig(), model, 60, cpu)
    assert cap == int(memory.AUTO_SHARE * 10 * 2**30) // per and how.startswith("auto")
    assert memory.max_batch_samples(TrainConfig(), model, 60, cpu, world_size=4)[0] == 4 * cap  # per rank
    monkeypatch.setattr(memory, "available_bytes", lambda device: 2**20)
    assert memory.max_batch_samples(TrainConfig(), model, 60, cpu)[0] == memory.MIN_AUTO
    assert memory.max_batch_samples(TrainConfig(max_batch_samples=500), model, 60, cpu) == (500, "set")
    with pytest.raises(DynMIXError, match="max_batch_samples = -3"):
        memory.max_batch_samples(TrainConfig(max_batch_samples=-3), model, 60, cpu)


def test_the_real_free_memory_is_read() -> None:
    free = memory.available_bytes(torch.device("cpu"))
    assert 0 < free < 2**50


def test_a_capped_run_records_its_cap_and_resumes_exactly(views_home: Workspace,
                                                          tiny_cfg: Callable[..., DynMIXConfig]) -> None:
    cfg = tiny_cfg(epochs=1, checkpoint_every=3, max_batch_samples=60)  # blocks of 16 dates hold ~240 samples
    full = train(views_home, cfg, run_name="full", progress=False)
    part = train(views_home, cfg, run_name="part", progress=False, max_steps=4)
    assert load_checkpoint(part / "checkpoint.pt")["meta"]["max_batch_samples"] == 60
    train(views_home, tiny_cfg(device="cpu"), resume=part.name, progress=False)
    a, b = read_jsonl(full / "metrics.jsonl"), read_jsonl(part / "metrics.jsonl")
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for ra, rb in zip(a, b, strict=True):
        assert ra["samples_per_s"] > 0
        for k in LOSS_KEYS:
            assert rb[k] == pytest.approx(ra[k], rel=1e-6, abs=1e-7), (ra["step"], k)


def test_the_run_trains_on_capped_batches(views_home: Workspace, views: ViewTensors,
                                          tiny_cfg: Callable[..., DynMIXConfig],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    real = DateBlockSampler.epoch

    def spy(self: DateBlockSampler, epoch: int):  # type: ignore[no-untyped-def]
        for i, t in real(self, epoch):
            sizes.append(i.numel())
            yield i, t

    monkeypatch.setattr(DateBlockSampler, "epoch", spy)
    monkeypatch.setattr(memory, "available_bytes", lambda device: 0)  # auto: the floor MIN_AUTO
    cfg = tiny_cfg(epochs=1)
    cfg.train.dates_per_batch = 100  # blocks of ~1,500 samples > MIN_AUTO
    run = train(views_home, cfg, progress=False)
    assert sizes and max(sizes) <= memory.MIN_AUTO
    assert load_checkpoint(run / "checkpoint.pt")["meta"]["max_batch_samples"] == memory.MIN_AUTO
    split = time_split(views, cfg.train)
    assert len(sizes) == len(DateBlockSampler(views.valid(), split.train_mask, 100))


def test_train_max_steps_leaves_a_usable_run(views_home: Workspace, views: ViewTensors,
                                             tiny_cfg: Callable[..., DynMIXConfig], tmp_path: Path) -> None:
    save_config(tiny_cfg(epochs=3), tmp_path / "tiny.toml")
    r = CliRunner().invoke(app, ["train", "--config", str(tmp_path / "tiny.toml"), "--max-steps", "2",
                                 "--no-progress"])
    assert r.exit_code == 0, r.output
    run = views_home.list_runs()[0]
    assert read_jsonl(run / "metrics.jsonl")[-1]["step"] == 2
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 2 and "stopped at step 2" in r.output
    assert not (run / "embeddings").exists()  # no export the user did not ask for
    assert f"dynmix embed {run.name}" in " ".join(r.output.split())
    r = CliRunner().invoke(app, ["embed", run.name, "--device", "cpu"])  # the later stages can use the run
    assert r.exit_code == 0, r.output
    assert read_embeddings(run / "embeddings").height == 3 * int(views.valid().sum())
    r = CliRunner().invoke(app, ["train", "--resume", run.name, "--max-steps", "4", "--no-progress"])
    assert r.exit_code == 0, r.output  # 4 steps in all
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 4
    assert [x["step"] for x in read_jsonl(run / "metrics.jsonl")] == [1, 2, 3, 4]
    r = CliRunner().invoke(app, ["train", "--stage", "jepa", "--max-steps", "2"])
    assert r.exit_code == 1 and "drop --max-steps" in r.output
