"""Fixture workspaces for the dashboard: a full one (store, views, an evaluated run with forecasts and a planner
backtest, plus an older half-finished run) and an empty one; AppTest factories; a fake planning service."""

from __future__ import annotations

import datetime as dt
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dynmix.config import DynMIXConfig, save_config
from dynmix.data.store import Store
from dynmix.io import append_jsonl, write_json, write_parquet, write_text
from dynmix.workspace import Workspace

APP_MAIN = Path(__file__).resolve().parents[2] / "app" / "main.py"
FULL_RUN = "20261121-090000-market-vol"  # newest: every artifact
PARTIAL_RUN = "20261120-120000-static"  # older: config and a few metric lines only
SECTORS = {"AAA": "Tech", "AAB": "Tech", "AAC": "Tech", "BBA": "Energy", "BBB": "Energy", "BBC": "Energy",
           "CCA": "Health", "CCB": "Health"}
N_DAYS, D = 300, 8
STRATEGIES = ("world_mpc", "sample_mpc", "equal_weight", "inverse_vol", "min_variance", "hrp")  # run_plan's names


def _dates(n: int) -> list[dt.date]:
    out, d = [], dt.date(2020, 1, 1)
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


def _store(ws: Workspace, rng: np.random.Generator, dates: list[dt.date]) -> None:
    market = rng.normal(0.0003, 0.01, N_DAYS)
    factors = {s: rng.normal(0, 0.008, N_DAYS) for s in set(SECTORS.values())}
    frames = []
    for tk, sector in SECTORS.items():
        close = 40.0 * np.exp(np.cumsum(market + factors[sector] + rng.normal(0, 0.01, N_DAYS)))
        df = pl.DataFrame({"date": dates, "ticker": tk, "open": close, "high": close * 1.01, "low": close * 0.99,
                           "close": close, "adj_close": close, "volume": rng.integers(1e3, 1e5, N_DAYS) * 1.0})
        frames.append(df.filter(~pl.col("date").is_between(dt.date(2020, 6, 1), dt.date(2020, 6, 30)))
                      if tk == "CCB" else df)  # a month-long gap shows on the heat-map
    store = Store(ws.store)
    store.write_prices(pl.concat(frames))
    store.upsert_meta(pl.DataFrame({"ticker": list(SECTORS), "name": [f"{t} Corp" for t in SECTORS],
                                    "sector": list(SECTORS.values()), "industry": "Widgets",
                                    "asset_type": "equity"}))
    manifest = store.manifest_from_prices("sample")
    failed = manifest.filter(pl.col("ticker") == "CCB").with_columns(
        pl.lit("failed").alias("status"), pl.lit("no data came back (all-NaN column)").alias("message"))
    store.upsert_manifest(pl.concat([manifest.filter(pl.col("ticker") != "CCB"), failed]))
    write_json({"feature_names": ["mom_21", "vol_21"], "channels": ["ret", "market"], "window": 60,
                "n_tickers": len(SECTORS), "n_dates": N_DAYS, "first_date": str(dates[0]),
                "last_date": str(dates[-1]), "built_at": "2026-11-21T08:00:00+00:00"}, ws.views / "views.json")


def _embeddings(rng: np.random.Generator, dates: list[dt.date]) -> pl.DataFrame:
    """Sector centroids + drift + noise: sectors show as clusters on the map."""
    centre = {s: rng.normal(0, 1, D) for s in set(SECTORS.values())}
    rows_t, rows_k, rows_v, embs = [], [], [], []
    for j, day in enumerate(dates):
        for tk, sector in SECTORS.items():
            base = centre[sector] + 0.2 * np.sin(j / 40 + sum(map(ord, tk)) % 7)
            for view in ("explicit", "implicit", "fused"):
                rows_t.append(day)
                rows_k.append(tk)
                rows_v.append(view)
                embs.append(base + rng.normal(0, 0.3, D))
    return pl.DataFrame({"date": rows_t, "ticker": rows_k, "view": rows_v,
                         "embedding": pl.Series(np.asarray(embs, dtype=np.float32)).cast(pl.List(pl.Float32))})


