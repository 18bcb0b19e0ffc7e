"""Fabricated inputs for the evaluation tests: a planted-sector market in a store, and run folders."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from dynmix.config import DynMIXConfig, save_config
from dynmix.data.store import Store
from dynmix.runs.embeddings import write_embeddings
from dynmix.workspace import Workspace

# 3 sectors of 4, one single-company sector, one company of unknown sector, and an index (not an equity).
SECTORS = {f"T{i}": "Tech" for i in range(4)} | {f"E{i}": "Energy" for i in range(4)} | {
    f"H{i}": "Health" for i in range(4)} | {"S0": "Solo", "U0": "Unknown"}
N_DAYS = 320
TRAIN_DAYS = 200


def planted_returns(sectors: list[str], n_days: int, seed: int) -> np.ndarray:
    """(T, N) daily returns: market + sector factor + idiosyncratic noise."""
    rng = np.random.default_rng(seed)
    names = sorted(set(sectors))
    factors = rng.normal(0, 0.015, (n_days, len(names)))
    market = rng.normal(0, 0.008, (n_days, 1))
    cols = [factors[:, names.index(s)] for s in sectors]
    return market + np.stack(cols, axis=1) + rng.normal(0, 0.006, (n_days, len(sectors)))


def business_days(n: int, start: dt.date = dt.date(2015, 1, 1)) -> list[dt.date]:
    out, d = [], start
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


def write_market(ws: Workspace, sectors: dict[str, str], seed: int = 0) -> list[dt.date]:
    """Prices (equities + ^GSPC index) and metadata into the workspace's store; returns the dates."""
    tickers = list(sectors)
    dates = business_days(N_DAYS)
    r = planted_returns([sectors[t] for t in tickers], N_DAYS, seed)
    r = np.column_stack([r, r.mean(axis=1)])  # the index
    close = 50.0 * np.exp(np.cumsum(r, axis=0))
    frames = [pl.DataFrame({"date": dates, "ticker": [t] * N_DAYS, "close": close[:, j], "volume": 1e5})
              for j, t in enumerate([*tickers, "^GSPC"])]
    store = Store(ws.store)
    store.write_prices(pl.concat(frames))
    meta = pl.DataFrame({"ticker": [*tickers, "^GSPC"], "sector": [*sectors.values(), "Unknown"],
                         "asset_type": ["equity"] * len(tickers) + ["index"]})
    store.upsert_meta(meta)
    return dates


def write_run(ws: Workspace, run_id: str, sectors: dict[str, str], dates: list[dt.date], *, noise: float = 0.05,
              dim: int = 8, seed: int = 0, views: tuple[str, ...] = ("explicit", "implicit", "fused"),
              gamma: bool = True, yearly: bool = False) -> Path:
    """A run folder following the trainer's contract; embeddings = sector centre + daily noise. `yearly`: stored as
    the trainer's export does (embeddings/, float16 by year, fused made on read) instead of embeddings.parquet."""
    rng = np.random.default_rng(seed)
    names = sorted(set(sectors.values()))
    centres = rng.normal(0, 1, (len(names), dim))
    run_dir = ws.run(run_id)
    run_dir.mkdir(parents=True)
    save_config(DynMIXConfig(), run_dir / "config.toml")
    split = {"train_start": dates[0].isoformat(), "train_end": dates[TRAIN_DAYS - 1].isoformat(),
             "test_start": dates[TRAIN_DAYS].isoformat(), "test_end": dates[-1].isoformat()}
    (run_dir / "split.json").write_text(json.dumps(split))
    rows = []
    for view in views:
        for t, s in sectors.items():
            emb = centres[names.index(s)] + rng.normal(0, noise, (len(dates), dim))
            rows.append(pl.DataFrame({"date": dates, "ticker": t, "view": view,
                                      "embedding": emb.astype(np.float32).tolist()},
                                     schema={"date": pl.Date, "ticker": pl.String, "view": pl.String,
                                             "embedding": pl.List(pl.Float32)}))
    frame = pl.concat(rows)
    if yearly:
        part = {v: frame.filter(pl.col("view") == v).sort("date", "ticker") for v in ("explicit", "implicit")}
        arrays = [part[v]["embedding"].list.to_array(dim).to_numpy() for v in ("explicit", "implicit")]
        write_embeddings(iter([(part["explicit"]["date"], part["explicit"]["ticker"], *arrays)]),
                         run_dir / "embeddings", dim)
    else:
        frame.write_parquet(run_dir / "embeddings.parquet")
    if gamma:  # a market volatility that rises and falls, as the trainer writes it
        vol = 0.2 + 0.1 * np.sin(np.arange(len(dates)) / 15.0)
        pl.DataFrame({"date": dates, "gamma": 1.0, "market_vol": vol, "dispersion": 0.0,
                      "train": np.arange(len(dates)) < TRAIN_DAYS}).write_parquet(run_dir / "gamma.parquet")
    return run_dir


@pytest.fixture
def market(home: Workspace) -> list[dt.date]:
    return write_market(home, SECTORS)


@pytest.fixture
def make_run(home: Workspace, market: list[dt.date]) -> Callable[..., Path]:
    def make(run_id: str = "20260101-000000-test", **kw: object) -> Path:
        return write_run(home, run_id, SECTORS, market, **kw)  # type: ignore[arg-type]

    return make


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Path, dict[str, object]]:
    """One full evaluation (run + a compared run with the sector signal drowned), shared by read-only tests."""
    from dynmix.evaluation.report import evaluate_run

    ws = Workspace(tmp_path_factory.mktemp("evaluated") / "ws")
    dates = write_market(ws, SECTORS)
    run_dir = write_run(ws, "20260101-000000-dyn", SECTORS, dates)
    other = write_run(ws, "20260101-000001-static", SECTORS, dates, noise=50.0, seed=1, views=("implicit",))
    return ws, run_dir, evaluate_run(ws, run_dir, compare=other)
