"""Sector recovery from per-company vectors: kNN and logistic probes, KMeans ARI/NMI (docs/DESIGN.md §11).

Shapes: N companies, D features. Every metric is computed on companies whose sector holds at least two
companies (a single company cannot be recovered by leave-one-out); the caller has removed "Unknown" sectors.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, adjusted_rand_score, f1_score, normalized_mutual_info_score
from sklearn.model_selection import BaseCrossValidator, LeaveOneOut, StratifiedKFold, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

LOO_MAX = 300  # above this many companies, leave-one-out gives way to stratified 10-fold (same metrics)


@dataclass
class ProbeSet:
    """The companies the sector probes use, and what was left out."""

    keep: np.ndarray  # (N,) bool: company in a sector with >= 2 companies
    single: list[str] = field(default_factory=list)  # sectors with one company, left out
    usable: bool = False  # at least two sectors with two or more companies

    @property
    def note(self) -> str | None:
        if self.usable:
            return None
        return "sector probes skipped: fewer than 2 sectors with 2 or more companies"


def probe_set(labels: list[str]) -> ProbeSet:
    """Keep companies of sectors with at least two members; the probes need two such sectors."""
    counts = Counter(labels)
    single = sorted(s for s, c in counts.items() if c < 2)
    keep = np.array([counts[s] >= 2 for s in labels], dtype=bool)
    n_sectors = sum(1 for c in counts.values() if c >= 2)
    return ProbeSet(keep=keep, single=single, usable=n_sectors >= 2)


def _cv(y: np.ndarray, seed: int) -> BaseCrossValidator:
    if len(y) <= LOO_MAX:
        return LeaveOneOut()
    n_splits = int(min(10, np.bincount(np.unique(y, return_inverse=True)[1]).min()))
    return StratifiedKFold(n_splits=max(n_splits, 2), shuffle=True, random_state=seed)


def sector_metrics(x: np.ndarray, labels: list[str], *, knn_k: int = 5, seed: int = 0) -> dict[str, float] | None:
    """Sector probes: kNN (cosine) and logistic (standardised) out of sample, KMeans ARI/NMI; None when unusable.

    `x` (N, D) per-company vectors, `labels` (N,) sectors. Probes predict each company from the others
    (leave-one-company-out); `macro_f1` is the logistic probe's. KMeans runs on the L2-normalised vectors
    with as many clusters as sectors.
    """
    assert x.ndim == 2 and x.shape[0] == len(labels), f"x {x.shape} must be (N, D) with N = {len(labels)} labels"
    ps = probe_set(labels)
    if not ps.usable:
        return None
    x = np.nan_to_num(np.asarray(x, dtype=np.float64)[ps.keep])  # (N', D)
    y = np.unique(np.asarray(labels, dtype=object)[ps.keep].astype(str), return_inverse=True)[1]
    with threadpool_limits(limits=1):  # many tiny fits: BLAS threads only add contention
        cv = _cv(y, seed)
        k = max(1, min(knn_k, len(y) - 1))  # a training fold holds at least N' - 1 companies under LOO
        knn = KNeighborsClassifier(n_neighbors=k, metric="cosine")
        y_knn = cross_val_predict(knn, x, y, cv=cv)
        logreg = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
        y_lr = cross_val_predict(logreg, x, y, cv=cv)
        n_clusters = int(y.max()) + 1
        norm = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        clusters = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit_predict(norm)
    return {
        "knn_accuracy": float(accuracy_score(y, y_knn)),
        "logreg_accuracy": float(accuracy_score(y, y_lr)),
        "macro_f1": float(f1_score(y, y_lr, average="macro")),
        "ari": float(adjusted_rand_score(y, clusters)),
        "nmi": float(normalized_mutual_info_score(y, clusters)),
    }