def _full_run(run: Path, rng: np.random.Generator, dates: list[dt.date]) -> None:
    save_config(DynMIXConfig(), run / "config.toml")
    for step in range(10, 210, 10):
        decay = np.exp(-step / 80)
        append_jsonl({"step": step, "epoch": step // 50, "epoch_end": step % 50 == 0, "loss": 20 * decay + 5,
                      "invariance": 0.5 * decay + 0.1, "variance": 0.3 * decay, "covariance": 0.2 * decay + 0.05,
                      "gamma": 1.0 + 0.1 * np.sin(step), "lr": 1e-3, "explicit_std_min": 0.5 + 0.3 * (1 - decay),
                      "explicit_std_mean": 0.9, "explicit_erank": 6 - 2 * decay, "implicit_std_min": 0.4,
                      "implicit_std_mean": 0.8, "implicit_erank": 5 - 2 * decay, "samples_per_s": 5000.0},
                     run / "metrics.jsonl")
    used = dates[60:]
    n_train = int(0.7 * len(used))
    vol = 0.15 + 0.05 * np.sin(np.arange(len(used)) / 30)
    write_parquet(pl.DataFrame({"date": used, "gamma": np.clip(vol / 0.15, 0.8, 1.2), "market_vol": vol,
                                "dispersion": vol * 0.8, "train": np.arange(len(used)) < n_train}),
                  run / "gamma.parquet")
    split = {"train_start": str(used[0]), "train_end": str(used[n_train - 1]), "test_start": str(used[n_train]),
             "test_end": str(used[-1]), "n_train_dates": n_train, "n_test_dates": len(used) - n_train}
    write_json(split, run / "split.json")
    write_parquet(_embeddings(rng, used), run / "embeddings.parquet")
    test = used[n_train:]
    write_parquet(pl.DataFrame({"date": test, "surprise": vol[n_train:] * 2 + rng.normal(0, 0.02, len(test)),
                                "market_vol": vol[n_train:]}), run / "forecast" / "surprise.parquet")
    realised = {tk: 0.2 + 0.05 * rng.random(len(test)) for tk in SECTORS}
    write_parquet(pl.concat([pl.DataFrame({"date": test, "ticker": tk, "realised": r, "dynmix": r * 1.05,
                                           "har": r * 0.9, "garch": r * 1.1}) for tk, r in realised.items()]),
                  run / "forecast" / "vol_forecast.parquet")
    equity = pl.concat([pl.DataFrame({"date": test, "strategy": s,
                                      "net_return": rng.normal(0.0004 * (k + 1), 0.01, len(test))})
                        for k, s in enumerate(STRATEGIES)])
    equity = equity.with_columns((1 + pl.col("net_return")).cum_prod().over("strategy").alias("equity"))
    write_parquet(equity.select("date", "strategy", "equity", "net_return"), run / "planning" / "equity.parquet")
    rebal = test[::5]
    write_parquet(pl.DataFrame([{"date": d, "strategy": s, "ticker": tk, "weight": 1 / len(SECTORS)}
                                for d in rebal for s in STRATEGIES for tk in SECTORS]),
                  run / "planning" / "weights.parquet")
    methods = ("dynmix_implicit", "dynmix_explicit", "dynmix_fused", "pca", "random")
    report = {
        "split": split,
        "sector": {m: {"knn_accuracy": 0.9 - 0.1 * k, "macro_f1": 0.8 - 0.1 * k, "ari": 0.7 - 0.1 * k}
                   for k, m in enumerate(methods)},
        "similarity": {m: {"spearman_future_corr": 0.5 - 0.1 * k, "precision_at_5": 0.6} for k, m in
                       enumerate(methods)},
        "hedging": {m: {"pair_vol": 0.15 + 0.01 * k} for k, m in enumerate(methods)},
        "collapse": {v: {"min_std": 0.3, "mean_std": 0.8, "effective_rank": 5.5} for v in
                     ("explicit", "implicit", "fused")},
        "forecast": {
            "volatility": {h: {**{m: {"qlike": 0.1 + 0.02 * k + j, "mse": 0.001 * (k + 1)} for k, m in
                                  enumerate(("dynmix", "har", "garch"))},
                               "dm": {"har": {"stat": 3.0, "p": 0.003}, "garch": {"stat": 0.5, "p": 0.6}},
                               "mcs": ["dynmix", "garch"] if h == "h5" else ["har"]}
                           for j, h in enumerate(("h1", "h5"))},
            "gmv": {m: {"ann_vol": 0.15 + 0.01 * k, "ann_vol_long_only": 0.16} for k, m in
                    enumerate(("world_model", "sample", "ledoit_wolf"))},
            "surprise": {"jepa_surprise": {"spearman": 0.3, "pearson": 0.25, "n_dates": 100},
                         "trailing_vol_5d": {"spearman": 0.6, "pearson": 0.55, "n_dates": 100},
                         "increment": {"qlike_har": 0.30, "qlike_har_surprise": 0.31, "t_stat": 0.4, "p": 0.69}},
        },
        "planning": {
            **{s: {"ann_return": 0.05 + 0.01 * k, "ann_vol": 0.15, "sharpe": 0.3 + 0.1 * k, "sharpe_lo": 0.1 * k - 0.5,
                   "sharpe_hi": 1.0 + 0.1 * k, "max_drawdown": 0.2, "cvar95": 0.02, "turnover": 0.1}
               for k, s in enumerate(STRATEGIES)},
            "vs_equal_weight": {s: {"p": 0.5, "p_memmel": 0.45, "sharpe_diff": 0.1} for s in STRATEGIES
                                if s != "equal_weight"},
            "costs_bps": 10.0,
            "by_cost": {c: {s: {"sharpe": 0.3 - 0.01 * float(c), "turnover": 0.1} for s in STRATEGIES}
                        for c in ("0", "10", "25")},
            "ms_per_plan": {"world_mpc": 12.0},
        },
        "notes": ["fixture"],
    }
    write_json(report, run / "report.json")
    write_text("# Evaluation report\n", run / "report.md")


