"""build_views: on-disk format, idempotence, chunking, clear errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
import torch
from polars.testing import assert_frame_equal

from dynmix.config import ViewsConfig
from dynmix.data.store import Store
from dynmix.errors import DynMIXError
from dynmix.views import build as build_mod
from dynmix.views.build import build_views
from dynmix.views.tensors import load_view_tensors

Data = Callable[..., tuple[pl.DataFrame, pl.DataFrame]]
FILES = ("explicit.parquet", "returns.parquet", "market.parquet")


def test_format_matches_the_tensor_contract(market_store: Callable[..., Store], cfg: ViewsConfig,
                                            tmp_path: Path) -> None:
    store = market_store(n_equities=5, n_days=320)
    cfg = replace(cfg, partial_history=False)  # whole windows: the young-company rules are in test_young.py
    summary = build_views(store, tmp_path / "v", cfg, progress=True)
    info = json.loads((tmp_path / "v" / "views.json").read_text())
    factors = [f"factor{j}_scaled" for j in range(1, cfg.factors + 1)]
    assert info["feature_names"] == summary.feature_names
    assert info["channels"] == ["ret_scaled", "mkt_scaled", *factors] and cfg.factors > 0
    assert (info["window"], info["min_window_obs"], info["n_tickers"], info["n_dates"]) == (20, 15, 5, 320)
    assert info["market_source"] == "^GSPC" and {"first_date", "last_date", "built_at"} <= set(info)
    x = pl.read_parquet(tmp_path / "v" / "explicit.parquet")
    assert x.columns == ["date", "ticker", *summary.feature_names]
    assert all(x[c].dtype == pl.Float32 for c in summary.feature_names)
    r = pl.read_parquet(tmp_path / "v" / "returns.parquet")
    assert r.columns == ["date", "ticker", "ret", "ret_scaled"]
    assert r.select("ticker", "date").is_duplicated().sum() == 0
    m = pl.read_parquet(tmp_path / "v" / "market.parquet")
    assert m.columns == ["date", "mkt_ret", "mkt_scaled", "market_vol", "dispersion", *factors]
    assert m["date"].is_sorted() and all(m[c].dtype == pl.Float64 for c in factors)
    vt = load_view_tensors(tmp_path / "v")
    n_sectors = sum(f.startswith("sector_") for f in summary.feature_names)
    assert vt.shape == (5, 320) and n_sectors > 0 and vt.sectors.shape == (5, n_sectors)
    assert vt.explicit.shape == (5, 320, len(summary.feature_names) - n_sectors)  # the sectors kept once per company
    assert vt.explicit_features(torch.arange(5), torch.full((5,), 300)).shape == (5, len(summary.feature_names))
    assert vt.channels == info["channels"] and vt.factors.shape == (320, cfg.factors)
    assert int(vt.valid().sum()) == 5 * (320 - 252)  # every company from its first mom_252 on
    assert summary.n_valid == info["valid_samples"] == 5 * (320 - 252)  # counted by the build, not by loading


@pytest.mark.parametrize("chunk_rows", [500, 900_000])
def test_the_build_counts_the_valid_samples_the_loader_finds(market_data: Data, store_of: Callable[..., Store],
                                                             cfg: ViewsConfig, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch, chunk_rows: int) -> None:
    """Missing days thin some return windows below min_window_obs, a late listing and a start date shift the grid."""
    prices, meta = market_data(n_equities=7, n_days=420)
    gappy = pl.struct("ticker", "date").hash(3) % 7 == 0  # about 1 day in 7 of each equity missing, not all at once
    late = (pl.col("ticker") == "E02") & (pl.col("date") <= prices["date"][150])
    store = store_of(prices.filter(~((pl.col("ticker").str.starts_with("E") & gappy) | late)), meta)
    monkeypatch.setattr(build_mod, "CHUNK_ROWS", chunk_rows)
    v = tmp_path / "v"
    summary = build_views(store, v, replace(cfg, start=prices["date"][30].isoformat(), min_window_obs=17), False)
    vt = load_view_tensors(v)
    expected = int(vt.valid().sum())
    thin = vt.explicit_mask & (vt.window_obs() < 17)
    thin[:, : vt.window - 1] = False
    assert expected > 0 and int(thin.sum()) > 0  # the window count alone drops some samples
    assert summary.n_valid == expected == json.loads((v / "views.json").read_text())["valid_samples"]


def test_idempotent_and_chunking_does_not_change_the_result(market_data: Data, store_of: Callable[..., Store],
                                                            cfg: ViewsConfig, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    prices, meta = market_data(n_equities=7, n_days=300)
    store = store_of(prices.filter((pl.col("ticker") != "E02") | (pl.col("date") > prices["date"][90])), meta)
    build_views(store, tmp_path / "a", cfg, progress=False)
    build_views(store, tmp_path / "b", cfg, progress=False)
    monkeypatch.setattr(build_mod, "CHUNK_ROWS", 500)  # many chunks of whole tickers
    build_views(store, tmp_path / "c", cfg, progress=False)
    for f in FILES:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
        a, c = pl.read_parquet(tmp_path / "a" / f), pl.read_parquet(tmp_path / "c" / f)
        assert_frame_equal(a, c, check_exact=False, rel_tol=1e-6, abs_tol=1e-6)  # sums in another order


def test_ticker_chunks_hold_whole_tickers() -> None:
    panel = pl.DataFrame({"ticker": ["A"] * 5 + ["B"] * 3 + ["C"] * 4 + ["D"] * 2})
    assert build_mod.ticker_chunks(panel, 6) == [(0, 8), (8, 4), (12, 2)]  # cut at the first start past k * 6
    assert build_mod.ticker_chunks(panel, 100) == [(0, 14)]


def test_ticker_starts_are_the_first_rows_of_each_ticker() -> None:
    names = ["A", "B", "B\u00e9", "C", "\u00e4"]  # Python's order of code points is the order of UTF-8 bytes
    panel = pl.DataFrame({"ticker": [t for t, n in zip(names, [3, 1, 2, 4, 2], strict=True) for _ in range(n)]})
    assert panel["ticker"].is_sorted() and sorted(names) == names
    assert build_mod.ticker_starts(panel, names).tolist() == [0, 3, 4, 6, 10]
    assert build_mod.ticker_chunks(panel, 5, build_mod.ticker_starts(panel, names)) == build_mod.ticker_chunks(panel, 5)


def test_a_day_only_an_index_or_etf_trades_is_off_the_grid(market_data: Data, store_of: Callable[..., Store],
                                                           cfg: ViewsConfig, tmp_path: Path) -> None:
    prices, meta = market_data(n_equities=4, n_days=200)
    holiday = prices["date"][120]  # the equities do not trade that day; the index and the ETF do
    store = store_of(prices.filter(~(pl.col("ticker").str.starts_with("E") & (pl.col("date") == holiday))), meta)
    build_views(store, tmp_path / "v", cfg, progress=False)
    days = pl.read_parquet(tmp_path / "v" / "market.parquet")["date"]
    assert holiday not in days.to_list() and days.len() == prices["date"].n_unique() - 1
    assert holiday not in pl.read_parquet(tmp_path / "v" / "explicit.parquet")["date"].to_list()


def test_without_factors_the_implicit_view_has_two_channels(market_store: Callable[..., Store], cfg: ViewsConfig,
                                                            tmp_path: Path) -> None:
    store = market_store(n_equities=5, n_days=320)
    build_views(store, tmp_path / "v", replace(cfg, factors=0), progress=False)
    assert json.loads((tmp_path / "v" / "views.json").read_text())["channels"] == ["ret_scaled", "mkt_scaled"]
    assert pl.read_parquet(tmp_path / "v" / "market.parquet").columns == [
        "date", "mkt_ret", "mkt_scaled", "market_vol", "dispersion"]
    vt = load_view_tensors(tmp_path / "v")
    w = vt.implicit_windows(torch.tensor([0, 4]), torch.tensor([300, 310]))
    assert vt.factors.shape == (320, 0) and w.shape == (2, 20, 2)


def test_factor_windows_are_the_market_level_series(market_store: Callable[..., Store], cfg: ViewsConfig,
                                                    tmp_path: Path) -> None:
    cfg = replace(cfg, partial_history=False)  # the first fit after factor_window days (test_young.py: earlier)
    build_views(market_store(n_equities=6, n_days=400), tmp_path / "v", cfg, progress=False)
    vt = load_view_tensors(tmp_path / "v")
    w = vt.implicit_windows(torch.tensor([0, 5]), torch.tensor([390, 390]))  # (2, L, 2 + K)
    assert w.shape == (2, 20, 2 + cfg.factors)
    assert torch.equal(w[0, :, 2:], w[1, :, 2:]) and torch.equal(w[0, :, 2:], vt.factors[371:391])
    assert bool((vt.factors[260:] != 0).any()) and bool((vt.factors[:252] == 0).all())  # from the first fit on


def test_bad_factor_settings_are_refused(market_store: Callable[..., Store], cfg: ViewsConfig, tmp_path: Path) -> None:
    with pytest.raises(DynMIXError, match="views.factors = -1"):
        build_views(market_store(n_equities=2, n_days=50), tmp_path / "v", replace(cfg, factors=-1), progress=False)
    assert not (tmp_path / "v").exists()


def test_empty_store_says_what_to_run(tmp_path: Path, cfg: ViewsConfig) -> None:
    with pytest.raises(DynMIXError, match="dynmix data sample"):
        build_views(Store(tmp_path / "store"), tmp_path / "v", cfg, progress=False)


def test_too_short_history(market_store: Callable[..., Store], tmp_path: Path) -> None:
    store = market_store(n_equities=2, n_days=50)
    with pytest.raises(DynMIXError, match="at least views.window = 60"):
        build_views(store, tmp_path / "v", ViewsConfig(start=None), progress=False)
    with pytest.raises(DynMIXError, match="trading days from 2030-01-01"):
        build_views(store, tmp_path / "v", ViewsConfig(start="2030-01-01", window=5, min_window_obs=3),
                    progress=False)
    assert not (tmp_path / "v" / "views.json").exists()


def test_no_equities(market_data: Data, store_of: Callable[..., Store], cfg: ViewsConfig, tmp_path: Path) -> None:
    prices, meta = market_data(n_equities=2, n_days=100)
    store = store_of(prices, meta.with_columns(asset_type=pl.lit("etf")))
    with pytest.raises(DynMIXError, match="no equities"):
        build_views(store, tmp_path / "v", cfg, progress=False)
