from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from skfolio.optimization import HierarchicalRiskParity
from sklearn.base import clone

from dynmix.errors import DataError
from dynmix.evaluation.distance import EmbeddingDistance

TICKERS = ["AAA", "BBB", "CCC", "DDD", "EEE"]


def _inputs(seed: int = 0) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    rng = np.random.default_rng(seed)
    emb = {t: rng.normal(size=4) for t in TICKERS}
    returns = pd.DataFrame(rng.normal(0, 0.01, (250, 5)), columns=TICKERS,
                           index=pd.bdate_range("2021-01-01", periods=250))
    return emb, returns


def _angular(a: np.ndarray, b: np.ndarray) -> float:
    cos = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.sqrt(0.5 * (1 - cos)))


def test_distance_is_angular_cosine_in_column_order() -> None:
    emb, returns = _inputs()
    cols = ["CCC", "AAA", "EEE", "BBB", "DDD"]
    d = EmbeddingDistance(emb).fit(returns[cols])
    assert d.distance_.shape == (5, 5) and np.allclose(np.diag(d.distance_), 0.0)
    assert np.allclose(d.distance_, d.distance_.T)
    assert d.distance_[0, 1] == pytest.approx(_angular(emb["CCC"], emb["AAA"]))
    assert d.distance_[2, 4] == pytest.approx(_angular(emb["EEE"], emb["DDD"]))
    assert d.codependence_[0, 1] == pytest.approx(1 - 2 * d.distance_[0, 1] ** 2)


def test_dataframe_embeddings_and_bare_arrays() -> None:
    emb, returns = _inputs()
    frame = pd.DataFrame(emb).T  # tickers x D
    by_frame = EmbeddingDistance(frame).fit(returns)
    by_array = EmbeddingDistance(emb).fit(returns.to_numpy())  # columns assumed in the embeddings' order
    assert np.allclose(by_frame.distance_, by_array.distance_)


def test_hrp_runs_with_embedding_distance_and_clone_works() -> None:
    emb, returns = _inputs()
    # two tight pairs and a loner
    emb = {"AAA": np.array([1.0, 0.0]), "BBB": np.array([0.99, 0.05]), "CCC": np.array([0.0, 1.0]),
           "DDD": np.array([0.05, 0.99]), "EEE": np.array([-1.0, -1.0])}
    model = HierarchicalRiskParity(distance_estimator=EmbeddingDistance(emb))
    model.fit(returns)
    assert model.weights_.sum() == pytest.approx(1.0) and (model.weights_ >= 0).all()
    assert isinstance(model.distance_estimator_, EmbeddingDistance)
    assert model.distance_estimator_.distance_[0, 1] < 0.1
    cloned = clone(model)
    assert cloned.distance_estimator.embeddings.keys() == emb.keys()
    assert not hasattr(cloned.distance_estimator, "distance_")


def test_missing_ticker_and_no_embeddings_raise() -> None:
    emb, returns = _inputs()
    del emb["EEE"]
    with pytest.raises(DataError, match="EEE"):
        EmbeddingDistance(emb).fit(returns)
    with pytest.raises(DataError, match="unnamed columns"):
        EmbeddingDistance(emb).fit(returns.to_numpy())
    with pytest.raises(DataError, match="needs embeddings"):
        EmbeddingDistance().fit(returns)
