"""Dimensional collapse of embeddings: per-dimension spread and effective rank (docs/DESIGN.md §11).

Shapes: S embedding rows (company-days), D dimensions.
"""

from __future__ import annotations

import numpy as np


def effective_rank(x: np.ndarray) -> float:
    """exp(entropy) of the L1-normalised singular values of the centred (S, D) matrix (Roy & Vetterli 2007).

    Ranges from 1 (all variance on one direction) to D (isotropic); 0 for a constant matrix.
    """
    x = np.asarray(x, dtype=np.float64)
    centred = x - x.mean(axis=0, keepdims=True)  # (S, D)
    gram = centred.T @ centred  # (D, D): same singular values, cheap for S >> D
    s = np.sqrt(np.clip(np.linalg.eigvalsh(gram), 0.0, None))
    total = s.sum()
    if total <= 1e-12 * max(1.0, float(np.abs(x).max(initial=0.0))):
        return 0.0
    p = s[s > 0] / total
    return float(np.exp(-(p * np.log(p)).sum()))


def collapse_metrics(x: np.ndarray) -> dict[str, float]:
    """{min_std, mean_std, effective_rank} of an (S, D) embedding matrix (std over rows, per dimension)."""
    assert x.ndim == 2 and x.shape[0] >= 2, f"need an (S, D) matrix with S >= 2 rows, got {x.shape}"
    std = np.asarray(x, dtype=np.float64).std(axis=0, ddof=1)  # (D,)
    return {"min_std": float(std.min()), "mean_std": float(std.mean()), "effective_rank": effective_rank(x)}
