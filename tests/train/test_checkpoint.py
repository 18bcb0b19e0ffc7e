from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from dynmix.config import DynMIXConfig, TrainConfig
from dynmix.errors import DynMIXError
from dynmix.runs.checkpoint import KEYS, load_checkpoint, save_checkpoint, set_rng_state
from dynmix.train.ema import EMA
from dynmix.train.schedule import make_optimizer


def _save(path: Path, step: int = 3) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    opt, sched = make_optimizer(model, TrainConfig(), total_steps=10)
    model(torch.randn(5, 4)).sum().backward()
    opt.step()
    sched.step()
    save_checkpoint(path, step=step, epoch=1, model=model, ema=EMA(model, total_steps=10), optimizer=opt,
                    scheduler=sched, config=DynMIXConfig().to_dict(), views={"feature_names": ["a"], "window": 5})
    return model


def test_round_trip_with_weights_only(tmp_path: Path) -> None:
    model = _save(tmp_path / "checkpoint.pt")
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert set(KEYS) <= set(ckpt)
    assert ckpt["step"] == 3 and ckpt["epoch"] == 1
    assert ckpt["config"]["train"]["ema_momentum"] == [0.996, 1.0]
    for k, v in model.state_dict().items():
        assert torch.equal(ckpt["model"][k], v)
    assert ckpt["optimizer"]["state"], "AdamW moments are saved"
    assert ckpt["views"]["feature_names"] == ["a"]


def test_rng_state_restores_the_random_stream(tmp_path: Path) -> None:
    _save(tmp_path / "c.pt")
    expected = torch.rand(5)  # the draws right after saving
    torch.manual_seed(123)
    set_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])
    assert torch.equal(torch.rand(5), expected)


def test_failed_save_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _save(tmp_path / "checkpoint.pt", step=3)

    def broken(obj: object, f: object) -> None:
        Path(str(f)).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError):
        _save(tmp_path / "checkpoint.pt", step=4)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_missing_or_corrupt_checkpoint_is_a_clean_error(tmp_path: Path) -> None:
    with pytest.raises(DynMIXError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DynMIXError, match="could not be read"):
        load_checkpoint(tmp_path / "bad.pt")
    torch.save({"step": 1}, tmp_path / "partial.pt")
    with pytest.raises(DynMIXError, match="lacks"):
        load_checkpoint(tmp_path / "partial.pt")
