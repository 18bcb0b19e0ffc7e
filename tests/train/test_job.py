from __future__ import annotations

import json
from collections.abc import Callable

import polars as pl
import pytest
import torch

from dynmix.config import DynMIXConfig, load_config
from dynmix.errors import DynMIXError
from dynmix.io import read_jsonl
from dynmix.runs.checkpoint import load_checkpoint
from dynmix.runs.embeddings import read_embeddings
from dynmix.runs.models import load_run
from dynmix.train import train
from dynmix.views.tensors import ViewTensors
from dynmix.workspace import Workspace

LOSS_KEYS = ("loss", "invariance", "variance", "covariance", "gamma", "lr", "explicit_std_min", "explicit_erank",
             "implicit_std_min", "implicit_std_mean", "implicit_erank")


def test_a_run_folder_holds_everything(views_home: Workspace, views: ViewTensors,
                                       tiny_cfg: Callable[..., DynMIXConfig]) -> None:
    cfg = tiny_cfg(epochs=1)
    run = train(views_home, cfg, run_name="Tiny Run!", progress=False)
    assert run.parent == views_home.runs and run.name.endswith("-tiny-run")
    assert {p.name for p in run.iterdir()} == {"config.toml", "checkpoint.pt", "metrics.jsonl", "gamma.parquet",
                                               "views.json", "split.json", "embeddings"}
    assert load_config(run / "config.toml") == cfg
    split = json.loads((run / "split.json").read_text())
    assert split["n_train_dates"] > 0 and split["n_test_dates"] > 0 and split["train_end"] < split["test_start"]
    gamma = pl.read_parquet(run / "gamma.parquet")
    assert gamma.columns == ["date", "gamma", "market_vol", "dispersion", "train"]
    assert gamma.height == len(views.dates) and gamma["train"].sum() == views.dates.index(
        pl.Series([split["train_end"]]).str.to_date().item()) + 1
    rows = read_jsonl(run / "metrics.jsonl")
    assert rows and rows[-1]["epoch_end"] and all(k in rows[-1] for k in LOSS_KEYS)
    emb = read_embeddings(run / "embeddings")
    assert emb.height == 3 * int(views.valid().sum())
    assert emb["date"].max() > pl.Series([split["train_end"]]).str.to_date().item()  # test dates too
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert ckpt["step"] == rows[-1]["step"] and ckpt["config"] == cfg.to_dict()
    cfg2, model, vt = load_run(run)
    assert cfg2 == cfg and not model.training and vt.tickers == views.tickers


def test_an_interrupted_run_resumes_exactly(views_home: Workspace, tiny_cfg: Callable[..., DynMIXConfig]) -> None:
    cfg = tiny_cfg(epochs=2, checkpoint_every=4)
    full = train(views_home, cfg, run_name="full", progress=False)
    part = train(views_home, cfg, run_name="part", progress=False, max_steps=7)  # stops mid-epoch 0
    assert not (part / "embeddings").exists()
    assert read_jsonl(part / "metrics.jsonl")[-1]["step"] == 7
    resumed = train(views_home, tiny_cfg(device="cpu"), resume=part.name, progress=False)
    assert resumed == part
    a, b = read_jsonl(full / "metrics.jsonl"), read_jsonl(part / "metrics.jsonl")
    assert [r["step"] for r in a] == [r["step"] for r in b] == list(range(1, len(a) + 1))
    for ra, rb in zip(a, b, strict=True):
        for k in LOSS_KEYS:
            assert rb[k] == pytest.approx(ra[k], rel=1e-6, abs=1e-7), (ra["step"], k)
    ca, cb = load_checkpoint(full / "checkpoint.pt"), load_checkpoint(part / "checkpoint.pt")
    for k, v in ca["model"].items():
        torch.testing.assert_close(cb["model"][k], v, rtol=1e-6, atol=1e-7)
    for k, v in ca["ema"].items():
        torch.testing.assert_close(cb["ema"][k], v, rtol=1e-6, atol=1e-7)
    ea, eb = read_embeddings(full / "embeddings"), read_embeddings(part / "embeddings")
    assert ea.select("date", "ticker", "view").equals(eb.select("date", "ticker", "view"))


def test_clean_errors(home: Workspace, views_home: Workspace, tiny_cfg: Callable[..., DynMIXConfig]) -> None:
    cfg = tiny_cfg()
    cfg.loss.variance_target = "vix"
    with pytest.raises(DynMIXError, match="unknown variance target 'vix'"):
        train(views_home, cfg, progress=False)
    with pytest.raises(DynMIXError, match="no run 'nope'"):
        train(views_home, tiny_cfg(), resume="nope", progress=False)
    empty = Workspace(home.home.parent / "empty")
    with pytest.raises(DynMIXError, match="dynmix views build"):
        train(empty, tiny_cfg(), progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_bf16_run_loads_back_on_cpu(views_home: Workspace, views: ViewTensors,
                                         tiny_cfg: Callable[..., DynMIXConfig]) -> None:
    run = train(views_home, tiny_cfg(device="cuda", amp=True), progress=False)
    rows = read_jsonl(run / "metrics.jsonl")
    assert all(r["loss"] == r["loss"] and r["loss"] < 1e3 for r in rows)  # finite under bf16 autocast
    assert sum(r["loss"] for r in rows[-3:]) < sum(r["loss"] for r in rows[:3])
    _, model, vt = load_run(run, "cpu")
    assert next(model.parameters()).device.type == "cpu"
    assert read_embeddings(run / "embeddings").height == 3 * int(views.valid().sum())
