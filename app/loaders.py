"""Cached loaders: every frame is cached with st.cache_data keyed by the artifact's version (file mtime).

Pages call the public function; it reads the version and passes it to the cached one as a plain (hashed,
so not `_`-prefixed) argument, so a new run or a refresh shows on the next rerun without clearing caches.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import streamlit as st

from app import artifacts, embedmap
from dynmix.data.status import coverage
from dynmix.data.store import Store
from dynmix.runs.rundir import RunDir
from dynmix.workspace import Workspace


def workspace() -> Workspace:
    """The workspace of the app: $DYNMIX_HOME (set by `dynmix dashboard`), else ./data."""
    return Workspace.at()


def run_dirs(ws: Workspace) -> list[Path]:
    return ws.list_runs()


# ---- store ------------------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False)
def _coverage(root: str, version: tuple[float, float, float]) -> pl.DataFrame:
    return coverage(Store(root))


def store_coverage(ws: Workspace) -> pl.DataFrame:
    """Per-ticker coverage (dynmix.data.status.coverage), with name and industry from the metadata."""
    s = Store(ws.store)
    v = tuple(artifacts.version(p) for p in (s.prices_path, s.meta_path, s.manifest_path))
    return _coverage(str(s.root), v)  # type: ignore[arg-type]


@st.cache_data(show_spinner=False)
def _meta(root: str, version: float) -> pl.DataFrame:
    return Store(root).read_meta()


def store_meta(ws: Workspace) -> pl.DataFrame:
    s = Store(ws.store)
    return _meta(str(s.root), artifacts.version(s.meta_path))


@st.cache_data(show_spinner=False)
def _prices(root: str, tickers: tuple[str, ...], version: float) -> pl.DataFrame:
    return Store(root).read_prices(list(tickers)).select("date", "ticker", "adj_close", "volume")


def prices(ws: Workspace, tickers: list[str]) -> pl.DataFrame:
    s = Store(ws.store)
    return _prices(str(s.root), tuple(sorted(tickers)), s.version())


@st.cache_data(show_spinner=False)
def _monthly(root: str, version: float) -> pl.DataFrame:
    return artifacts.monthly_coverage(Store(root).scan_prices().select("date", "ticker").collect())


def monthly_coverage(ws: Workspace) -> pl.DataFrame:
    s = Store(ws.store)
    return _monthly(str(s.root), s.version())


# ---- runs -------------------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False)
def _parquet(path: str, version: float) -> pl.DataFrame | None:
    return artifacts.read_parquet(Path(path))


def parquet(path: Path) -> pl.DataFrame | None:
    """A run artifact (gamma, forecasts, planning tables), None when absent."""
    return _parquet(str(path), artifacts.version(path))


@st.cache_data(show_spinner=False)
def _metrics(path: str, version: float) -> pl.DataFrame:
    return artifacts.metrics_frame(Path(path))


def metrics(run_dir: Path) -> pl.DataFrame:
    path = RunDir(run_dir).metrics_path
    return _metrics(str(path), artifacts.version(path))


def comparison(ws: Workspace) -> pl.DataFrame:
    """HOME/compare/compare.json (`dynmix compare`) as artifacts.compare_frame's rows; empty when absent."""
    return artifacts.compare_frame(artifacts.read_json(ws.home / "compare" / "compare.json"))


def report(run_dir: Path) -> dict[str, Any]:
    return artifacts.read_json(RunDir(run_dir).report_path)


def split(run_dir: Path) -> dict[str, Any]:
    return artifacts.read_json(RunDir(run_dir).split_path)


@st.cache_data(show_spinner=False)
def _runs_table(paths: tuple[str, ...], versions: tuple[float, ...]) -> pl.DataFrame:
    return artifacts.runs_table([Path(p) for p in paths])


def runs_table(ws: Workspace) -> pl.DataFrame:
    dirs = run_dirs(ws)
    versions = tuple(artifacts.version(p) for d in dirs for p in (RunDir(d).metrics_path, RunDir(d).report_path))
    return _runs_table(tuple(str(d) for d in dirs), versions)


# ---- embeddings -------------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False)
def _views_and_dates(path: str, version: float) -> tuple[list[str], list[dt.date]]:
    return embedmap.views_and_dates(Path(path))


def views_and_dates(path: Path) -> tuple[list[str], list[dt.date]]:
    return _views_and_dates(str(path), artifacts.version(path))


@st.cache_data(show_spinner="reading embeddings…")
def _embeddings(path: str, view: str, start: dt.date, end: dt.date | None,
                version: float) -> tuple[list[str], np.ndarray]:
    if end is None:
        return embedmap.on_date(Path(path), view, start)
    return embedmap.over_period(Path(path), view, start, end)


def embeddings(path: Path, view: str, start: dt.date, end: dt.date | None = None) -> tuple[list[str], np.ndarray]:
    """(tickers, (N, D)) on the date `start` (end None) or averaged over [start, end]."""
    return _embeddings(str(path), view, start, end, artifacts.version(path))


@st.cache_data(show_spinner="projecting…")
def projection(x: np.ndarray, method: str, seed: int = 0) -> tuple[np.ndarray, str]:
    return embedmap.project(x, method, seed)


@st.cache_data(show_spinner=False)
def _similarity(path: str, view: str, ticker: str, others: tuple[str, ...], version: float) -> pl.DataFrame:
    return embedmap.similarity_over_time(Path(path), view, ticker, list(others))


def similarity_over_time(path: Path, view: str, ticker: str, others: list[str]) -> pl.DataFrame:
    return _similarity(str(path), view, ticker, tuple(others), artifacts.version(path))


# ---- planner ----------------------------------------------------------------------------------------------
@st.cache_data(show_spinner="planning…")
def _plan(home: str, run_dir: str, date: dt.date, risk_aversion: float, cost: float, horizon: int,
          hierarchical: bool, version: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    from dynmix.planning.service import plan_at  # torch and the models: only when the planner runs

    return plan_at(Workspace(Path(home)), Path(run_dir), date, risk_aversion=risk_aversion, cost=cost,
                           horizon=horizon, hierarchical=hierarchical)


def plan(ws: Workspace, run_dir: Path, date: dt.date, *, risk_aversion: float, cost: float,
         horizon: int, hierarchical: bool = False) -> tuple[pl.DataFrame, pl.DataFrame]:
    """plan_at's (weights, trajectories), cached per inputs and checkpoint version (plan_at loads the model)."""
    v = artifacts.version(RunDir(run_dir).checkpoint_path)
    return _plan(str(ws.home), str(run_dir), date, risk_aversion, cost, horizon, hierarchical, v)
