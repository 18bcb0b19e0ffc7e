"""The synthetic market: seeded, canonical, with planted sectors, regimes, late listings and missing rows."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from dynmix.data.schema import validate_meta, validate_prices
from dynmix.data.sources import synthetic_model as sm
from dynmix.data.sources.synthetic import INDEX_TICKER, SyntheticMarket, generate_market, write_market
from dynmix.data.store import Store
from dynmix.errors import DynMIXError

N, K, YEARS, SEED = 40, 4, 2, 1


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    return generate_market(N, K, YEARS, SEED)


@pytest.fixture(scope="module")
def returns(market: SyntheticMarket) -> pl.DataFrame:
    """Daily log returns of every company beside the index's and the truth (date, regime, market_return)."""
    p = market.prices.with_columns(pl.col("close").log().diff().over("ticker", order_by="date").alias("r"))
    index = p.filter(pl.col("ticker") == INDEX_TICKER).select("date", pl.col("r").alias("r_mkt"))
    return (p.filter(pl.col("ticker") != INDEX_TICKER).join(index, on="date").join(market.truth, on="date")
            .drop_nulls(["r", "r_mkt"]).join(market.meta.select("ticker", "sector", "beta"), on="ticker"))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_same_files_and_another_seed_another_market(tmp_path: Path, market: SyntheticMarket) -> None:
    again = generate_market(N, K, YEARS, SEED)
    assert again.prices.equals(market.prices) and again.meta.equals(market.meta) and again.truth.equals(market.truth)
    a, b = Store(tmp_path / "a"), Store(tmp_path / "b")
    write_market(a, market)
    write_market(b, again)
    for name in ("prices", "meta", "truth"):
        assert _digest(a.root / f"{name}.parquet") == _digest(b.root / f"{name}.parquet"), name
    other = generate_market(N, K, YEARS, SEED + 1)
    assert not np.allclose(other.prices["close"][:100].to_numpy(), market.prices["close"][:100].to_numpy())
    assert not other.meta["sector"].equals(market.meta["sector"])


def test_prices_are_canonical_and_consistent(market: SyntheticMarket) -> None:
    p = market.prices
    assert validate_prices(p).equals(p)  # already valid, cast and sorted
    assert p["ticker"].n_unique() == N + 1
    assert (p["low"] <= p["open"]).all() and (p["low"] <= p["close"]).all()
    assert (p["high"] >= p["open"]).all() and (p["high"] >= p["close"]).all()
    assert (p["low"] > 0).all() and (p["volume"] > 0).all() and p["adj_close"].equals(p["close"], check_names=False)
    assert (p["date"].dt.weekday() <= 5).all()
    t = market.truth.height
    assert p.filter(pl.col("ticker") == INDEX_TICKER).height == t  # the index trades every day
    assert market.truth.columns[:3] == ["date", "regime", "market_vol"]
    assert set(market.truth["regime"].unique().to_list()) == {0, 1}


