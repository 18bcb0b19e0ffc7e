"""`DynMIXEmbedder`: the whole DynMIX pipeline behind the scikit-learn estimator API (STYLE point 9).

    emb = DynMIXEmbedder(dim=16, epochs=5).fit(prices)      # prices: DataFrame dates x tickers
    vectors = emb.transform(prices)                          # DataFrame tickers x D (mean implicit embedding)

`fit` writes the panel into a temporary workspace, builds both views, trains a run on every date of the panel
and keeps the trained model in memory; the workspace is removed afterwards. `transform` builds the views of
the panel it is given (same columns as in `fit`) and averages each company's implicit embedding over its dates.
Shapes: T dates, A tickers, D representation.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from dynmix.config import DynMIXConfig, LossConfig, ModelConfig, TrainConfig, ViewsConfig
from dynmix.data.store import Store
from dynmix.errors import DataError, DynMIXError
from dynmix.workspace import Workspace


def panel_to_long(X: Any) -> pl.DataFrame:
    """Validate a (T, A) price panel (DatetimeIndex or dates, ticker columns) -> canonical long prices."""
    if not isinstance(X, pd.DataFrame):
        raise DataError(f"X of type {type(X).__name__}: expected a pandas DataFrame of prices, dates x tickers")
    if X.shape[1] < 2 or X.shape[0] < 2:
        raise DataError(f"X has shape {X.shape}: expected at least 2 dates and 2 tickers")
    try:
        dates = pd.DatetimeIndex(pd.to_datetime(X.index))
    except (TypeError, ValueError) as e:
        raise DataError("the index of X: expected dates") from e
    if dates.tz is not None:
        dates = dates.tz_localize(None)
    values = X.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)  # (T, A)
    frame = pl.DataFrame({"date": pl.Series("date", dates.to_numpy()).dt.date()}).with_columns(
        [pl.Series(str(c), values[:, j]) for j, c in enumerate(X.columns)])
    long = (frame.unpivot(index="date", variable_name="ticker", value_name="close")
            .filter(pl.col("close").is_not_null() & pl.col("close").is_not_nan()))
    from dynmix.data.schema import validate_prices

    return validate_prices(long, file="X (price panel)")


class DynMIXEmbedder(TransformerMixin, BaseEstimator):
    """Company embeddings from a price panel. Parameters mirror the run config; see dynmix.config."""

    def __init__(self, dim: int = 16, epochs: int = 5, variance_target: str = "market-vol", window: int = 60,
                 seed: int = 0, device: str = "cpu", dates_per_batch: int = 16, progress: bool = False) -> None:
        self.dim = dim
        self.epochs = epochs
        self.variance_target = variance_target
        self.window = window
        self.seed = seed
        self.device = device
        self.dates_per_batch = dates_per_batch
        self.progress = progress

    def _config(self) -> DynMIXConfig:
        if self.dim < 1 or self.epochs < 1 or self.window < 2:
            raise DynMIXError(f"dim={self.dim}, epochs={self.epochs}, window={self.window}: expected dim >= 1, "
                              "epochs >= 1 and window >= 2")
        return DynMIXConfig(
            views=ViewsConfig(window=self.window, min_window_obs=max(1, (3 * self.window) // 4), start=None),
            model=ModelConfig(dim=self.dim),
            loss=LossConfig(variance_target=self.variance_target),
            train=TrainConfig(epochs=self.epochs, seed=self.seed, device=self.device, train_frac=1.0,
                              dates_per_batch=self.dates_per_batch, checkpoint_every=0),
        )

    @staticmethod
    def _workspace(root: str, X: Any) -> tuple[Workspace, list[str]]:
        ws = Workspace(Path(root))
        store = Store(ws.store)
        long = store.write_prices(panel_to_long(X), file="X (price panel)")
        tickers = [str(c) for c in X.columns]
        store.upsert_meta(pl.DataFrame({"ticker": sorted(set(long["ticker"].to_list()))}))
        return ws, tickers

    def fit(self, X: Any, y: None = None) -> DynMIXEmbedder:
        """Train on every date of the (T, A) price panel `X`; sets model_, config_, views_, embeddings_."""
        from dynmix.runs.models import load_run
        from dynmix.runs.rundir import RunDir
        from dynmix.runs.viewstamp import views_signature
        from dynmix.train.job import train
        from dynmix.views.build import build_views
        from dynmix.views.explicit import required_history

        cfg = self._config()
        need = max(required_history(cfg.views.partial_history), cfg.views.window)
        if isinstance(X, pd.DataFrame) and len(X) <= need + 1:
            raise DataError(f"X has {len(X)} dates: expected more than {need + 1} (the explicit view needs {need} "
                            "days of history before its first sample; [views] partial_history and window set it)")
        with tempfile.TemporaryDirectory(prefix="dynmix-embedder-") as root:
            ws, tickers = self._workspace(root, X)
            build_views(Store(ws.store), ws.views, cfg.views, progress=self.progress)
            run_dir = train(ws, cfg, run_name="embedder", progress=self.progress)
            self.config_, model, vt = load_run(RunDir(run_dir), "cpu")
            self.model_ = model
            self.views_ = views_signature(vt)
            self.feature_names_in_ = np.asarray(tickers, dtype=object)
            self.n_features_in_ = len(tickers)
            self.embeddings_ = self._mean_implicit(vt, tickers)
        return self

    def _mean_implicit(self, vt: Any, tickers: list[str]) -> pd.DataFrame:
        from dynmix.train.embed import embeddings_frame

        frame = embeddings_frame(self.model_, vt).filter(pl.col("view") == "implicit")
        d = self.config_.model.dim
        means = frame.group_by("ticker").agg(
            [pl.col("embedding").list.get(k).cast(pl.Float64).mean().alias(f"e{k}") for k in range(d)])
        out = means.to_pandas().set_index("ticker").reindex(tickers)  # (A, D); NaN for a ticker with no window
        out.index.name = "ticker"
        return out

    def transform(self, X: Any) -> pd.DataFrame:
        """(A, D) mean implicit embedding of each ticker over the dates of `X` (columns as in `fit`)."""
        check_is_fitted(self, "model_")
        from dynmix.runs.viewstamp import views_signature
        from dynmix.views.build import build_views
        from dynmix.views.tensors import load_view_tensors

        cfg = self.config_
        with tempfile.TemporaryDirectory(prefix="dynmix-embedder-") as root:
            ws, tickers = self._workspace(root, X)
            build_views(Store(ws.store), ws.views, cfg.views, progress=self.progress)
            vt = load_view_tensors(ws.views, "cpu")
            if views_signature(vt) != self.views_:
                raise DynMIXError("the views of X differ from those seen in fit (explicit features, channels or "
                                  "window): pass a panel of the same kind (same tickers, prices with the same fields)")
            return self._mean_implicit(vt, tickers)

    def fit_transform(self, X: Any, y: None = None, **fit_params: Any) -> pd.DataFrame:
        """Fit, then return the embeddings of the fitted panel (no second view build)."""
        return self.fit(X).embeddings_.copy()
