"""The implicit view: returns on the grid, trailing scaling, late listings, missing days (masked, not zero-filled)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import torch

from dynmix.config import ViewsConfig
from dynmix.data.store import Store
from dynmix.views.build import build_views
from dynmix.views.implicit import CLIP, date_grid, on_grid
from dynmix.views.tensors import load_view_tensors

Data = Callable[..., tuple[pl.DataFrame, pl.DataFrame]]


def business_days(n: int) -> list[dt.date]:
    d = pl.date_range(dt.date(2015, 1, 5), dt.date(2016, 1, 1), "1d", eager=True)
    return d.filter(d.dt.weekday() <= 5).head(n).to_list()


def test_ret_and_ret_scaled_match_pandas(market_store: Callable[..., Store], cfg: ViewsConfig, tmp_path: Path) -> None:
    store = market_store(n_equities=3, n_days=320)
    cfg = ViewsConfig(start=None, window=20, min_window_obs=15, vol_scale_window=60)
    build_views(store, tmp_path / "v", cfg, progress=False)
    got = pl.read_parquet(tmp_path / "v" / "returns.parquet").filter(pl.col("ticker") == "E01").to_pandas()
    px = store.read_prices(["E01"]).to_pandas().set_index("date")["adj_close"]
    ret = np.log(px).diff()
    scaled = (ret / ret.rolling(60, min_periods=21).std()).clip(-CLIP, CLIP)
    np.testing.assert_allclose(got["ret"].to_numpy(), ret.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(got["ret_scaled"].to_numpy(), scaled.to_numpy(), rtol=1e-10)
    assert got["ret_scaled"].isna().sum() == 21  # first return is null, then 20 returns too few to scale


def test_late_listing_and_missing_days(market_data: Data, store_of: Callable[..., Store], cfg: ViewsConfig,
                                       tmp_path: Path) -> None:
    prices, meta = market_data(n_equities=3, n_days=400)
    dates = prices["date"].unique().sort()
    listed, gap = dates[100], dates[300:310]  # E01 lists late; E02 misses 10 days
    prices = prices.filter(
        ~((pl.col("ticker") == "E01") & (pl.col("date") < listed))
        & ~((pl.col("ticker") == "E02") & pl.col("date").is_in(gap.implode()))
    )
    build_views(store_of(prices, meta), tmp_path / "v", cfg, progress=False)
    ret = pl.read_parquet(tmp_path / "v" / "returns.parquet")
    e1 = ret.filter(pl.col("ticker") == "E01")
    assert e1["date"].min() == listed and e1["ret"][0] is None  # no rows before the listing
    e2 = ret.filter(pl.col("ticker") == "E02")
    assert e2["date"].to_list() == dates.to_list()  # the missing days are rows on the grid...
    assert e2["ret"][300:311].null_count() == 11  # ... without a return, nor the day after a gap (needs t-1)
    assert e2["ret"][299] is not None and e2["ret"][311] is not None

    vt = load_view_tensors(tmp_path / "v")
    i1, i2 = vt.tickers.index("E01"), vt.tickers.index("E02")
    t_list = vt.date_index(listed)
    # partial_history (the default): samples once the 63-day features exist, flagged until mom_252 does
    flag = vt.feature("short_history")[i1]
    assert not vt.valid()[i1, : t_list + 40].any() and vt.valid()[i1, t_list + 70 : t_list + 252].all()
    assert bool((flag[t_list + 70 : t_list + 252] == 1).all()) and bool((flag[t_list + 253 :] == 0).all())
    assert not vt.returns_mask[i2, 300:311].any()
    obs = vt.window_obs()[i2]
    assert int(obs[315]) == cfg.window - 11  # the 20-day window 296..315 misses the returns of days 300..310
    valid = vt.valid()[i2]
    assert bool(valid[304]) and not valid[305:325].any() and bool(valid[325])  # < 15 observed -> masked
    w = vt.implicit_windows(torch.tensor([i2]), torch.tensor([315]))[0]  # (L, C), oldest first: day 296 + k
    assert torch.all(w[4:15, 0] == 0) and torch.all(w[:4, 0] != 0)  # zeros only where the mask says missing


def test_on_grid_blocks_guards_and_gaps() -> None:
    days = business_days(20)
    rows = [("A", d) for d in range(10)] + [("B", d) for d in range(12, 20) if d != 15] + [("C", d) for d in range(20)]
    prices = pl.DataFrame({"ticker": [r[0] for r in rows], "date": [days[r[1]] for r in rows],
                           "close": [100.0 * ("ABC".index(r[0]) + 1) + r[1] for r in rows]})
    prices = prices.with_columns(adj_close=pl.col("close"), volume=pl.lit(1.0))
    off_grid = pl.DataFrame({"ticker": ["A"], "date": [dt.date(2015, 1, 10)], "close": [1.0], "adj_close": [1.0],
                             "volume": [1.0]})  # a Saturday: not an equity trading day
    grid = date_grid(prices.lazy()).collect()
    out = on_grid(pl.concat([prices, off_grid]).lazy(), grid, guard=3).collect()
    b = out.filter(pl.col("ticker") == "B")
    assert b["gidx"].to_list() == list(range(9, 20)) and b["live"].to_list() == [False] * 3 + [True] * 8
    assert b["close"].to_list() == [None] * 3 + [212.0, 213.0, 214.0, None, 216.0, 217.0, 218.0, 219.0]
    a = out.filter(pl.col("ticker") == "A")  # A's last day (9) is B's first guard day: never borrowed by B
    assert a["gidx"].to_list() == list(range(-3, 10))
    assert a["close"].drop_nulls().to_list() == [100.0 + d for d in range(10)]
    assert out["ticker"].to_list() == ["A"] * 13 + ["B"] * 11 + ["C"] * 23  # blocks sorted by ticker then date
    assert out.filter(pl.col("live"))["date"].to_list() == [*days[:10], *days[12:], *days]
