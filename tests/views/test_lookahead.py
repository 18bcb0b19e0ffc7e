"""No look-ahead (docs/DESIGN.md §3): changing every price after a date t leaves every view at dates <= t unchanged."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import torch

from dynmix.config import ViewsConfig
from dynmix.data.store import Store
from dynmix.views.build import build_views
from dynmix.views.tensors import load_view_tensors

Data = Callable[..., tuple[pl.DataFrame, pl.DataFrame]]
PRICE_COLS = ["open", "high", "low", "close", "adj_close", "volume"]


def _perturb_after(prices: pl.DataFrame, t: object, seed: int) -> pl.DataFrame:
    """Multiply every price (and volume) after t by an independent random factor per row."""
    rng = np.random.default_rng(seed)
    factor = pl.Series(np.exp(rng.normal(0.0, 0.2, prices.height)))
    future = pl.col("date") > t
    return prices.with_columns(
        pl.when(future).then(pl.col(c) * factor).otherwise(pl.col(c)).alias(c) for c in PRICE_COLS
    )


def test_changing_the_future_leaves_the_past_unchanged(market_data: Data, store_of: Callable[..., Store],
                                                       tmp_path: Path) -> None:
    prices, meta = market_data(n_equities=8, n_days=420, etfs=("MTUM", "QUAL"))
    dates = prices["date"].unique().sort()
    prices = prices.filter(  # a late listing and a gap, so masks matter too
        ~((pl.col("ticker") == "E03") & (pl.col("date") < dates[150]))
        & ~((pl.col("ticker") == "E05") & pl.col("date").is_between(dates[320], dates[326]))
    )
    t = dates[330]
    cfg = ViewsConfig(start=str(dates[40]), window=30, min_window_obs=20, vol_scale_window=100)
    build_views(store_of(prices, meta), tmp_path / "a", cfg, progress=False)
    build_views(store_of(_perturb_after(prices, t, seed=1), meta), tmp_path / "b", cfg, progress=False)

    for name in ("explicit", "returns", "market"):
        a = pl.read_parquet(tmp_path / "a" / f"{name}.parquet")
        b = pl.read_parquet(tmp_path / "b" / f"{name}.parquet")
        assert a.shape == b.shape
        past = pl.col("date") <= t
        assert a.filter(past).equals(b.filter(past)), name
        assert not a.filter(~past).equals(b.filter(~past)), f"{name}: the perturbation changed nothing"

    va, vb = load_view_tensors(tmp_path / "a"), load_view_tensors(tmp_path / "b")
    k = va.date_index(t) + 1  # dates [0, k) are <= t
    assert torch.equal(va.valid()[:, :k], vb.valid()[:, :k]) and bool(va.valid()[:, :k].any())
    assert torch.equal(va.explicit[:, :k], vb.explicit[:, :k]) and torch.equal(va.sectors, vb.sectors)
    assert torch.equal(va.market_vol[:k], vb.market_vol[:k]) and torch.equal(va.dispersion[:k], vb.dispersion[:k])
    n = len(va.tickers)
    i = torch.arange(n).repeat_interleave(k)  # every (company, date <= t)
    tt = torch.arange(k).repeat(n)
    assert torch.equal(va.implicit_windows(i, tt), vb.implicit_windows(i, tt))
    assert not torch.equal(va.returns[:, k:], vb.returns[:, k:])
