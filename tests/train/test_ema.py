from __future__ import annotations

import pytest
import torch
from torch import nn

from dynmix.train.ema import EMA


def _model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))


def test_momentum_is_linear_in_the_step() -> None:
    ema = EMA(_model(0), (0.9, 1.0), total_steps=10)
    assert ema.momentum(0) == pytest.approx(0.9)
    assert ema.momentum(5) == pytest.approx(0.95)
    assert ema.momentum(10) == pytest.approx(1.0)
    assert ema.momentum(50) == pytest.approx(1.0)


def test_update_is_the_moving_average_and_the_copy_is_frozen() -> None:
    model = _model(0)
    ema = EMA(model, (0.8, 0.8), total_steps=10)
    before = [p.clone() for p in ema.module.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model.train()(torch.randn(8, 4))  # moves the BatchNorm running statistics
    ema.update(model, step=3)
    for b, p_ema, p in zip(before, ema.module.parameters(), model.parameters(), strict=True):
        assert torch.allclose(p_ema, 0.8 * b + 0.2 * p)
        assert not p_ema.requires_grad
    assert torch.equal(ema.module[1].running_mean, model[1].running_mean)
    assert not ema.module.training


def test_resumed_ema_continues_exactly() -> None:
    def drift(model: nn.Module, step: int) -> None:
        g = torch.Generator().manual_seed(step)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=g) * 0.1)

    model = _model(1)
    full = EMA(model, (0.5, 1.0), total_steps=10)
    for s in range(10):
        drift(model, s)
        full.update(model, s)

    model = _model(1)
    first = EMA(model, (0.5, 1.0), total_steps=10)
    for s in range(4):
        drift(model, s)
        first.update(model, s)
    state = {k: v.clone() for k, v in first.state_dict().items()}
    resumed = EMA(model, (0.5, 1.0), total_steps=10)
    resumed.load_state_dict(state)
    for s in range(4, 10):
        drift(model, s)
        resumed.update(model, s)
    for a, b in zip(full.module.parameters(), resumed.module.parameters(), strict=True):
        assert torch.equal(a, b)
