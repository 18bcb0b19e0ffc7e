"""Seeded small markets for the view tests: equities driven by a planted market factor, an index, factor ETFs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from dynmix.config import ViewsConfig
from dynmix.data.store import Store
from dynmix.views import explicit as ex
from dynmix.views.implicit import add_returns, date_grid, on_grid
from dynmix.views.market import choose_market, market_frame

SECTORS = ["Energy", "Tech", "Unknown"]


def business_days(n: int, start: str = "2015-01-05") -> list[dt.date]:
    d = pl.date_range(dt.date.fromisoformat(start), dt.date(2100, 1, 1), "1d", eager=True)
    return d.filter(d.dt.weekday() <= 5).head(n).to_list()


def make_market(n_equities: int = 6, n_days: int = 420, seed: int = 0, index: str | None = "^GSPC",
                etfs: tuple[str, ...] = ("MTUM",)) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(prices, meta): equities E00.. with beta_i * market + noise, an index of the market, ETFs of it."""
    rng = np.random.default_rng(seed)
    dates = business_days(n_days)
    mkt = rng.normal(0.0003, 0.01, n_days)
    series: dict[str, np.ndarray] = {}
    for i in range(n_equities):
        beta = 0.5 + i * 0.2
        series[f"E{i:02d}"] = beta * mkt + rng.normal(0.0, 0.004 + 0.002 * i, n_days)
    if index:
        series[index] = mkt
    for j, etf in enumerate(etfs):
        series[etf] = (0.6 + 0.3 * j) * mkt + rng.normal(0.0, 0.003, n_days)
    frames = []
    for k, (tk, r) in enumerate(series.items()):
        close = 40.0 * np.exp(np.cumsum(r))
        vol = rng.integers(1_000, 50_000, n_days).astype(float) if tk.startswith("E") else None
        frames.append(pl.DataFrame({
            "date": dates, "ticker": tk, "open": close, "high": close * 1.01, "low": close * 0.99,
            "close": close * (1.0 + 0.01 * k), "adj_close": close, "volume": vol,
        }, schema_overrides={"volume": pl.Float64}))
    equities = [t for t in series if t.startswith("E")]
    meta = pl.DataFrame({
        "ticker": [*equities, *([index] if index else []), *etfs],
        "sector": [SECTORS[i % len(SECTORS)] for i in range(len(equities))]
        + ["Unknown"] * (len(series) - len(equities)),
        "asset_type": ["equity"] * len(equities) + (["index"] if index else []) + ["etf"] * len(etfs),
    })
    return pl.concat(frames), meta


def write_store(root: Path, prices: pl.DataFrame, meta: pl.DataFrame | None = None) -> Store:
    store = Store(root)
    store.write_prices(prices)
    if meta is not None:
        store.upsert_meta(meta)
    return store


def raw_feature_frame(store: Store, cfg: ViewsConfig) -> pl.DataFrame:
    """The unstandardised explicit features, computed by the same steps as build_views (live rows only)."""
    meta = store.meta_for_prices()
    equities = sorted(meta.filter(pl.col("asset_type") == "equity")["ticker"].to_list())
    etfs = sorted(meta.filter(pl.col("asset_type") == "etf")["ticker"].to_list())
    source = choose_market(meta, set(meta["ticker"].to_list()), cfg.market_ticker)
    grid = date_grid(store.scan_prices().filter(pl.col("ticker").is_in(equities))).collect()
    panel = add_returns(on_grid(store.scan_prices(), grid, 300)).with_columns(ex.dollar_volume()).collect()
    market = market_frame(panel.lazy(), grid.lazy(), equities, source, cfg.vol_scale_window,
                          cfg.market_vol_window).collect()
    factors = ex.factor_returns(market.lazy(), panel.lazy(), etfs)
    eq = panel.lazy().filter(pl.col("ticker").is_in(equities))
    return ex.raw_features(eq, factors, etfs).filter(pl.col("live")).collect()


@pytest.fixture
def market_data() -> Callable[..., tuple[pl.DataFrame, pl.DataFrame]]:
    """Factory: `make_market(**kwargs)` -> (prices, meta)."""
    return make_market


@pytest.fixture
def store_of(tmp_path: Path) -> Callable[..., Store]:
    """Factory: a fresh store under tmp_path holding (prices, meta)."""
    count = iter(range(1000))

    def make(prices: pl.DataFrame, meta: pl.DataFrame | None = None) -> Store:
        return write_store(tmp_path / f"store{next(count)}", prices, meta)

    return make


@pytest.fixture
def market_store(store_of: Callable[..., Store]) -> Callable[..., Store]:
    """Factory: a store holding `make_market(**kwargs)`."""

    def make(**kwargs: object) -> Store:
        return store_of(*make_market(**kwargs))  # type: ignore[arg-type]

    return make


@pytest.fixture
def raw_of() -> Callable[[Store, ViewsConfig], pl.DataFrame]:
    return raw_feature_frame


@pytest.fixture
def cfg() -> ViewsConfig:
    return ViewsConfig(start=None, window=20, min_window_obs=15)
