from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn

from dynmix.config import TrainConfig
from dynmix.train.schedule import WarmupCosine, make_optimizer


def test_warmup_rises_linearly_then_cosine_decays_to_zero() -> None:
    f = WarmupCosine(total=100, warmup=10)
    warm = [f(s) for s in range(10)]
    assert warm == pytest.approx([(s + 1) / 11 for s in range(10)])
    assert f(10) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.5)
    assert f(100) == pytest.approx(0.0, abs=1e-12)
    decay = [f(s) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(decay, decay[1:], strict=False))
    assert f(60) == pytest.approx(0.5 * (1 + math.cos(math.pi * 50 / 90)))


def test_no_warmup_starts_at_peak() -> None:
    assert WarmupCosine(total=10, warmup=0)(0) == pytest.approx(1.0)
    with pytest.raises(AssertionError):
        WarmupCosine(total=10, warmup=11)


def test_weight_decay_only_on_matrices_and_schedule_resumes_from_state() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    cfg = TrainConfig(lr=0.1, weight_decay=0.01, warmup_frac=0.2)
    opt, sched = make_optimizer(model, cfg, total_steps=20)
    decays = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    for p in model.parameters():
        assert decays[id(p)] == (0.01 if p.ndim >= 2 else 0.0)
    lrs = []
    for _ in range(20):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
        if len(lrs) == 7:
            buf = io.BytesIO()
            torch.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, buf)
    assert max(lrs) == pytest.approx(0.1)
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)
    # a fresh optimiser and schedule loaded from step 7 continue on the same curve
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    opt2, sched2 = make_optimizer(model, cfg, total_steps=20)
    opt2.load_state_dict(state["opt"])
    sched2.load_state_dict(state["sched"])
    rest = []
    for _ in range(13):
        opt2.step()
        sched2.step()
        rest.append(opt2.param_groups[0]["lr"])
    assert rest == pytest.approx(lrs[7:])
