"""What an evaluation reads: a run's split, eval config and embeddings, and the store's equities and sectors.

Embeddings (`RunDir.embeddings_path`, read through dynmix.runs.embeddings): per view in {explicit, implicit,
fused}, date (Date), ticker (str), embedding (list[float32] of length D). Shapes: N companies, D dimensions,
S rows (company-days).
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from dynmix.config import EvalConfig, config_from_dict
from dynmix.data.store import Store
from dynmix.errors import DataError, DynMIXError
from dynmix.runs.embeddings import embedding_dim, scan_view, stored_views
from dynmix.runs.rundir import RunDir
from dynmix.workspace import Workspace

MAX_COLLAPSE_ROWS = 200_000  # collapse statistics use at most this many company-days (whole dates kept)


@dataclass
class RunInputs:
    """A run's split (train: dates <= train_end; test: later), eval config, embeddings and store data."""

    rd: RunDir
    split: dict[str, Any]
    train_start: dt.date | None
    train_end: dt.date
    test_start: dt.date
    test_end: dt.date | None
    eval_cfg: EvalConfig
    views: set[str]
    prices: pl.DataFrame  # canonical long prices of the equities
    equities: list[str]  # tickers with asset_type == "equity"
    sectors: dict[str, str]  # ticker -> sector ("Unknown" when unknown)
    notes: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.rd.name

    @property
    def embeddings_path(self) -> Path:
        return self.rd.embeddings_path  # type: ignore[no-any-return]


def _date(split: dict[str, Any], key: str, path: Path, required: bool) -> dt.date | None:
    value = split.get(key)
    if value is None:
        if required:
            raise DataError(f"missing key {key!r}: expected an ISO date (YYYY-MM-DD)", file=path)
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError as e:
        raise DataError(f"{key} = {value!r}: expected an ISO date (YYYY-MM-DD)", file=path) from e


def read_eval_config(rd: RunDir) -> EvalConfig:
    """The [eval] section of the run's config.toml (defaults when absent)."""
    path = rd.config_path
    if not path.exists():
        return EvalConfig()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise DataError(f"not valid TOML ({e})", file=path) from e
    return config_from_dict({"eval": data.get("eval", {})}).eval


def load_run_inputs(ws: Workspace, rd: RunDir) -> RunInputs:
    """Read everything `evaluate_run` needs; errors name the file and what was expected."""
    split = rd.read_split()
    sp = rd.split_path
    train_end = _date(split, "train_end", sp, required=True)
    assert train_end is not None
    test_start = _date(split, "test_start", sp, required=False)
    test_start = max(test_start or train_end, train_end + dt.timedelta(days=1))
    path = rd.checked_embeddings()
    views = set(stored_views(path))
    store = Store(ws.store)
    if not store.exists():
        raise DynMIXError(f"no prices in {ws.store}: expected the store the run was trained on")
    trained_on = rd.read_views_record().get("store_snapshot")
    if trained_on and (now := store.snapshot()) != trained_on:
        raise DynMIXError(f"the store {ws.store} changed since run {rd.name} was trained (store snapshot {trained_on} "
                          f"-> {now}): evaluating it would score its embeddings against other data. Restore the "
                          "data it was trained on, or build the views and train a new run")
    meta = store.meta_for_prices().filter(pl.col("asset_type") == "equity")
    equities = meta["ticker"].to_list()
    return RunInputs(
        rd=rd, split=split, train_start=_date(split, "train_start", sp, required=False),
        train_end=train_end, test_start=test_start, test_end=_date(split, "test_end", sp, required=False),
        eval_cfg=read_eval_config(rd), views=views, prices=store.read_prices(equities), equities=equities,
        sectors=dict(zip(meta["ticker"].to_list(), meta["sector"].to_list(), strict=True)),
    )


def _scan(path: Path, view: str, start: dt.date | None, end: dt.date | None) -> pl.LazyFrame:
    return scan_view(path, view, start, end)


def mean_embeddings(path: Path, view: str, start: dt.date | None, end: dt.date | None) -> dict[str, np.ndarray]:
    """{ticker: (D,) mean embedding of `view` over start <= date <= end} (streamed, never all rows at once)."""
    d = embedding_dim(path)
    agg = [pl.col("embedding").list.get(i).cast(pl.Float64).mean().alias(f"e{i}") for i in range(d)]
    means = _scan(path, view, start, end).group_by("ticker").agg(agg).sort("ticker").collect()
    x = means.select([f"e{i}" for i in range(d)]).to_numpy()  # (N, D)
    return {t: x[i] for i, t in enumerate(means["ticker"].to_list())}


def embedding_rows(path: Path, view: str, start: dt.date | None, end: dt.date | None) -> np.ndarray:
    """(S, D) embeddings of `view` in the period; whole dates thinned evenly beyond MAX_COLLAPSE_ROWS rows."""
    lf = _scan(path, view, start, end)
    counts = lf.group_by("date").len().sort("date").collect()
    if counts.height == 0:
        raise DataError(f"no {view!r} embeddings between {start} and {end}: expected test-period rows", file=path)
    step = max(1, -(-int(counts["len"].sum()) // MAX_COLLAPSE_ROWS))  # ceil division
    keep = counts["date"].gather_every(step)
    df = lf.filter(pl.col("date").is_in(keep.implode())).select("embedding").collect()
    return np.asarray(df["embedding"].list.to_array(embedding_dim(path)).to_numpy(), dtype=np.float64)
