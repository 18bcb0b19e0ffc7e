"""Barlow Twins, InfoNCE and BYOL against their published formulas, written out loop by loop (and against lightly's
implementation where lightly is installed; it is not a dependency of DynMIX: its NegativeCosineSimilarity for BYOL.
Its Barlow Twins loss standardises with the unbiased std, and its NT-Xent adds same-view negatives, so those two
are pinned to the papers' formulas only).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dynmix.losses.barlow import BarlowTwinsLoss, barlow_twins_loss
from dynmix.losses.byol import byol_loss
from dynmix.losses.infonce import InfoNCELoss, info_nce_loss


def _pair(b: int = 12, k: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z_a = torch.randn(b, k, generator=g, dtype=torch.float64)
    return z_a, z_a + 0.5 * torch.randn(b, k, generator=g, dtype=torch.float64)


def reference_barlow(z_a: np.ndarray, z_b: np.ndarray, lambd: float) -> float:
    """Barlow Twins, Zbontar et al. 2021 eq. 1-2 (https://arxiv.org/abs/2103.03230): C_ij = sum_b za_bi zb_bj / B
    of batch-standardised z (BatchNorm without affine, biased std), L = sum_i (1 - C_ii)^2 + lambda
    sum_{i != j} C_ij^2.
    """
    b, k = z_a.shape
    a = (z_a - z_a.mean(0)) / np.sqrt(z_a.var(0) + 1e-5)  # BatchNorm1d(affine=False), eps 1e-5
    c = (z_b - z_b.mean(0)) / np.sqrt(z_b.var(0) + 1e-5)
    loss = 0.0
    for i in range(k):
        for j in range(k):
            cij = sum(a[n, i] * c[n, j] for n in range(b)) / b
            loss += (1 - cij) ** 2 if i == j else lambd * cij**2
    return loss


def reference_infonce(z_a: np.ndarray, z_b: np.ndarray, tau: float) -> float:
    """Symmetric InfoNCE (CLIP, Radford et al. 2021, fig. 3): -log softmax of the positive over the other view, both
    directions averaged.
    """
    a = z_a / np.linalg.norm(z_a, axis=1, keepdims=True)
    c = z_b / np.linalg.norm(z_b, axis=1, keepdims=True)
    b = len(a)
    one_way = [0.0, 0.0]
    for n in range(b):
        row = [a[n] @ c[m] / tau for m in range(b)]
        col = [a[m] @ c[n] / tau for m in range(b)]
        one_way[0] += -row[n] + math.log(sum(math.exp(x) for x in row))
        one_way[1] += -col[n] + math.log(sum(math.exp(x) for x in col))
    return (one_way[0] + one_way[1]) / (2 * b)


def reference_byol(p: np.ndarray, z: np.ndarray) -> float:
    """BYOL, Grill et al. 2020 eq. 2 (https://arxiv.org/abs/2006.07733): ||p/|p| - z/|z|||^2 = 2 - 2 cos(p, z)."""
    pn = p / np.linalg.norm(p, axis=1, keepdims=True)
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    return float(np.mean(np.sum((pn - zn) ** 2, axis=1)))


@pytest.mark.parametrize(("b", "k", "lambd"), [(12, 6, 5e-3), (3, 4, 0.1), (40, 8, 1.0)])
def test_barlow_matches_the_paper(b: int, k: int, lambd: float) -> None:
    z_a, z_b = _pair(b, k, seed=b)
    loss, parts = barlow_twins_loss(z_a, z_b, lambd=lambd)
    assert loss.item() == pytest.approx(reference_barlow(z_a.numpy(), z_b.numpy(), lambd), rel=1e-10)
    assert (parts["on_diagonal"] + lambd * parts["off_diagonal"]).item() == pytest.approx(loss.item())


def test_barlow_is_zero_for_identical_decorrelated_views() -> None:
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    loss, _ = BarlowTwinsLoss()(z, z)
    assert abs(loss.item()) < 1e-4  # C = identity up to BatchNorm's eps
    assert barlow_twins_loss(z, z.flip(1))[0].item() > 1.0  # swapped dimensions: off-diagonal 1s


@pytest.mark.parametrize(("b", "tau"), [(8, 0.1), (5, 1.0), (16, 0.5)])
def test_infonce_matches_the_formula_and_is_symmetric(b: int, tau: float) -> None:
    z_a, z_b = _pair(b, 6, seed=b)
    loss, parts = info_nce_loss(z_a, z_b, temperature=tau)
    assert loss.item() == pytest.approx(reference_infonce(z_a.numpy(), z_b.numpy(), tau), rel=1e-9)
    assert InfoNCELoss(tau)(z_b, z_a)[0].item() == pytest.approx(loss.item(), rel=1e-12)
    assert 0.0 <= parts["top1"].item() <= 1.0


def test_infonce_checks_its_inputs() -> None:
    z_a, z_b = _pair()
    with pytest.raises(ValueError, match="temperature"):
        info_nce_loss(z_a, z_b, temperature=0.0)
    with pytest.raises(ValueError, match="same shape"):
        info_nce_loss(z_a, z_b[:, :3])
    with pytest.raises(ValueError, match="at least 2"):
        info_nce_loss(z_a[:1], z_b[:1])


def test_byol_matches_the_paper_and_stops_the_target_gradient() -> None:
    p_a, p_b = _pair(10, 5, seed=1)
    t_a, t_b = _pair(10, 5, seed=2)
    p_a.requires_grad_(True)
    t_b.requires_grad_(True)
    loss, _ = byol_loss(p_a, p_b, t_a, t_b)
    expect = (reference_byol(p_a.detach().numpy(), t_b.detach().numpy())
              + reference_byol(p_b.numpy(), t_a.numpy())) / 2
    assert loss.item() == pytest.approx(expect, rel=1e-12)
    loss.backward()
    assert p_a.grad is not None and p_a.grad.abs().sum() > 0
    assert t_b.grad is None  # the target is never differentiated


def test_against_lightly_where_installed() -> None:
    lightly_loss = pytest.importorskip("lightly.loss")
    z_a, z_b = _pair(16, 8, seed=3)
    neg_cos = lightly_loss.NegativeCosineSimilarity()
    ours_byol, _ = byol_loss(z_a, z_b, z_b, z_a)
    assert ours_byol.item() == pytest.approx(2 + (neg_cos(z_a, z_a) + neg_cos(z_b, z_b)).item(), rel=1e-9)
