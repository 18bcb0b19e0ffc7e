from __future__ import annotations

import numpy as np

from dynmix.evaluation.probes import probe_set, sector_metrics


def _planted(per: int = 6, n_sectors: int = 3, dim: int = 8, noise: float = 0.05, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (n_sectors, dim))
    labels = [f"S{i}" for i in range(n_sectors) for _ in range(per)]
    x = np.repeat(centres, per, axis=0) + rng.normal(0, noise, (n_sectors * per, dim))
    return x, labels


def test_planted_clusters_are_recovered() -> None:
    x, labels = _planted()
    m = sector_metrics(x, labels, knn_k=5, seed=0)
    assert m is not None
    assert m["knn_accuracy"] == 1.0
    assert m["logreg_accuracy"] == 1.0
    assert m["macro_f1"] == 1.0
    assert m["ari"] == 1.0
    assert m["nmi"] == 1.0


def test_random_vectors_score_low() -> None:
    rng = np.random.default_rng(1)
    labels = [f"S{i % 4}" for i in range(40)]
    m = sector_metrics(rng.normal(size=(40, 8)), labels, knn_k=5, seed=0)
    assert m is not None
    assert m["knn_accuracy"] < 0.5  # chance is 0.25
    assert m["logreg_accuracy"] < 0.5
    assert abs(m["ari"]) < 0.15


def test_single_company_sector_is_left_out_and_named() -> None:
    x, labels = _planted(per=4)
    ps = probe_set([*labels, "Lonely"])
    assert ps.single == ["Lonely"]
    assert ps.keep.tolist() == [True] * len(labels) + [False]
    x_far = np.vstack([x, 100 * np.ones((1, x.shape[1]))])
    m = sector_metrics(x_far, [*labels, "Lonely"], knn_k=5)
    assert m is not None and m["knn_accuracy"] == 1.0  # the lonely company would otherwise be an error


def test_fewer_than_two_usable_sectors_gives_none() -> None:
    x, _ = _planted(per=3, n_sectors=1)
    labels = ["A", "A", "A"]
    ps = probe_set([*labels, "B"])
    assert not ps.usable and ps.note is not None
    assert sector_metrics(np.vstack([x, x[:1]]), [*labels, "B"]) is None


def test_k_larger_than_companies_is_clipped() -> None:
    x, labels = _planted(per=2, n_sectors=2)
    m = sector_metrics(x, labels, knn_k=50)
    assert m is not None and 0.0 <= m["knn_accuracy"] <= 1.0
