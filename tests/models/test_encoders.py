from __future__ import annotations

import pytest
import torch

from dynmix.models import ExplicitEncoder, ImplicitEncoder, Projector

B, F, L, C, D, K = 6, 10, 30, 2, 16, 24


def test_shapes() -> None:
    torch.manual_seed(0)
    assert ExplicitEncoder(F, 32, D)(torch.randn(B, F)).shape == (B, D)
    assert ImplicitEncoder(C, L, 12, 3, D)(torch.randn(B, L, C)).shape == (B, D)
    assert Projector(D, 32, K)(torch.randn(B, D)).shape == (B, K)
    assert Projector(D, 32, K).net[-1].bias is None


@pytest.mark.parametrize(
    ("module", "x", "msg"),
    [
        (lambda: ExplicitEncoder(F, 32, D), torch.randn(B, F + 1), r"\(B, F=10\)"),
        (lambda: ExplicitEncoder(F, 32, D), torch.randn(B, 2, F), r"\(B, F=10\)"),
        (lambda: ImplicitEncoder(C, L, 12, 3, D), torch.randn(B, L - 1, C), r"\(B, L=30, C=2\)"),
        (lambda: ImplicitEncoder(C, L, 12, 3, D), torch.randn(B, C, L), r"\(B, L=30, C=2\)"),
        (lambda: Projector(D, 32, K), torch.randn(B, D + 2), r"\(B, D=16\)"),
    ],
)
def test_shape_errors_name_the_expected_shape(module, x, msg) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=msg):
        module()(x)


def test_implicit_encoder_is_sensitive_to_every_day_and_causal_inside() -> None:
    torch.manual_seed(0)
    enc = ImplicitEncoder(C, L, 12, 3, D).eval()
    x = torch.randn(1, L, C)
    base = enc(x)
    for day in range(L):  # pooled over the window: every day, the oldest included, moves the output
        x2 = x.clone()
        x2[0, day] += 1.0
        assert (enc(x2) - base).abs().max() > 1e-4, day
    # Causal inside: the per-day states before a change do not move.
    h = enc.inp(x.transpose(1, 2))
    x3 = x.clone()
    x3[0, 20] += 5.0
    h3 = enc.inp(x3.transpose(1, 2))
    for block in enc.blocks:
        h, h3 = block(h), block(h3)
    torch.testing.assert_close(h[..., :20], h3[..., :20])
    assert (h[..., 20:] - h3[..., 20:]).abs().max() > 1e-3


def test_dropout_only_in_training() -> None:
    torch.manual_seed(0)
    enc = ExplicitEncoder(F, 32, D, dropout=0.5)
    x = torch.randn(B, F)
    enc.eval()
    torch.testing.assert_close(enc(x), enc(x))
    enc.train()
    assert not torch.equal(enc(x), enc(x))
