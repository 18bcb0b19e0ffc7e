"""The temporal JEPA modules: shapes, horizon conditioning, layer-normed targets without gradient, the error."""

from __future__ import annotations

import pytest
import torch

from dynmix.config import ModelConfig
from dynmix.models.encoders import ImplicitEncoder
from dynmix.models.jepa import HorizonPredictor, TemporalJEPA, encode_targets, prediction_error

B, L, C, H = 8, 20, 2, 5


def make_jepa(cfg: ModelConfig, horizon: int = H) -> TemporalJEPA:
    torch.manual_seed(0)
    enc = ImplicitEncoder(C, L, cfg.implicit_width, cfg.implicit_layers, cfg.dim)
    return TemporalJEPA(enc, cfg.dim, horizon, hidden=32, horizon_dim=4)


def test_forward_shapes(cfg: ModelConfig, batch: dict[str, torch.Tensor]) -> None:
    out = make_jepa(cfg)(batch["implicit"])
    assert out["context"].shape == (B, cfg.dim)
    assert out["pred"].shape == (B, H, cfg.dim)
    assert make_jepa(cfg).horizon == H


def test_predictions_depend_on_the_horizon(cfg: ModelConfig, batch: dict[str, torch.Tensor]) -> None:
    pred = make_jepa(cfg)(batch["implicit"])["pred"]  # (B, H, D)
    assert not torch.allclose(pred[:, 0], pred[:, 1])


def test_predictor_rejects_a_wrong_shape() -> None:
    p = HorizonPredictor(dim=8, horizon=3, hidden=16)
    with pytest.raises(ValueError, match=r"\(B, D=8\)"):
        p(torch.zeros(4, 7))
    with pytest.raises(ValueError):
        p(torch.zeros(4, 3, 8))


def test_targets_are_layer_normed_and_carry_no_gradient(cfg: ModelConfig) -> None:
    enc = make_jepa(cfg).encoder
    windows = torch.randn(B, H, L, C, generator=torch.Generator().manual_seed(1))
    z = encode_targets(enc, windows)
    assert z.shape == (B, H, cfg.dim)
    assert not z.requires_grad
    torch.testing.assert_close(z.mean(dim=-1), torch.zeros(B, H), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.var(dim=-1, unbiased=False), torch.ones(B, H), atol=1e-3, rtol=0)
    # each target is the encoding of its own window: horizon 2 of sample 3 alone gives the same vector
    alone = encode_targets(enc, windows[3:4, 2:3])
    torch.testing.assert_close(alone[0, 0], z[3, 2], atol=1e-5, rtol=1e-5)


def test_prediction_error_kinds() -> None:
    pred, target = torch.tensor([0.0, 0.5, 3.0]), torch.zeros(3)
    torch.testing.assert_close(prediction_error(pred, target, "mse"), torch.tensor([0.0, 0.25, 9.0]))
    torch.testing.assert_close(prediction_error(pred, target, "smooth_l1"), torch.tensor([0.0, 0.125, 2.5]))
    with pytest.raises(ValueError, match="unknown JEPA loss"):
        prediction_error(pred, target, "l3")
    with pytest.raises(ValueError, match="differ in shape"):
        prediction_error(pred, torch.zeros(4))
