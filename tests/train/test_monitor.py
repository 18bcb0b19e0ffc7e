from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from dynmix.io import read_jsonl
from dynmix.train.monitor import collapse_message, effective_rank, rep_stats
from dynmix.train.pair import pair_collapse
from dynmix.train.recorder import Recorder


def test_effective_rank_of_known_spectra() -> None:
    g = torch.Generator().manual_seed(0)
    iso = torch.randn(4000, 8, generator=g)
    assert 7.8 < effective_rank(iso) <= 8.0
    rank1 = torch.randn(500, 1, generator=g) * torch.randn(1, 8, generator=g)
    assert effective_rank(rank1) == pytest.approx(1.0, abs=1e-3)
    two = torch.cat([torch.randn(500, 2, generator=g), torch.zeros(500, 6)], dim=1)
    assert 1.9 < effective_rank(two) <= 2.0
    assert effective_rank(torch.ones(10, 4)) == 0.0


def test_rep_stats_and_collapse_message() -> None:
    g = torch.Generator().manual_seed(1)
    healthy = rep_stats(torch.randn(256, 8, generator=g), "explicit") | rep_stats(
        torch.randn(256, 8, generator=g) * 2, "implicit")
    assert healthy["implicit_std_mean"] == pytest.approx(2.0, rel=0.15)
    assert healthy["explicit_std_min"] > 0.8
    assert collapse_message(healthy, gamma=1.0) is None
    flat = rep_stats(torch.randn(256, 1, generator=g).expand(256, 8) + 0.0, "implicit")
    msg = collapse_message(healthy | flat, gamma=1.0)
    assert msg is not None and "implicit" in msg and "explicit" not in msg
    tiny = rep_stats(torch.randn(256, 8, generator=g) * 1e-5, "explicit")
    assert "explicit" in (collapse_message(healthy | tiny, gamma=1.0) or "")


def test_recorder_writes_lines_and_warns_once_per_epoch(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder(tmp_path / "metrics.jsonl", progress=False, collapse=pair_collapse)
    collapsed = {"explicit_std_min": 0.0, "explicit_erank": 1.0, "implicit_std_min": 0.5, "implicit_erank": 5.0}
    with caplog.at_level(logging.WARNING, logger="dynmix.train"):
        for step in (1, 2, 3):
            rec.log({"step": step, "epoch": 0 if step < 3 else 1, "loss": 1.0, "gamma": 1.0, **collapsed})
    warnings = [r for r in caplog.records if "collapsing" in r.getMessage()]
    assert len(warnings) == 2
    assert [r["step"] for r in read_jsonl(tmp_path / "metrics.jsonl")] == [1, 2, 3]
    rec.truncate(2)
    assert [r["step"] for r in read_jsonl(tmp_path / "metrics.jsonl")] == [1, 2]
    off = Recorder(tmp_path / "other.jsonl", enabled=False)
    off.log({"step": 1, "epoch": 0, "loss": 1.0, "gamma": 1.0})
    assert not (tmp_path / "other.jsonl").exists()
