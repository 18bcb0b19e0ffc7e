from __future__ import annotations

import pytest
import torch

from dynmix.config import ModelConfig
from dynmix.losses import SIGReg, vicreg_loss
from dynmix.models import DynMIX

B, F, L, C = 8, 10, 20, 2  # as in conftest.py


def _model(cfg: ModelConfig, seed: int = 0) -> DynMIX:
    torch.manual_seed(seed)
    return DynMIX(cfg, n_features=F, n_channels=C, window=L)


def test_shapes_and_fused(cfg: ModelConfig, batch: dict[str, torch.Tensor]) -> None:
    out = _model(cfg)(batch)
    assert set(out) == {"explicit", "implicit", "fused", "z_explicit", "z_implicit"}
    for key in ("explicit", "implicit", "fused"):
        assert out[key].shape == (B, cfg.dim)
    assert out["z_explicit"].shape == out["z_implicit"].shape == (B, cfg.projector_dim)
    torch.testing.assert_close(out["fused"], (out["explicit"] + out["implicit"]) / 2)


def test_embed_and_project_compose_forward(cfg: ModelConfig, batch: dict[str, torch.Tensor]) -> None:
    model = _model(cfg).eval()
    reps = model.embed(batch)
    z_e, z_i = model.project(reps)
    out = model(batch)
    torch.testing.assert_close(out["z_explicit"], z_e)
    torch.testing.assert_close(out["z_implicit"], z_i)


def test_gradients_reach_both_encoders_and_projectors(cfg: ModelConfig, batch: dict[str, torch.Tensor]) -> None:
    model = _model(cfg)
    out = model(batch)
    loss, _ = vicreg_loss(out["z_explicit"], out["z_implicit"])
    loss.backward()
    for name in ("f_e", "f_i", "g_e", "g_i"):
        grads = [p.grad for p in getattr(model, name).parameters()]
        assert all(g is not None for g in grads), name
        assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0, name


def test_seeded_determinism(cfg: ModelConfig, batch: dict[str, torch.Tensor]) -> None:
    a, b, c = _model(cfg, 0)(batch), _model(cfg, 0)(batch), _model(cfg, 1)(batch)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a["fused"], c["fused"])


def test_batch_of_one_in_eval_mode(cfg: ModelConfig, batch: dict[str, torch.Tensor]) -> None:
    model = _model(cfg).eval()
    one = {k: v[:1] for k, v in batch.items()}
    out = model(one)
    assert out["fused"].shape == (1, cfg.dim) and out["z_implicit"].shape == (1, cfg.projector_dim)
    torch.testing.assert_close(out["fused"], model(batch)["fused"][:1])


def test_bad_batches_raise(cfg: ModelConfig, batch: dict[str, torch.Tensor]) -> None:
    model = _model(cfg)
    with pytest.raises(KeyError, match="implicit"):
        model({"explicit": batch["explicit"]})
    with pytest.raises(ValueError, match="differ in size"):
        model({"explicit": batch["explicit"][:3], "implicit": batch["implicit"]})
    with pytest.raises(ValueError, match="L=20"):
        model({"explicit": batch["explicit"], "implicit": batch["implicit"][:, :10]})


@pytest.mark.parametrize(
    "device",
    ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))],
)
def test_bf16_autocast_step_keeps_losses_in_float32(
    device: str, cfg: ModelConfig, batch: dict[str, torch.Tensor]
) -> None:
    model = _model(cfg).to(device)
    moved = {k: v.to(device) for k, v in batch.items()}
    with torch.autocast(device_type=device, dtype=torch.bfloat16):
        out = model(moved)
        loss, parts = vicreg_loss(out["z_explicit"], out["z_implicit"], gamma=torch.tensor(1.2, device=device))
        reg = SIGReg(num_slices=16)(out["fused"])
    assert loss.dtype == torch.float32 and reg.dtype == torch.float32
    assert torch.isfinite(loss) and torch.isfinite(reg)
    (loss + reg).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
