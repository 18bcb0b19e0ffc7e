from __future__ import annotations

import numpy as np
import pytest
import torch

from dynmix.losses import SIGReg, sigreg
from dynmix.losses.sigreg import random_directions


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def gauss() -> torch.Tensor:
    return torch.randn(2048, 32, generator=_gen(1))


def test_small_for_gaussian_large_for_collapsed_shifted_scaled(gauss: torch.Tensor) -> None:
    base = sigreg(gauss, num_slices=128, generator=_gen()).item()
    assert 0 <= base < 3.0
    bad = {
        "collapsed": 0.01 * gauss,
        "rank-one": gauss[:, :1].expand(-1, 32).contiguous(),
        "shifted": gauss + 1.0,
        "scaled": 2.0 * gauss,
    }
    for name, z in bad.items():
        value = sigreg(z, num_slices=128, generator=_gen()).item()
        assert value > 50 * base, (name, value, base)


def test_matches_the_integral_over_the_whole_line() -> None:
    # Independent check of the formula: N * int_{-t_max}^{t_max} |ecf(t) - exp(-t^2/2)|^2 exp(-t^2/2) dt,
    # integrated finely with numpy on the same random directions; averaged over the slices.
    z = 0.8 * torch.randn(300, 5, generator=_gen(2), dtype=torch.float64) + 0.1
    a = random_directions(5, 7, _gen(9)).double()
    x = (z @ a).numpy()  # (B, M)
    t = np.linspace(-3.0, 3.0, 2001)
    ecf = np.exp(1j * x[:, :, None] * t).mean(axis=0)  # (M, P)
    integrand = np.abs(ecf - np.exp(-(t**2) / 2)) ** 2 * np.exp(-(t**2) / 2)
    expect = (300 * np.trapezoid(integrand, t, axis=1)).mean()
    got = sigreg(z, num_slices=7, num_points=1001, generator=_gen(9)).item()
    assert got == pytest.approx(expect, rel=1e-5)


def test_gradient_flows_and_a_step_reduces_it() -> None:
    z = (2.0 * torch.randn(512, 16, generator=_gen(3))).requires_grad_(True)
    loss = sigreg(z, num_slices=64, generator=_gen())
    loss.backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    with torch.no_grad():
        z2 = z - 0.5 * z.grad / z.grad.norm() * z.norm()
    assert sigreg(z2, num_slices=64, generator=_gen()).item() < loss.item()


def test_deterministic_given_the_generator_seed(gauss: torch.Tensor) -> None:
    z = 1.3 * gauss[:256]
    a = sigreg(z, num_slices=32, generator=_gen(5))
    b = sigreg(z, num_slices=32, generator=_gen(5))
    c = sigreg(z, num_slices=32, generator=_gen(6))
    assert a.item() == b.item()
    assert a.item() != c.item()


def test_module_draws_from_its_step_and_saves_it() -> None:
    z = 1.5 * torch.randn(128, 8, generator=_gen(4))
    mod = SIGReg(num_slices=16, seed=100)
    first = mod(z)
    second = mod(z)
    assert int(mod.step) == 2 and first.item() != second.item()
    assert first.item() == sigreg(z, num_slices=16, generator=_gen(100)).item()
    assert mod(z, step=1).item() == second.item() and int(mod.step) == 2
    resumed = SIGReg(num_slices=16, seed=100)
    resumed.load_state_dict(mod.state_dict())
    assert resumed(z).item() == mod(z).item()


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError, match="2-D"):
        sigreg(torch.randn(8))
    with pytest.raises(ValueError, match="num_points"):
        sigreg(torch.randn(8, 2), num_points=1)
