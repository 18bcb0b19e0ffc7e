"""Small Streamlit pieces the pages share: the run picker, empty-state hints and tables."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import streamlit as st

from app import loaders
from dynmix.workspace import Workspace

CHOSEN_RUN = "chosen_run"  # session key: the run picked on any page, kept across pages

START_HINT = """\
Nothing here yet. Fill the workspace from a terminal:

- `dynmix demo` — everything at once on the embedded data (prices, views, a training run, evaluation)
- or step by step: `dynmix data sample` (offline S&P 500 sample) · `dynmix data refresh --tickers AAPL,MSFT`
  (Yahoo Finance) · `dynmix data synth` (planted-structure market), then `dynmix views build`,
  `dynmix train`, `dynmix evaluate latest`
"""


def hint(message: str, command: str | None = None) -> None:
    """An info box saying what is missing and, when given, the command that fills it."""
    st.info(message + (f"\n\nRun `{command}` to create it." if command else ""), icon=":material/info:")


def run_picker(ws: Workspace, *, key: str) -> Path | None:
    """A select box of the workspace's runs (newest first), remembered across pages; None when there are none."""
    runs = loaders.run_dirs(ws)
    if not runs:
        hint(f"No training runs in `{ws.runs}` yet.", "dynmix train")
        return None
    names = [p.name for p in runs]
    remembered = st.session_state.get(CHOSEN_RUN)
    index = names.index(remembered) if remembered in names else 0
    name = st.selectbox("Run", names, index=index, key=key, help="Runs in HOME/runs, newest first.")
    st.session_state[CHOSEN_RUN] = name
    return runs[names.index(name)]


def display(df: pl.DataFrame) -> pl.DataFrame:
    """Dates as YYYY-MM-DD and timestamps to the minute (st.dataframe would show dates as midnight timestamps)."""
    return df.with_columns(
        [pl.col(c).dt.strftime("%Y-%m-%d") for c, t in df.schema.items() if t == pl.Date]
        + [pl.col(c).dt.strftime("%Y-%m-%d %H:%M") for c, t in df.schema.items() if isinstance(t, pl.Datetime)])


def last_refresh(cov: pl.DataFrame, fmt: str = "%Y-%m-%d %H:%M") -> str | None:
    """The latest refresh time of a coverage table (UTC) formatted, or None when nothing was refreshed."""
    times = cov["last_refresh"].drop_nulls()
    return None if times.len() == 0 else str(times.dt.strftime(fmt).max())


def table(df: pl.DataFrame, *, height: int | None = None) -> None:
    """A frame as a full-width table without the index (nothing when empty)."""
    if df.height == 0:
        return
    df = display(df)
    if height is None:
        st.dataframe(df, hide_index=True, width="stretch")
    else:
        st.dataframe(df, hide_index=True, width="stretch", height=height)


def int_slider(label: str, lo: int, hi: int, value: int, *, key: str) -> int:
    """An integer slider; just `lo` (no widget) when the range holds one value."""
    if hi <= lo:
        return lo
    return int(st.slider(label, lo, hi, max(lo, min(value, hi)), key=key))


def chart(fig: object, *, key: str) -> None:
    """A Plotly figure, full width (the key keeps two identical figures apart)."""
    st.plotly_chart(fig, width="stretch", key=key)