def build_full_workspace(home: Path, seed: int = 0) -> Workspace:
    ws = Workspace(home)
    rng = np.random.default_rng(seed)
    dates = _dates(N_DAYS)
    _store(ws, rng, dates)
    _full_run(ws.run(FULL_RUN), rng, dates)
    partial = ws.run(PARTIAL_RUN)
    static = DynMIXConfig()
    static.loss.variance_target = "static"
    save_config(static, partial / "config.toml")
    for step in (10, 20, 30):
        append_jsonl({"step": step, "epoch": 0, "loss": 30.0 - step / 10, "invariance": 1.0, "variance": 0.5,
                      "covariance": 0.3, "gamma": 1.0, "lr": 1e-3}, partial / "metrics.jsonl")
    return ws


@pytest.fixture(scope="session")
def full_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only full workspace, built once per session."""
    return build_full_workspace(tmp_path_factory.mktemp("dash") / "ws").home


@pytest.fixture
def writable_home(tmp_path: Path) -> Path:
    """A full workspace of this test alone (for tests that write to it)."""
    return build_full_workspace(tmp_path / "ws").home


@pytest.fixture
def empty_home(tmp_path: Path) -> Path:
    return tmp_path / "empty-ws"


@pytest.fixture(autouse=True)
def _clear_streamlit_caches() -> Iterator[None]:
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def dashboard(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], AppTest]:
    """dashboard(home) -> an AppTest of app/main.py (not yet run) reading the workspace `home`."""

    def make(home: Path) -> AppTest:
        monkeypatch.setenv("DYNMIX_HOME", str(home))
        return AppTest.from_file(str(APP_MAIN), default_timeout=60)

    return make


@pytest.fixture
def fake_planner(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    """Install a fake dynmix.planning.service whose plan_at records its calls; returns the call list."""
    calls: list[dict[str, object]] = []

    def plan_at(ws: Workspace, run_dir: Path, date: dt.date, *, risk_aversion: float, cost: float,
                horizon: int, hierarchical: bool = False) -> tuple[pl.DataFrame, pl.DataFrame]:
        calls.append({"run": run_dir.name, "date": date, "risk_aversion": risk_aversion, "cost": cost,
                      "horizon": horizon, "hierarchical": hierarchical})
        tickers = list(SECTORS)
        tilt = np.linspace(1.0, 0.0, len(tickers)) / (1.0 + risk_aversion)  # more risk aversion: more equal
        w = (1.0 / len(tickers) + tilt - tilt.mean()).clip(0)
        w = w / w.sum()
        weights = pl.DataFrame({"ticker": tickers * horizon, "step": np.repeat(np.arange(1, horizon + 1), len(w)),
                                "weight": np.tile(w, horizon)})
        rng = np.random.default_rng(0)
        traj = pl.DataFrame({"sample": np.repeat(np.arange(20), horizon), "step": np.tile(np.arange(1, horizon + 1),
                             20), "ret": rng.normal(0.0005, 0.01, 20 * horizon), "vol": 0.01 + rng.random(20 * horizon)
                             * 0.002, "realised": np.tile(rng.normal(0.0, 0.01, horizon), 20)})
        if hierarchical:
            weights = weights.with_columns(pl.lit(1.0 / len(tickers)).alias("target"))
        return weights, traj

    module = types.ModuleType("dynmix.planning.service")
    module.plan_at = plan_at  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dynmix.planning.service", module)
    return calls


class FakeYahoo:
    """A network-free price adapter shaped like yfinance 1.x: 30 business days per ticker, or all-NaN offline."""

    def __init__(self, offline: bool = False) -> None:
        self.offline = offline
        self.calls: list[list[str]] = []

    def fetch_prices(self, tickers: list[str], start: dt.date, end: dt.date | None) -> pd.DataFrame:
        self.calls.append(sorted(tickers))
        idx = pd.bdate_range(start, periods=30, name="Date")
        cols = pd.MultiIndex.from_product([["Close", "High", "Low", "Open", "Volume"], sorted(tickers)],
                                          names=["Price", "Ticker"])
        if self.offline:
            return pd.DataFrame(np.nan, index=pd.DatetimeIndex([], name="Date"), columns=cols)
        close = np.linspace(10.0, 12.0, len(idx))[:, None] * np.ones(len(tickers))
        data = np.hstack([close, close * 1.01, close * 0.99, close, np.full_like(close, 1e4)])
        return pd.DataFrame(data, index=idx, columns=cols)

    def fetch_meta(self, ticker: str) -> dict[str, object]:
        return {"ticker": ticker, "name": f"{ticker} Inc.", "sector": "Tech", "industry": "Software",
                "asset_type": "equity"}


@pytest.fixture
def fake_yahoo(monkeypatch: pytest.MonkeyPatch) -> Callable[[bool], FakeYahoo]:
    """fake_yahoo(offline) -> the FakeYahoo the dashboard's refresh will use (app.refresh.make_adapter patched)."""
    import app.refresh

    def install(offline: bool = False) -> FakeYahoo:
        fake = FakeYahoo(offline)
        monkeypatch.setattr(app.refresh, "make_adapter", lambda ws: fake)
        return fake

    return install


@pytest.fixture
def facts() -> types.SimpleNamespace:
    """What the fixture workspace holds (test files cannot import conftest under --import-mode=importlib)."""
    return types.SimpleNamespace(full_run=FULL_RUN, partial_run=PARTIAL_RUN, sectors=dict(SECTORS),
                                 strategies=STRATEGIES, dim=D)
