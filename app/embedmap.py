"""Per-company embeddings for the map page: read one date or a period, project to 2-D, cluster, neighbours.

Embeddings: a run's embeddings/ folder (or embeddings.parquet of an older run), read through
dynmix.runs.embeddings: per view (explicit | implicit | fused), date, ticker, embedding (list[f32] of D values).
Letters: N companies, D dimensions, S company-days.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

from dynmix.evaluation.run_inputs import mean_embeddings
from dynmix.runs import embeddings as emb

METHODS = ("PCA", "t-SNE", "UMAP")
SMALL = 200  # companies: below this, t-SNE and KMeans run single-threaded (faster than contended threads)


def available_methods() -> list[str]:
    """PCA and t-SNE always (scikit-learn); UMAP only if umap-learn is installed."""
    return [m for m in METHODS if m != "UMAP" or importlib.util.find_spec("umap") is not None]


def views_and_dates(path: Path) -> tuple[list[str], list[dt.date]]:
    """The views a reader can ask for and the sorted dates of the embeddings."""
    return emb.stored_views(path), emb.dates(path)


def _matrix(df: pl.DataFrame) -> np.ndarray:
    """(S, D) float64 from the `embedding` list column."""
    if df.height == 0:
        return np.zeros((0, 0))
    d = int(df["embedding"].list.len().max())  # type: ignore[arg-type]
    return np.asarray(df["embedding"].list.to_array(d).to_numpy(), dtype=np.float64)


def on_date(path: Path, view: str, date: dt.date) -> tuple[list[str], np.ndarray]:
    """(tickers (N,), embeddings (N, D)) of `view` on `date`."""
    df = emb.scan_view(path, view, date, date).select("ticker", "embedding").sort("ticker").collect()
    return df["ticker"].to_list(), _matrix(df)


def over_period(path: Path, view: str, start: dt.date, end: dt.date) -> tuple[list[str], np.ndarray]:
    """(tickers (N,), mean embeddings (N, D)) of `view` over start <= date <= end."""
    means = mean_embeddings(path, view, start, end)
    tickers = sorted(means)
    return tickers, (np.stack([means[t] for t in tickers]) if tickers else np.zeros((0, 0)))


def project(x: np.ndarray, method: str = "PCA", seed: int = 0) -> tuple[np.ndarray, str]:
    """((N, 2) coordinates, note): PCA, t-SNE or UMAP; falls back to PCA (with a note) when N is too small."""
    from sklearn.decomposition import PCA

    n = x.shape[0]
    if n < 2 or x.shape[1] < 1:
        return np.zeros((n, 2)), "fewer than two companies: nothing to project"
    note = ""
    if method == "t-SNE" and n >= 5:
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, (n - 1) / 3))
        with threadpool_limits(limits=1 if n < SMALL else None):  # threads only add contention on small maps
            xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
        return xy, note
    if method == "UMAP" and n >= 5 and importlib.util.find_spec("umap") is not None:
        import umap

        return np.asarray(umap.UMAP(n_components=2, random_state=seed).fit_transform(x)), note
    if method != "PCA":
        note = f"{method} needs at least 5 companies (and its package): PCA shown instead"
    k = min(2, n, x.shape[1])
    xy = PCA(n_components=k, random_state=seed).fit_transform(x)  # (N, k)
    if k < 2:
        xy = np.hstack([xy, np.zeros((n, 2 - k))])
    return xy, note


def kmeans_labels(x: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """(N,) KMeans cluster of each L2-normalised embedding (k capped at N)."""
    from sklearn.cluster import KMeans

    norm = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    k = max(1, min(k, x.shape[0]))
    with threadpool_limits(limits=1 if x.shape[0] < SMALL else None):
        return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(norm)


def cosine_neighbours(tickers: list[str], x: np.ndarray, ticker: str, k: int = 5) -> pl.DataFrame:
    """(ticker, similarity): the k companies most cosine-similar to `ticker`, most similar first."""
    if ticker not in tickers or len(tickers) < 2:
        return pl.DataFrame(schema={"ticker": pl.String(), "similarity": pl.Float64()})
    norm = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)  # (N, D)
    i = tickers.index(ticker)
    sim = norm @ norm[i]  # (N,)
    order = [j for j in np.argsort(-sim, kind="stable") if j != i][:k]
    return pl.DataFrame({"ticker": [tickers[j] for j in order], "similarity": sim[order].astype(float)})


def similarity_over_time(path: Path, view: str, ticker: str, others: list[str]) -> pl.DataFrame:
    """(date, ticker, similarity): cosine similarity between `ticker` and each of `others` on every date."""
    names = [ticker, *others]
    df = emb.scan_view(path, view, tickers=names).collect()
    base = df.filter(pl.col("ticker") == ticker).select("date", pl.col("embedding").alias("base"))
    pairs = df.filter(pl.col("ticker") != ticker).join(base, on="date").sort("ticker", "date")
    if pairs.height == 0:
        return pl.DataFrame(schema={"date": pl.Date(), "ticker": pl.String(), "similarity": pl.Float64()})
    a = _matrix(pairs.select(pl.col("base").alias("embedding")))  # (S, D)
    b = _matrix(pairs.select("embedding"))  # (S, D)
    den = np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return pairs.select("date", "ticker").with_columns(pl.Series("similarity", (a * b).sum(axis=1) / den))
