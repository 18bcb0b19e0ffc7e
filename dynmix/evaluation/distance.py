"""An skfolio distance estimator from company embeddings, so DynMIX plugs into HRP and friends.

    HierarchicalRiskParity(distance_estimator=EmbeddingDistance(embeddings)).fit(returns)

`returns` is a (T, A) frame whose columns are tickers; each ticker's embedding is looked up, and the
codependence is their cosine similarity, mapped to skfolio's standard angular distance sqrt(0.5 (1 - cos)).
Shapes: A assets, D embedding dimensions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import sklearn.utils.validation as skv
from skfolio.distance import BaseDistance

from dynmix.errors import DataError
from dynmix.evaluation.similarity import cosine_matrix


def embedding_table(embeddings: Mapping[str, Any] | pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """Tickers and their (A, D) vectors from {ticker: vector} or a DataFrame indexed by ticker."""
    if isinstance(embeddings, pd.DataFrame):
        tickers = [str(t) for t in embeddings.index]
        x = embeddings.to_numpy(dtype=np.float64)
    elif isinstance(embeddings, Mapping):
        tickers = [str(t) for t in embeddings]
        x = np.stack([np.asarray(v, dtype=np.float64).ravel() for v in embeddings.values()]) if tickers else np.empty(
            (0, 0))
    else:
        raise DataError(f"embeddings of type {type(embeddings).__name__}: expected a mapping ticker -> vector or a "
                        "DataFrame indexed by ticker")
    if x.ndim != 2 or not np.isfinite(x).all():
        raise DataError(f"embeddings of shape {x.shape}: expected finite (tickers, D) vectors")
    return tickers, x


class EmbeddingDistance(BaseDistance):
    """Distance between assets from their embeddings (skfolio's `BaseDistance` interface).

    Parameters
    ----------
    embeddings : mapping ticker -> (D,) vector, or DataFrame (tickers x D)
        When `fit` gets a frame, its columns are looked up by name; a bare array must have its columns in
        the embeddings' order.

    Attributes
    ----------
    codependence_ : ndarray (A, A), cosine similarity of the embeddings.
    distance_ : ndarray (A, A), sqrt(0.5 * (1 - codependence_)), zero diagonal.

    """

    def __init__(self, embeddings: Mapping[str, Any] | pd.DataFrame | None = None) -> None:
        self.embeddings = embeddings

    def fit(self, X: Any, y: None = None) -> EmbeddingDistance:
        """Look up each column's embedding and set `codependence_` and `distance_`; returns self."""
        if self.embeddings is None:
            raise DataError("EmbeddingDistance needs embeddings: expected a mapping ticker -> vector")
        skv.validate_data(self, X, ensure_all_finite="allow-nan")  # sets n_features_in_ (and feature_names_in_)
        tickers, table = embedding_table(self.embeddings)
        names = getattr(self, "feature_names_in_", None)
        if names is not None:
            row = {t: i for i, t in enumerate(tickers)}
            missing = [str(n) for n in names if str(n) not in row]
            if missing:
                raise DataError(f"no embedding for asset(s) {missing[:10]}: expected every column of X among the "
                                f"{len(tickers)} embedded tickers")
            x = table[[row[str(n)] for n in names]]  # (A, D) in X's column order
        elif table.shape[0] == self.n_features_in_:
            x = table
        else:
            raise DataError(f"X has {self.n_features_in_} unnamed columns but there are {table.shape[0]} "
                            "embeddings: pass a DataFrame whose columns are tickers")
        cos = cosine_matrix(x)  # (A, A)
        np.fill_diagonal(cos, 1.0)
        self.codependence_ = cos
        self.distance_ = np.sqrt(np.clip(0.5 * (1.0 - cos), 0.0, 1.0))
        return self
