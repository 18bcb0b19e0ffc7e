"""Collapse diagnostics of a batch of representations: per-dimension std and effective rank (docs/DESIGN.md §11)."""

from __future__ import annotations

import logging

import torch
from torch import Tensor

log = logging.getLogger("dynmix.train")


@torch.no_grad()
def effective_rank(z: Tensor) -> float:
    """exp(entropy) of the normalised singular values of the centred (B, D) matrix (Roy & Vetterli 2007).

    1 for a rank-one batch, D for an isotropic one; 0 for a constant batch.
    """
    assert z.ndim == 2, f"expected (B, D), got {tuple(z.shape)}"
    zc = z.float() - z.float().mean(dim=0, keepdim=True)
    s = torch.linalg.svdvals(zc)  # (min(B, D),)
    total = s.sum()
    if total <= 0:
        return 0.0
    p = s / total
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


@torch.no_grad()
def rep_stats(z: Tensor, prefix: str) -> dict[str, float]:
    """{prefix}_std_min, {prefix}_std_mean (over the D dimensions) and {prefix}_erank of a (B, D) batch."""
    std = z.float().std(dim=0) if z.shape[0] > 1 else torch.zeros(z.shape[1], device=z.device)  # (D,)
    return {
        f"{prefix}_std_min": float(std.min()),
        f"{prefix}_std_mean": float(std.mean()),
        f"{prefix}_erank": effective_rank(z),
    }


def collapse_message(stats: dict[str, float], gamma: float, views: tuple[str, ...] = ("explicit", "implicit")
                     ) -> str | None:
    """A warning text when a view's embeddings collapse (min std < 1e-3 * gamma or effective rank < 2), else None."""
    bad = []
    for v in views:
        std_min, erank = stats[f"{v}_std_min"], stats[f"{v}_erank"]
        if std_min < 1e-3 * gamma or erank < 2.0:
            bad.append(f"{v} (min std {std_min:.2e}, effective rank {erank:.2f})")
    if not bad:
        return None
    return ("embeddings are collapsing: " + "; ".join(bad)
            + ". Try a lower learning rate, a larger std_coeff, or more dates per batch.")
