"""Small seeded model and batch for the model tests."""

from __future__ import annotations

import pytest
import torch

from dynmix.config import ModelConfig

B, F, L, C = 8, 10, 20, 2


@pytest.fixture
def cfg() -> ModelConfig:
    return ModelConfig(dim=16, explicit_hidden=32, implicit_width=12, implicit_layers=3, projector_dim=24,
                       projector_hidden=32, dropout=0.0)


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"explicit": torch.randn(B, F, generator=g), "implicit": torch.randn(B, L, C, generator=g)}
