from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from skfolio.optimization import HierarchicalRiskParity
from skfolio.preprocessing import prices_to_returns
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from dynmix.embedder import DynMIXEmbedder
from dynmix.errors import DataError
from dynmix.evaluation.distance import EmbeddingDistance

TICKERS = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"]


def _panel(n_days: int = 300, seed: int = 0) -> pd.DataFrame:
    """(T, A) prices like skfolio's load_sp500_dataset(): DatetimeIndex, one column per ticker."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0, 0.01, (n_days, 1)) + rng.normal(0, 0.015, (n_days, len(TICKERS)))
    idx = pd.bdate_range("2020-01-01", periods=n_days, name="Date")
    return pd.DataFrame(50 * np.exp(np.cumsum(r, axis=0)), index=idx, columns=TICKERS)


def test_params_and_clone() -> None:
    est = DynMIXEmbedder(dim=4, epochs=1, window=20)
    assert est.get_params()["dim"] == 4 and est.get_params()["variance_target"] == "market-vol"
    est.set_params(seed=3, variance_target="static")
    twin = clone(est)
    assert twin is not est and twin.get_params() == est.get_params()
    with pytest.raises(NotFittedError):
        est.transform(_panel())


def test_fit_transform_tiny_panel() -> None:
    X = _panel()
    est = DynMIXEmbedder(dim=4, epochs=1, window=20, seed=0)
    assert est.fit(X) is est
    out = est.transform(X)
    assert list(out.index) == TICKERS and out.shape == (6, 4)
    assert np.isfinite(out.to_numpy()).all()
    assert np.allclose(out.to_numpy(), est.embeddings_.to_numpy(), atol=1e-5)  # same panel, same vectors
    assert est.n_features_in_ == 6 and list(est.feature_names_in_) == TICKERS
    fitted_clone = clone(est)
    assert not hasattr(fitted_clone, "model_")
    # the embeddings drive skfolio's HRP through EmbeddingDistance
    hrp = HierarchicalRiskParity(distance_estimator=EmbeddingDistance(out)).fit(prices_to_returns(X))
    assert hrp.weights_.sum() == pytest.approx(1.0) and (hrp.weights_ >= 0).all()


def test_bad_panels_raise() -> None:
    est = DynMIXEmbedder(dim=4, epochs=1, window=20)
    with pytest.raises(DataError, match="expected a pandas DataFrame"):
        est.fit(np.ones((10, 3)))
    with pytest.raises(DataError, match="at least 2 dates and 2 tickers"):
        est.fit(_panel()[["AAA"]])
    with pytest.raises(DataError, match="explicit view needs 63 days"):  # partial_history: 63 days, else 252
        est.fit(_panel(n_days=60))
    bad = _panel()
    bad.iloc[5, 2] = -1.0
    with pytest.raises(DataError, match="expected a finite price > 0"):
        est.fit(bad)