def test_meta_names_sectors_and_the_index(market: SyntheticMarket) -> None:
    meta = validate_meta(market.meta)
    companies = meta.filter(pl.col("asset_type") == "equity")
    assert companies["ticker"].to_list()[:2] == ["S0001", "S0002"]
    assert sorted(companies["sector"].unique().to_list()) == [f"Sector {i:02d}" for i in range(K)]
    assert companies.group_by("sector").len()["len"].to_list() == [N // K] * K  # balanced
    assert (companies["industry"] == "Synthetic").all()
    index = meta.filter(pl.col("asset_type") == "index")
    assert index["ticker"].to_list() == [INDEX_TICKER]
    # the planted profile: one shuffled grid point per sector, a little jitter inside
    spread = companies.group_by("sector").agg(pl.col("beta").std().alias("sd"), pl.col("beta").mean().alias("mu"))
    assert spread["sd"].max() < 0.05 < 0.3 < spread["mu"].max() - spread["mu"].min()


def test_planted_profiles_separate_sectors_in_the_data(returns: pl.DataFrame) -> None:
    beta = returns.group_by("ticker").agg(
        (pl.cov("r", "r_mkt") / pl.col("r_mkt").var()).alias("to_index"),
        (pl.cov("r", "market_return") / pl.col("market_return").var()).alias("to_factor"),
        pl.col("sector").first(), pl.col("beta").first(),
    )
    by_sector = beta.group_by("sector").agg(pl.col("to_index").std().alias("sd"), pl.col("to_index").mean().alias("mu"))
    assert by_sector["sd"].mean() < 0.25 * by_sector["mu"].std()  # realised betas cluster by sector
    assert np.corrcoef(beta["to_factor"], beta["beta"])[0, 1] > 0.9  # ... around the planted ones


def test_regimes_are_visible_in_market_volatility(returns: pl.DataFrame, market: SyntheticMarket) -> None:
    index = returns.unique("date").sort("date")
    calm = index.filter(pl.col("regime") == 0)["r_mkt"].std()
    turbulent = index.filter(pl.col("regime") == 1)["r_mkt"].std()
    assert turbulent > 1.8 * calm  # type: ignore[operator]
    vol = market.truth.group_by("regime").agg(pl.col("market_vol").min().alias("lo"), pl.col("market_vol").max())
    vol = vol.sort("regime")
    assert vol["lo"][1] > vol["market_vol"][0]  # the true vol is higher in every turbulent day
    volume = returns.group_by("regime").agg(pl.col("volume").median()).sort("regime")["volume"]
    assert volume[1] > volume[0]


def test_late_listings_and_scattered_missing_rows(market: SyntheticMarket) -> None:
    first_day = market.truth["date"][0]
    cover = market.prices.group_by("ticker").agg(pl.col("date").min().alias("first"), pl.len().alias("rows"))
    cover = cover.join(market.meta.select("ticker", "listed"), on="ticker")
    late = cover.filter(pl.col("first") > first_day)
    assert late.height == round(0.1 * N)
    companies = cover.filter(pl.col("ticker") != INDEX_TICKER)
    assert (companies["first"] == companies["listed"]).all()
    dates = market.truth["date"]
    expected = sum(int((dates >= d).sum()) for d in companies["listed"])
    missing = expected - int(companies["rows"].sum())
    assert 0 < missing < 0.003 * expected


def test_scaled_student_t_has_unit_variance_quantiles() -> None:
    z = sm.student_t((200, 5_000), 4.0, np.random.default_rng(0)).ravel()
    q = np.array([0.01, 0.1, 0.25, 0.75, 0.9, 0.99])
    expected = stats.t.ppf(q, 4.0) * np.sqrt(2.0 / 4.0)
    np.testing.assert_allclose(np.quantile(z, q), expected, atol=0.02)


@pytest.mark.parametrize(("n", "k", "years", "fragment"), [
    (7, 4, 2, "at least 2 tickers per sector"),
    (10, 0, 2, "at least 1 sector"),
    (10, 2, 0, "positive number of years"),
    (10, 2, -1, "positive number of years"),
    (50_000, 10, 25, "at most 150,000,000"),
])
def test_bad_arguments_raise(n: int, k: int, years: float, fragment: str) -> None:
    with pytest.raises(DynMIXError, match=fragment):
        generate_market(n, k, years, 0)
    with pytest.raises(DynMIXError, match="seed >= 0"):
        generate_market(10, 2, 1, -1)


def test_refuses_foreign_data_unless_replace(tmp_path: Path, market: SyntheticMarket, prices: pl.DataFrame) -> None:
    store = Store(tmp_path / "store")
    store.write_prices(prices)
    store.upsert_manifest(store.manifest_from_prices("csv"))
    before = _digest(store.prices_path)
    with pytest.raises(DynMIXError, match="holds data from csv.*--replace"):
        write_market(store, market)
    assert _digest(store.prices_path) == before and store.read_extra("truth") is None
    write_market(store, market, replace=True)
    assert store.tickers() == sorted(market.meta["ticker"].to_list())
    assert set(store.read_manifest()["source"].to_list()) == {"synthetic"}


def test_prices_without_a_manifest_count_as_foreign(tmp_path: Path, market: SyntheticMarket,
                                                    prices: pl.DataFrame) -> None:
    store = Store(tmp_path / "store")
    store.write_prices(prices)
    with pytest.raises(DynMIXError, match="unknown"):
        write_market(store, market)


def test_a_synthetic_store_is_replaced_whole(tmp_path: Path, market: SyntheticMarket) -> None:
    store = Store(tmp_path / "store")
    write_market(store, market)
    smaller = generate_market(10, 2, 1, seed=5)
    write_market(store, smaller)
    tickers = sorted(smaller.meta["ticker"].to_list())
    assert store.tickers() == tickers
    assert store.read_meta()["ticker"].to_list() == tickers
    manifest = store.read_manifest()
    assert manifest["ticker"].to_list() == tickers and (manifest["message"] == smaller.description).all()
    truth = store.read_extra("truth")
    assert truth is not None and truth.equals(smaller.truth)
    rows = dict(zip(manifest["ticker"], manifest["rows"], strict=True))
    assert rows == dict(smaller.prices.group_by("ticker").len().iter_rows())


@pytest.mark.slow
def test_full_scale_market_builds_and_writes_within_a_minute(tmp_path: Path) -> None:
    """5,000 tickers x 25 years (~32 M rows), generated, validated and written end to end by the CLI."""
    import os
    import time

    from typer.testing import CliRunner

    from dynmix.cli import app

    t0 = time.perf_counter()
    result = CliRunner().invoke(app, ["--home", str(tmp_path), "data", "synth", "--tickers", "5000",
                                      "--sectors", "10", "--years", "25", "--seed", "0"])
    seconds = time.perf_counter() - t0
    assert result.exit_code == 0, result.output
    assert seconds < 60, f"{seconds:.1f} s (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    assert Store(tmp_path / "store").scan_prices().select(pl.len()).collect().item() > 30_000_000


def test_start_rolls_to_a_business_day_and_years_set_the_length() -> None:
    import datetime as dt

    m = generate_market(4, 2, 1, 0, start=dt.date(2010, 1, 2))  # a Saturday
    dates = m.truth["date"]
    assert dates[0] == dt.date(2010, 1, 4) and dates[-1] < dt.date(2011, 1, 2)
    assert 255 <= dates.len() <= 262 and m.description.endswith("start=2010-01-02")


def _sector_corr(m: SyntheticMarket, regime: int) -> tuple[np.ndarray, list[str], list[str]]:
    """(N, N) correlation of the companies' returns on `regime`'s dates, their sectors and stressed sectors."""
    meta = m.meta.filter(pl.col("asset_type") == "equity").sort("ticker")
    wide = (m.prices.filter(pl.col("ticker") != INDEX_TICKER)
            .with_columns(pl.col("close").log().diff().over("ticker", order_by="date").alias("r"))
            .join(m.truth, on="date").filter(pl.col("regime") == regime)
            .pivot(on="ticker", index="date", values="r").drop_nulls())
    r = wide.select(meta["ticker"].to_list()).to_numpy()  # (T_regime, N)
    stressed = meta["stressed_sector"].to_list() if "stressed_sector" in meta.columns else []
    return np.corrcoef(r.T), meta["sector"].to_list(), stressed


def test_regime_market_merges_sector_pairs_when_turbulent() -> None:
    plain = generate_market(N, K, 6, SEED)
    rm = generate_market(N, K, 6, SEED, params=sm.SynthParams(regime_sectors=True))
    assert "stressed_sector" not in plain.meta.columns and "regime-sectors" in rm.description
    assert plain.truth["regime"].equals(rm.truth["regime"])  # same draws: only the structure changes
    meta = rm.meta.filter(pl.col("asset_type") == "equity")
    assert meta["stressed_sector"].n_unique() == K // 2

    def calm_returns(m: SyntheticMarket) -> np.ndarray:
        r = (m.prices.filter(pl.col("ticker") != INDEX_TICKER).sort("ticker", "date")
             .with_columns(pl.col("close").log().diff().over("ticker").alias("r")).join(m.truth, on="date")
             .filter(pl.col("regime") == 0))
        return r["r"].to_numpy()

    assert 0 < rm.truth["regime"].sum() < rm.truth.height
    # calm days untouched (but for a few whose previous row is missing and the gap spans a turbulent day)
    assert np.isclose(calm_returns(rm), calm_returns(plain), rtol=1e-6, equal_nan=True).mean() > 0.999

    def cross_mean(regime: int) -> tuple[float, float]:
        """Mean correlation of different-sector pairs in the same stressed group, and in different groups."""
        c, sec, grp = _sector_corr(rm, regime)
        n = len(sec)
        same_grp = [c[i, j] for i in range(n) for j in range(i) if sec[i] != sec[j] and grp[i] == grp[j]]
        other = [c[i, j] for i in range(n) for j in range(i) if grp[i] != grp[j]]
        return float(np.mean(same_grp)), float(np.mean(other))

    calm_pair, calm_other = cross_mean(0)
    stress_pair, stress_other = cross_mean(1)
    assert stress_pair - stress_other > 0.15  # when turbulent, paired sectors move together ...
    assert abs(calm_pair - calm_other) < 0.1  # ... when calm they are as apart as any two sectors
    assert stress_other > calm_other  # and correlations rise overall


@pytest.mark.parametrize("regime_sectors", [False, True])
def test_true_variance_is_the_expected_squared_return(regime_sectors: bool) -> None:
    mk = generate_market(60, 4, 3, 2, params=sm.SynthParams(regime_sectors=regime_sectors))
    assert mk.true_variance is not None
    r = (mk.prices.filter(pl.col("ticker") != INDEX_TICKER)
         .with_columns(pl.col("close").log().diff().over("ticker", order_by="date").alias("r"))
         .join(mk.true_variance, on=["date", "ticker"], how="inner").join(mk.truth, on="date")
         .drop_nulls("r"))
    assert mk.true_variance.height == mk.prices.height - mk.truth.height  # every company row, not the index
    # r² / E[r²] has mean 1 when E[r²] is right, in both regimes (a missing row makes one 2-day return: few)
    ratio = r.with_columns((pl.col("r") ** 2 / pl.col("variance")).alias("x")).group_by("regime").agg(
        pl.col("x").mean(), pl.len()).sort("regime")
    assert ratio["len"].min() > 2000  # type: ignore[operator]
    assert np.allclose(ratio["x"].to_numpy(), 1.0, atol=0.06), ratio
    # and it knows more than the regime: within a regime it ranks the squared returns
    rho = r.group_by("regime").agg(pl.corr(pl.col("r") ** 2, "variance", method="spearman").alias("rho"))
    assert (rho["rho"] > 0.15).all()


def test_the_store_keeps_the_true_variance_of_the_market_it_holds(tmp_path: Path, market: SyntheticMarket) -> None:
    store = Store(tmp_path / "store")
    write_market(store, market)
    stored = store.read_extra("true_variance")
    assert stored is not None and stored.equals(market.true_variance)
    write_market(store, dataclasses.replace(market, true_variance=None), replace=True)  # a market too big for it
    assert store.read_extra("true_variance") is None


def test_held_out_like_market_correlated_pairs_crash_and_delistings() -> None:
    """Markets built like a held-out one: sector pair (0, 1) correlated at all times, a 40-day crash (regime 2),
    a tenth of the companies delisted; prices stay canonical and E[r²] stays right."""
    p = sm.SynthParams(corr_pairs=1, crash_at=0.5, delist_share=0.1)
    mk = generate_market(64, 4, 3, 3, params=p)
    validate_prices(mk.prices)
    regime = mk.truth["regime"].to_numpy()
    at = int(0.5 * regime.shape[0])
    assert (regime[at:at + p.crash_days] == 2).all() and (regime == 2).sum() == p.crash_days
    assert np.allclose(mk.truth["market_vol"].to_numpy()[regime == 2], p.crash_vol)
    end = mk.truth["date"].max()
    span = mk.prices.filter(pl.col("ticker") != INDEX_TICKER).group_by("ticker").agg(
        pl.col("date").max().alias("last"), pl.len().alias("rows"))
    delisted = span.filter(pl.col("last") < end)
    assert delisted.height == round(0.1 * 64)
    assert (delisted["last"] >= mk.truth["date"][regime.shape[0] // 2 - 1]).all()  # in the second half
    # sector-mean returns (market removed): the correlated pair beside an uncorrelated one
    r = (mk.prices.with_columns(pl.col("close").log().diff().over("ticker", order_by="date").alias("r"))
         .drop_nulls("r").join(mk.meta.select("ticker", "sector"), on="ticker"))
    wide = r.group_by("date", "sector").agg(pl.col("r").mean()).pivot("sector", index="date", values="r").sort("date")
    x = wide.drop("date").to_pandas()
    x = x.sub(x.mean(axis=1), axis=0)  # remove the common (market) part
    names = sorted(x.columns)
    c = x[names].corr().to_numpy()
    assert c[0, 1] - c[2, 3] > 0.2, c
    assert mk.true_variance is not None
    ratio = (r.join(mk.true_variance, on=["date", "ticker"]).select((pl.col("r") ** 2 / pl.col("variance")).mean())
             .item())
    assert abs(ratio - 1.0) < 0.08
    with pytest.raises(ValueError, match="crash_at"):
        generate_market(16, 2, 1, 0, params=sm.SynthParams(crash_at=1.5))


@pytest.mark.parametrize("params", [sm.SynthParams(), sm.SynthParams(regime_sectors=True, corr_pairs=1, crash_at=0.5)])
def test_true_factors_are_the_factor_model_of_the_true_variance(params: sm.SynthParams) -> None:
    """Each company's mean and loadings from `true_factors` (per unit of its planted beta, sector loading and
    idiosyncratic volatility) give back E[r²] = mean² + Σ loading² of every row, and the pairs of companies'
    realised cross products average to the factor model's covariance (per day, over the days)."""
    mk = generate_market(24, 4, 3, 5, params=params)
    assert mk.true_variance is not None
    expo = mk.meta.filter(pl.col("asset_type") == "equity").select("ticker", "sector", "beta", "sector_loading",
                                                                 "idio_vol")
    x = (mk.true_factors.join(expo, on="sector")
         .with_columns(pl.when(pl.col("factor") == "market").then(pl.col("beta"))
                       .when(pl.col("factor") == "idio").then(pl.col("idio_vol"))
                       .otherwise(pl.col("sector_loading")).alias("x")))
    rows = x.group_by("date", "ticker").agg((pl.col("x") * pl.col("mean")).sum().alias("mu"),
                                            ((pl.col("x") * pl.col("loading")) ** 2).sum().alias("var"))
    both = rows.join(mk.true_variance, on=["date", "ticker"])
    assert both.height == mk.true_variance.height
    assert np.allclose(both["mu"] ** 2 + both["var"], both["variance"], rtol=1e-5)
    # covariance: Σ_{i<j} (r_i − μ_i)(r_j − μ_j) over days against Σ_{i<j} B_i·B_j (the shared factors only)
    r = (mk.prices.with_columns(pl.col("close").log().diff().over("ticker", order_by="date").alias("r"))
         .join(rows, on=["date", "ticker"]).drop_nulls("r"))
    shared = (x.filter(pl.col("factor") != "idio").join(r.select("date", "ticker"), on=["date", "ticker"])
              .with_columns((pl.col("x") * pl.col("loading")).alias("b")))  # the companies trading that day
    days = r.with_columns((pl.col("r") - pl.col("mu")).alias("e")).group_by("date").agg(
        ((pl.col("e").sum() ** 2 - (pl.col("e") ** 2).sum()) / 2).alias("realised"))
    model = shared.group_by("date", "factor").agg(((pl.col("b").sum() ** 2 - (pl.col("b") ** 2).sum()) / 2)
                                                  .alias("cov")).group_by("date").agg(pl.col("cov").sum())
    cmp = days.join(model, on="date")
    ratio = cmp["realised"] / cmp["cov"]  # mean 1 when the covariance is right (~0.06 standard error here)
    assert abs(float(ratio.mean()) - 1.0) < 0.18


def test_a_market_larger_than_the_free_memory_is_refused_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    from dynmix import host

    monkeypatch.setattr(host, "available_bytes", lambda: 2**30)  # 1 GiB free
    generate_market(200, 4, 1, 0)  # 52,200 rows fit
    with pytest.raises(DynMIXError, match=r"1\.0 GiB available"):
        generate_market(20_000, 10, 3, 0)  # 15.7 M rows: ~1.5 GiB
