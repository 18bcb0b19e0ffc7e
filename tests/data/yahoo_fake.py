"""A network-free stand-in for YahooAdapter: frames shaped exactly like yfinance 1.x's `download`.

Test files load this module by path (pytest runs with --import-mode=importlib, so test modules cannot
import each other). `assemble` repeats what yfinance's `_download_impl` does with per-ticker frames, and a
test checks it against yfinance's own code.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd

PRICE_COLUMNS = ["Open", "High", "Low", "Close", "Volume"]


def truth_frame(n_days: int = 60, start: str = "2024-01-02", seed: int = 0) -> pd.DataFrame:
    """One ticker's daily history as Ticker.history returns it: business days, index named Date."""
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range(start, periods=n_days, name="Date")
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, n_days)))
    return pd.DataFrame({
        "Open": close * 0.999, "High": close * 1.01, "Low": close * 0.99, "Close": close,
        "Volume": rng.integers(1_000, 100_000, n_days).astype(float),
    }, index=idx)


def failed_frame() -> pd.DataFrame:
    """yfinance's `utils.empty_df()`: what a failed ticker contributes (note the extra Adj Close)."""
    df = pd.DataFrame(index=[], data={c: np.nan for c in ("Open", "High", "Low", "Close", "Adj Close", "Volume")})
    df.index.name = "Date"
    return df


def assemble(dfs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per-ticker frames -> one frame: union of dates, keys (Ticker, Price), swapped to (Price, Ticker), sorted."""
    idx = None
    for df in dfs.values():
        if not df.empty:
            idx = df.index if idx is None else idx.union(df.index)
    if idx is None:
        idx = pd.DatetimeIndex([])
    dfs = {k: df.reindex(idx) for k, df in dfs.items()}
    data = pd.concat(dfs.values(), axis=1, sort=True, keys=dfs.keys(), names=["Ticker", "Price"])
    data.columns = data.columns.swaplevel(0, 1)
    return data.sort_index(level=0, axis=1)


class FakeYahoo:
    """In-memory truth per ticker, a call log, and injectable failures.

    raise_on: 1-based call number -> exception raised by that call (or `always` to raise on every call)
    dead: tickers that come back as all-NaN columns
    """

    def __init__(self, truth: dict[str, pd.DataFrame], meta: dict[str, dict[str, Any]] | None = None) -> None:
        self.truth = {t.upper(): df.copy() for t, df in truth.items()}
        self.meta = meta if meta is not None else {
            t: {"ticker": t, "name": f"{t} Inc.", "sector": "Tech", "industry": "Software", "asset_type": "equity"}
            for t in self.truth
        }
        self.calls: list[dict[str, Any]] = []
        self.meta_calls: list[str] = []
        self.raise_on: dict[int, BaseException] = {}
        self.always: BaseException | None = None
        self.dead: set[str] = set()
        self.last_errors: dict[str, str] = {}

    def readjust(self, ticker: str, before: date, factor: float) -> None:
        """Re-adjust history before `before` (what Yahoo does after a split or a dividend)."""
        df = self.truth[ticker]
        mask = df.index < pd.Timestamp(before)
        df.loc[mask, ["Open", "High", "Low", "Close"]] *= factor

    def fetch_prices(self, tickers: list[str], start: date, end: date | None) -> pd.DataFrame:
        names = list(set(t.upper() for t in tickers))  # yfinance upper-cases and de-duplicates (order lost)
        self.calls.append({"tickers": sorted(names), "start": start, "end": end})
        if self.always is not None:
            raise self.always
        if len(self.calls) in self.raise_on:
            raise self.raise_on[len(self.calls)]
        dfs: dict[str, pd.DataFrame] = {}
        self.last_errors = {}
        for t in names:
            df = self.truth.get(t)
            if df is None or t in self.dead:
                dfs[t] = failed_frame()
                self.last_errors[t] = "YFPricesMissingError('possibly delisted; no price data found')"
                continue
            keep = df.index >= pd.Timestamp(start)
            if end is not None:
                keep &= df.index < pd.Timestamp(end)  # end is exclusive
            dfs[t] = df[keep]
        return assemble(dfs)

    def fetch_meta(self, ticker: str) -> dict[str, Any]:
        self.meta_calls.append(ticker)
        if ticker not in self.meta:
            raise KeyError(f"no info for {ticker}")
        return dict(self.meta[ticker])
