"""The market series: source fallback order and its columns against pandas."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from dynmix.config import ViewsConfig
from dynmix.data.store import Store
from dynmix.views.build import build_views
from dynmix.views.implicit import CLIP
from dynmix.views.market import EQUAL_WEIGHT, choose_market

Data = Callable[..., tuple[pl.DataFrame, pl.DataFrame]]


def _built(store: Store, cfg: ViewsConfig, out: Path) -> tuple[pl.DataFrame, dict[str, object]]:
    build_views(store, out, cfg, progress=False)
    return pl.read_parquet(out / "market.parquet"), json.loads((out / "views.json").read_text())


def _log_ret(store: Store, ticker: str) -> np.ndarray:
    px = store.read_prices([ticker])["adj_close"].to_numpy()
    return np.r_[np.nan, np.diff(np.log(px))]


def test_choose_market_order() -> None:
    meta = pl.DataFrame({"ticker": ["A", "^X", "^B", "SPY"], "asset_type": ["equity", "index", "index", "etf"]})
    stored = {"A", "^X", "^B", "SPY"}
    assert choose_market(meta, stored, "SPY").ticker == "SPY"  # configured, whatever its type
    assert choose_market(meta, stored, "^GSPC").ticker == "^B"  # else the first index by ticker
    assert choose_market(meta, stored - {"^B"}, "^GSPC").ticker == "^X"
    ew = choose_market(meta.filter(pl.col("asset_type") != "index"), {"A", "SPY"}, "^GSPC")
    assert ew.ticker is None and ew.describe() == EQUAL_WEIGHT


def test_configured_ticker_then_index_then_equal_weight(market_data: Data, store_of: Callable[..., Store],
                                                        cfg: ViewsConfig, tmp_path: Path) -> None:
    prices, meta = market_data(n_equities=4, n_days=300, index="^IDX", etfs=("MTUM",))
    store = store_of(prices, meta)
    m, info = _built(store, ViewsConfig(start=None, market_ticker="MTUM"), tmp_path / "a")
    assert info["market_source"] == "MTUM"
    np.testing.assert_allclose(m["mkt_ret"].to_numpy(), _log_ret(store, "MTUM"), rtol=1e-12)
    m, info = _built(store, cfg, tmp_path / "b")  # ^GSPC absent -> the index
    assert info["market_source"] == "^IDX" and info["market_kind"] == "index"
    np.testing.assert_allclose(m["mkt_ret"].to_numpy(), _log_ret(store, "^IDX"), rtol=1e-12)
    no_index = store_of(prices.filter(pl.col("ticker") != "^IDX"), meta.filter(pl.col("ticker") != "^IDX"))
    m, info = _built(no_index, cfg, tmp_path / "c")
    assert info["market_source"] == EQUAL_WEIGHT
    rets = np.stack([_log_ret(no_index, f"E{i:02d}") for i in range(4)])  # (N, T)
    np.testing.assert_allclose(m["mkt_ret"].to_numpy()[1:], rets[:, 1:].mean(axis=0), rtol=1e-10)


def test_market_columns_match_pandas(market_store: Callable[..., Store], tmp_path: Path) -> None:
    store = market_store(n_equities=5, n_days=300)
    cfg = ViewsConfig(start=None, vol_scale_window=100, market_vol_window=10)
    m, _ = _built(store, cfg, tmp_path / "v")
    mkt = m.to_pandas()["mkt_ret"]
    np.testing.assert_allclose(m["mkt_scaled"].to_numpy(),
                               (mkt / mkt.rolling(100, min_periods=21).std()).clip(-CLIP, CLIP).to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(m["market_vol"].to_numpy(),
                               (mkt.rolling(10, min_periods=5).std() * np.sqrt(252)).to_numpy(), rtol=1e-10)
    rets = np.stack([_log_ret(store, f"E{i:02d}") for i in range(5)])  # (N, T)
    disp = np.r_[np.nan, rets[:, 1:].std(axis=0, ddof=1)]
    want = m.with_columns(d=pl.Series(disp).fill_nan(None).rolling_mean(10, min_samples=1))["d"].to_numpy()
    np.testing.assert_allclose(m["dispersion"].to_numpy(), want, rtol=1e-10)
    assert m["mkt_scaled"].head(21).null_count() == 21 and m["market_vol"][5] is not None


def test_grid_starts_at_views_start(market_store: Callable[..., Store], tmp_path: Path) -> None:
    store = market_store(n_equities=3, n_days=400)
    dates = store.read_prices(["E00"])["date"]
    m, info = _built(store, ViewsConfig(start=str(dates[300])), tmp_path / "v")
    assert m["date"].to_list() == dates[300:].to_list() and info["n_dates"] == 100
    assert m["mkt_scaled"].null_count() == 0  # scaled with the history before the start
    x = pl.read_parquet(tmp_path / "v" / "explicit.parquet")
    assert x["date"].min() == dates[300] and x["mom_252"].null_count() == 0
