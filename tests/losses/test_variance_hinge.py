"""When the variance target γ can change training at all (the static vs market-vol finding in the README).

The hinge relu(γ - std) has gradient -1 on every dimension whose std is below γ, whatever γ is: if all projected
dimensions sit below both targets, a static and a dynamic γ give the same gradients (only the loss value moves).
The target only acts on dimensions whose spread lies between the two targets.
"""

from __future__ import annotations

import torch

from dynmix.losses import vicreg_loss


def _grads(z_a: torch.Tensor, z_b: torch.Tensor, gamma: float) -> tuple[torch.Tensor, float]:
    a = z_a.clone().requires_grad_(True)
    loss, _ = vicreg_loss(a, z_b, gamma=gamma)
    loss.backward()
    assert a.grad is not None
    return a.grad, float(loss.detach())


def test_gamma_does_not_change_gradients_when_every_std_is_below_both_targets() -> None:
    g = torch.Generator().manual_seed(0)
    z_a = 0.3 * torch.randn(256, 16, generator=g, dtype=torch.float64)  # std ~0.3 < 0.5 <= any gamma used
    z_b = 0.3 * torch.randn(256, 16, generator=g, dtype=torch.float64)
    grad_static, loss_static = _grads(z_a, z_b, 1.0)
    grad_dynamic, loss_dynamic = _grads(z_a, z_b, 1.6)
    torch.testing.assert_close(grad_static, grad_dynamic, rtol=0, atol=1e-12)
    assert loss_dynamic > loss_static  # the logged loss differs, the update does not


def test_gamma_changes_gradients_when_the_spread_lies_between_the_targets() -> None:
    g = torch.Generator().manual_seed(0)
    z_a = 1.2 * torch.randn(256, 16, generator=g, dtype=torch.float64)  # std ~1.2: above 1.0, below 1.6
    z_b = 1.2 * torch.randn(256, 16, generator=g, dtype=torch.float64)
    grad_static, _ = _grads(z_a, z_b, 1.0)
    grad_dynamic, _ = _grads(z_a, z_b, 1.6)
    assert (grad_static - grad_dynamic).abs().max() > 1e-3
