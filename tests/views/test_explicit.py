"""Explicit features against a direct pandas/numpy computation, standardisation, sectors, optional features."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy import stats

from dynmix.config import ViewsConfig
from dynmix.data.store import Store
from dynmix.views import explicit as ex
from dynmix.views.build import build_views
from dynmix.views.tensors import load_view_tensors

RawOf = Callable[[Store, ViewsConfig], pl.DataFrame]


def _wide(prices: pl.DataFrame, col: str) -> pd.DataFrame:
    return prices.to_pandas().pivot(index="date", columns="ticker", values=col)


def test_raw_features_match_pandas(market_store: Callable[..., Store], raw_of: RawOf, cfg: ViewsConfig) -> None:
    store = market_store(n_equities=4, n_days=420)
    raw = raw_of(store, cfg).to_pandas()
    px = _wide(store.read_prices(), "adj_close")
    lp, ret = np.log(px), np.log(px).diff()
    mkt = ret["^GSPC"]
    tk, sl = "E02", slice(300, 420)
    got = raw[raw["ticker"] == tk].set_index("date").iloc[sl]
    r = ret[tk]
    want = {
        "mom_5": lp[tk] - lp[tk].shift(5),
        "mom_252": lp[tk] - lp[tk].shift(252),
        "vol_21": r.rolling(21, min_periods=14).std(),
        "vol_63": r.rolling(63, min_periods=42).std(),
        "dvol_21": np.sqrt((r.clip(upper=0.0) ** 2).rolling(21, min_periods=14).mean()),
        "beta_mkt": r.rolling(252, min_periods=126).cov(mkt) / mkt.where(r.notna()).rolling(252, min_periods=126).var(),
        "corr_mkt": r.rolling(252, min_periods=126).corr(mkt),
        "drawdown": lp[tk] - lp[tk].rolling(252, min_periods=126).max(),
        "skew": r.rolling(63, min_periods=42).apply(lambda w: stats.skew(w, bias=True), raw=True),
        "kurt": r.rolling(63, min_periods=42).apply(lambda w: stats.kurtosis(w, bias=True), raw=True),
    }
    for name, series in want.items():
        np.testing.assert_allclose(got[name].to_numpy(), series.iloc[sl].to_numpy(), rtol=2e-4, atol=1e-6,
                                   err_msg=name)
    c = r.rolling(252, min_periods=126).corr(mkt)
    ivol = np.sqrt(r.rolling(252, min_periods=126).var(ddof=0) * (1 - c**2))
    np.testing.assert_allclose(got["ivol_mkt"].to_numpy(), ivol.iloc[sl].to_numpy(), rtol=2e-4)
    dollar = _wide(store.read_prices(), "close")[tk] * _wide(store.read_prices(), "volume")[tk]
    np.testing.assert_allclose(got["liquidity"].to_numpy(), np.log(dollar.rolling(21).mean()).iloc[sl].to_numpy(),
                               rtol=1e-5)
    etf = ret["MTUM"]
    beta_etf = r.rolling(252, min_periods=126).cov(etf) / etf.rolling(252, min_periods=126).var()
    np.testing.assert_allclose(got[ex.etf_feature("MTUM")].to_numpy(), beta_etf.iloc[sl].to_numpy(), rtol=2e-4)


def test_not_enough_history_is_null(market_store: Callable[..., Store], raw_of: RawOf, cfg: ViewsConfig) -> None:
    raw = raw_of(market_store(n_equities=2, n_days=300), cfg).filter(pl.col("ticker") == "E00")
    assert raw["mom_252"].head(252).null_count() == 252 and raw["mom_252"][252] is not None
    assert raw["beta_mkt"].head(126).null_count() == 126 and raw["beta_mkt"][126] is not None
    assert raw["vol_21"].head(14).null_count() == 14 and raw["vol_21"][14] is not None


def test_standardise_zscores_winsorises_and_fills_optional() -> None:
    n = 40
    x = np.linspace(-1.0, 1.0, n)
    x[0] = 1e3  # an outlier far beyond +5 sd
    raw = pl.DataFrame({
        "date": [dt.date(2020, 1, 1)] * n, "gidx": [0] * n, "ticker": [f"T{i}" for i in range(n)],
        "a": x, "b": [None] * (n - 1) + [2.0], "o": [None] * n,
    }).with_columns(pl.col("a", "b", "o").cast(pl.Float32)).lazy()
    names = ["a", "b", "o"]
    halves = pl.concat([ex.partial_sums(raw.slice(0, 15), names), ex.partial_sums(raw.slice(15), names)])
    st = ex.cross_section_stats(halves, names).collect()
    out = ex.standardise(raw, st, ["a", "b"], ["o"]).collect()
    xf = x.astype(np.float32).astype(np.float64)
    z = np.clip((xf - xf.mean()) / xf.std(ddof=1), -5, 5)
    np.testing.assert_allclose(out["a"].to_numpy(), z, rtol=1e-5, atol=1e-6)
    assert out["a"][0] == pytest.approx(5.0)
    assert out["b"].null_count() == n - 1 and out["b"][-1] == 0.0  # one company: present, no spread -> 0
    assert out["o"].to_list() == [0.0] * n  # optional and missing -> the mean, 0


def test_built_features_are_cross_sectionally_standardised(market_store: Callable[..., Store], raw_of: RawOf,
                                                           cfg: ViewsConfig, tmp_path: Path) -> None:
    store = market_store(n_equities=8, n_days=320)
    build_views(store, tmp_path / "views", cfg, progress=False)
    x = pl.read_parquet(tmp_path / "views" / "explicit.parquet")
    raw = raw_of(store, cfg)
    day = x["date"].unique().sort()[300]
    got = x.filter(pl.col("date") == day).sort("ticker")
    base = raw.filter(pl.col("date") == day).sort("ticker")
    for name in ("mom_21", "beta_mkt", "drawdown", "liquidity"):
        v = base[name].cast(pl.Float64).to_numpy()
        np.testing.assert_allclose(got[name].to_numpy(), (v - v.mean()) / v.std(ddof=1), rtol=1e-4, atol=1e-5)


def test_sectors_one_hot_equities_only(market_data: Callable[..., tuple[pl.DataFrame, pl.DataFrame]],
                                       store_of: Callable[..., Store], tmp_path: Path, cfg: ViewsConfig) -> None:
    prices, meta = market_data(n_equities=4, n_days=300)
    store = store_of(prices, meta.filter(pl.col("ticker") != "E03"))  # E03: no metadata
    summary = build_views(store, tmp_path / "v", cfg, progress=False)
    assert [f for f in summary.feature_names if f.startswith("sector_")] == [
        "sector_energy", "sector_tech", "sector_unknown"]
    x = pl.read_parquet(tmp_path / "v" / "explicit.parquet")
    assert sorted(x["ticker"].unique().to_list()) == ["E00", "E01", "E02", "E03"]  # no index, no ETF
    row = x.filter(pl.col("ticker") == "E03").row(0, named=True)
    assert (row["sector_energy"], row["sector_tech"], row["sector_unknown"]) == (0.0, 0.0, 1.0)
    assert x.select(pl.sum_horizontal(pl.col("^sector_.*$")).alias("s"))["s"].to_list() == [1.0] * x.height


def test_optional_features_never_mask(market_data: Callable[..., tuple[pl.DataFrame, pl.DataFrame]],
                                     store_of: Callable[..., Store], tmp_path: Path, cfg: ViewsConfig) -> None:
    prices, meta = market_data(n_equities=3, n_days=330)
    late_etf = pl.col("ticker") != "MTUM"
    cut = prices.filter(pl.col("ticker") == "MTUM")["date"][280]
    prices = prices.filter(late_etf | (pl.col("date") >= cut)).with_columns(volume=pl.lit(None, pl.Float64))
    store = store_of(prices, meta)
    build_views(store, tmp_path / "v", cfg, progress=False)
    x = pl.read_parquet(tmp_path / "v" / "explicit.parquet")
    assert x["liquidity"].unique().to_list() == [0.0]
    assert x.filter(pl.col("date") < cut)["beta_etf_MTUM"].unique().to_list() == [0.0]
    vt = load_view_tensors(tmp_path / "v")
    t = vt.date_index(x["date"].unique().sort()[270])  # before the ETF exists, no volume anywhere
    assert bool(vt.explicit_mask[:, t].all())


def test_downside_volatility_of_a_run_without_losses_is_zero_not_nan(
        market_data: Callable[..., tuple[pl.DataFrame, pl.DataFrame]], store_of: Callable[..., Store], raw_of: RawOf,
        cfg: ViewsConfig, tmp_path: Path) -> None:
    """The rolling mean of the squared losses is a running sum: over 21 days without a loss it can leave -5e-21,
    whose square root was NaN, and one NaN made its date's cross-sectional mean, so every company's z, NaN."""
    prices, meta = market_data(n_equities=2, n_days=320, seed=4)
    e = prices.filter(pl.col("ticker") == "E01").sort("date")
    r = np.diff(np.log(e["adj_close"].to_numpy()))
    r[250:275] = np.abs(r[250:275])  # a 25-day run without a loss (seed 4: the running sum ends below 0)
    close = e["adj_close"][0] * np.exp(np.r_[0.0, np.cumsum(r)])
    e = e.with_columns(pl.Series("adj_close", close), pl.Series("close", close))
    store = store_of(pl.concat([prices.filter(pl.col("ticker") != "E01"), e]), meta)
    raw = raw_of(store, cfg).filter(pl.col("ticker") == "E01")
    run = raw["dvol_21"].slice(250 + 21, 4)  # windows entirely inside the run
    assert not raw["dvol_21"].is_nan().any() and run.null_count() == 0 and float(run.abs().max()) < 1e-9  # type: ignore[arg-type]
    build_views(store, tmp_path / "v", cfg, progress=False)
    x = pl.read_parquet(tmp_path / "v" / "explicit.parquet")
    assert not any(x[c].is_nan().any() for c in x.columns[2:])


def test_compiled_features_match_the_polars_steps(market_data: Callable[..., tuple[pl.DataFrame, pl.DataFrame]],
                                                  store_of: Callable[..., Store]) -> None:
    """ex.raw_feature_arrays (the build's kernel) == ex.raw_features (polars' rolling kernels) on a market with a
    late listing, a gap, an ETF, zero volume for a month and a flat price for three months; where every return
    of a window is 0 the kernel's spread is exactly 0 (no running-sum residue) and skew, kurtosis are null."""
    from dynmix.views.implicit import add_returns, date_grid, on_grid, trailing_std
    from dynmix.views.market import choose_market, market_frame

    prices, meta = market_data(n_equities=5, n_days=520, etfs=("MTUM", "QUAL"))
    dates = prices["date"].unique().sort()
    prices = prices.filter(~((pl.col("ticker") == "E01") & (pl.col("date") < dates[90]))
                           & ~((pl.col("ticker") == "E03") & pl.col("date").is_between(dates[300], dates[310])))
    flat = (pl.col("ticker") == "E02") & pl.col("date").is_between(dates[350], dates[440])
    prices = prices.with_columns(pl.when(flat).then(40.0).otherwise(pl.col(c)).alias(c) for c in ("close", "adj_close"))
    idle = (pl.col("ticker") == "E04") & pl.col("date").is_between(dates[200], dates[240])
    prices = prices.with_columns(pl.when(idle).then(0.0).otherwise(pl.col("volume")).alias("volume"))
    store = store_of(prices, meta)
    equities, etfs = ["E00", "E01", "E02", "E03", "E04"], ["MTUM", "QUAL"]
    grid = date_grid(store.scan_prices().filter(pl.col("ticker").is_in(equities))).collect()
    panel = add_returns(on_grid(store.scan_prices(), grid, 300)).with_columns(ex.dollar_volume()).collect()
    market = market_frame(panel.lazy(), grid.lazy(), equities, choose_market(meta, set(meta["ticker"]), None),
                          100, 21).collect()
    factors = ex.factor_returns(market.lazy(), panel.lazy(), etfs).collect().sort("gidx")
    eq = panel.filter(pl.col("ticker").is_in(equities))
    want = ex.raw_features(eq.lazy(), factors, etfs, extra=(trailing_std(pl.col("ret"), 100).alias("_sd"),)
                           ).filter(pl.col("live")).collect()

    g = eq["gidx"].to_numpy()
    fac = factors.select("_m", "_e_MTUM", "_e_QUAL").to_numpy(order="fortran").T[:, np.clip(g, 0, None)]
    x, sd = ex.raw_feature_arrays(eq["ticker"].rle_id().to_numpy().astype(np.int64), eq["ret"].to_numpy(),
                                  eq["lp_ff"].to_numpy(), eq["dollar"].to_numpy(), np.ascontiguousarray(fac),
                                  eq["live"].to_numpy(), 100)
    names = ex.feature_names(etfs)
    assert x.shape == (len(names), want.height) and x.dtype == np.float32
    in_flat = (want["ticker"] == "E02").to_numpy() & (want["date"] >= dates[350 + 63]).to_numpy() & (
        want["date"] <= dates[440]).to_numpy()  # every return of the 63-day window is 0
    for j, name in enumerate(names):
        a, b = x[j], want[name].cast(pl.Float32).fill_null(np.nan).to_numpy()
        checked = ~in_flat if name in ("vol_21", "vol_63", "dvol_21", "dvol_63", "skew", "kurt") else slice(None)
        np.testing.assert_allclose(a[checked], b[checked], rtol=2e-5, atol=2e-7, equal_nan=True, err_msg=name)
        assert np.isnan(a).sum() < len(a), name
    sd_want = want["_sd"].fill_null(np.nan).to_numpy()
    np.testing.assert_allclose(sd, sd_want, rtol=1e-9, equal_nan=True)
    assert (x[names.index("vol_63")][in_flat] == 0.0).all() and (x[names.index("dvol_21")][in_flat] == 0.0).all()
    assert np.isnan(x[names.index("skew")][in_flat]).all() and np.isnan(x[names.index("kurt")][in_flat]).all()
    idle_rows = (want["ticker"] == "E04").to_numpy() & (want["date"] >= dates[220]).to_numpy() & (
        want["date"] <= dates[240]).to_numpy()  # 21 days of zero dollar volume: log 0 -> null
    assert np.isnan(x[names.index("liquidity")][idle_rows]).all()
