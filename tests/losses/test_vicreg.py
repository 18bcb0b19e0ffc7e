from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dynmix.config import LossConfig
from dynmix.losses import VICRegLoss, vicreg_loss
from dynmix.losses.vicreg import covariance_loss, invariance_loss, variance_loss


def _off_diagonal(x: torch.Tensor) -> torch.Tensor:
    # Verbatim from facebookresearch/vicreg main_vicreg.py.
    n, m = x.shape
    assert n == m
    return x.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def reference_vicreg(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The official VICReg forward (https://github.com/facebookresearch/vicreg/blob/main/main_vicreg.py),
    with the tensor's own batch size in place of `args.batch_size`, default coefficients 25/25/1.
    """
    batch_size, num_features = x.shape
    repr_loss = F.mse_loss(x, y)
    x = x - x.mean(dim=0)
    y = y - y.mean(dim=0)
    std_x = torch.sqrt(x.var(dim=0) + 0.0001)
    std_y = torch.sqrt(y.var(dim=0) + 0.0001)
    std_loss = torch.mean(F.relu(1 - std_x)) / 2 + torch.mean(F.relu(1 - std_y)) / 2
    cov_x = (x.T @ x) / (batch_size - 1)
    cov_y = (y.T @ y) / (batch_size - 1)
    cov_loss = _off_diagonal(cov_x).pow_(2).sum().div(num_features) + _off_diagonal(cov_y).pow_(2).sum().div(
        num_features
    )
    return 25.0 * repr_loss + 25.0 * std_loss + 1.0 * cov_loss


def _pair(b: int = 32, k: int = 16, seed: int = 0, scale: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z_a = scale * torch.randn(b, k, generator=g, dtype=torch.float64)
    z_b = z_a + 0.3 * torch.randn(b, k, generator=g, dtype=torch.float64)
    return z_a, z_b


@pytest.mark.parametrize(("b", "k", "scale"), [(32, 16, 0.5), (7, 5, 2.0), (2, 3, 0.1), (100, 64, 1.0)])
def test_matches_official_formula_at_gamma_one(b: int, k: int, scale: float) -> None:
    z_a, z_b = _pair(b, k, seed=b + k, scale=scale)
    loss, _ = vicreg_loss(z_a, z_b)
    torch.testing.assert_close(loss, reference_vicreg(z_a, z_b), rtol=1e-12, atol=1e-12)
    loss_t, _ = vicreg_loss(z_a, z_b, gamma=torch.tensor(1.0))
    torch.testing.assert_close(loss_t, loss, rtol=0, atol=0)


def test_parts_compose_the_loss_and_are_detached() -> None:
    z_a, z_b = _pair()
    z_a.requires_grad_(True)
    loss, parts = vicreg_loss(z_a, z_b, gamma=1.3, sim_coeff=2.0, std_coeff=3.0, cov_coeff=0.5)
    assert set(parts) == {"invariance", "variance", "covariance"}
    assert all(not p.requires_grad for p in parts.values())
    expect = 2.0 * parts["invariance"] + 3.0 * parts["variance"] + 0.5 * parts["covariance"]
    torch.testing.assert_close(loss.detach(), expect)
    assert loss.requires_grad


def test_symmetric_in_the_two_branches() -> None:
    z_a, z_b = _pair(seed=3)
    la, pa = vicreg_loss(z_a, z_b, gamma=1.7)
    lb, pb = vicreg_loss(z_b, z_a, gamma=1.7)
    torch.testing.assert_close(la, lb)
    for key in pa:
        torch.testing.assert_close(pa[key], pb[key])


def test_batch_of_one_raises() -> None:
    z = torch.randn(1, 8)
    with pytest.raises(ValueError, match="at least 2"):
        vicreg_loss(z, z)
    with pytest.raises(ValueError, match="at least 2"):
        variance_loss(z)


@pytest.mark.parametrize(("sa", "sb"), [((8, 4), (8, 5)), ((8, 4), (9, 4)), ((8, 4, 1), (8, 4, 1)), ((8,), (8,))])
def test_bad_shapes_raise(sa: tuple[int, ...], sb: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="shape"):
        vicreg_loss(torch.randn(*sa), torch.randn(*sb))


def test_variance_term_zero_when_std_reaches_gamma() -> None:
    g = torch.Generator().manual_seed(1)
    z = torch.randn(256, 8, generator=g, dtype=torch.float64)
    z = (z - z.mean(0)) / z.std(0) * 2.0  # per-dim std exactly 2
    assert variance_loss(z, gamma=1.0).item() == 0.0
    assert variance_loss(z, gamma=1.99).item() == 0.0
    assert variance_loss(z, gamma=2.5).item() == pytest.approx(2.5 - (4.0 + 1e-4) ** 0.5, rel=1e-9)


def test_larger_gamma_gives_larger_variance_term() -> None:
    z_a, z_b = _pair(scale=1.0)
    values = [vicreg_loss(z_a, z_b, gamma=g)[1]["variance"].item() for g in (0.5, 1.0, 1.5, 2.0, 3.0)]
    assert all(b > a for a, b in zip(values, values[1:], strict=False)), values


def test_gamma_tensor_equals_float_and_gets_no_gradient() -> None:
    z_a, z_b = _pair(scale=1.0)
    gamma = torch.tensor(1.6, dtype=torch.float32, requires_grad=True)
    lt, pt = vicreg_loss(z_a, z_b, gamma=gamma)
    lf, pf = vicreg_loss(z_a, z_b, gamma=1.6)
    torch.testing.assert_close(lt, lf, rtol=1e-6, atol=1e-6)
    assert not lt.requires_grad
    with pytest.raises(ValueError, match="0-d"):
        vicreg_loss(z_a, z_b, gamma=torch.ones(2))


def test_components() -> None:
    z_a, z_b = _pair()
    assert invariance_loss(z_a, z_a).item() == 0.0
    torch.testing.assert_close(invariance_loss(z_a, z_b), ((z_a - z_b) ** 2).mean())
    # Independent columns scaled so Cov is diagonal: covariance term vanishes.
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    assert covariance_loss(z).item() == pytest.approx(0.0, abs=1e-15)
    # Two identical columns of variance 4/3: off-diagonal pair contributes 2 * (4/3)^2, divided by K=2.
    z2 = torch.tensor([[1.0, 1.0], [1.0, 1.0], [-1.0, -1.0], [-1.0, -1.0]], dtype=torch.float64)
    assert covariance_loss(z2).item() == pytest.approx((4 / 3) ** 2)


def test_module_uses_config_and_bf16_input_is_computed_in_float32() -> None:
    z_a, z_b = _pair()
    mod = VICRegLoss.from_config(LossConfig(sim_coeff=10.0, std_coeff=5.0, cov_coeff=2.0))
    loss, _ = mod(z_a, z_b, gamma=1.2)
    ref, _ = vicreg_loss(z_a, z_b, gamma=1.2, sim_coeff=10.0, std_coeff=5.0, cov_coeff=2.0)
    torch.testing.assert_close(loss, ref)
    lb, _ = mod(z_a.bfloat16(), z_b.bfloat16())
    assert lb.dtype == torch.float32
