"""The fast layout and sums: unsorted stores, duplicate rows, per-date sums against polars' group_by."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from dynmix.views import explicit as ex
from dynmix.views import kernels
from dynmix.views.implicit import date_grid, grid_layout, stored_rows
from dynmix.views.market import market_series, return_sums


def _prices(rows: list[tuple[str, int, float]]) -> pl.DataFrame:
    day0 = dt.date(2020, 1, 1)
    return pl.DataFrame({"ticker": [r[0] for r in rows], "date": [day0 + dt.timedelta(days=r[1]) for r in rows],
                         "close": [r[2] for r in rows]}).with_columns(adj_close=pl.col("close"), volume=pl.lit(1.0))


def test_stored_rows_sorts_and_keeps_one_row_per_day() -> None:
    prices = _prices([("B", 2, 1.0), ("A", 3, 2.0), ("A", 0, 3.0), ("B", 2, 4.0), ("A", 7, 5.0)])
    grid = date_grid(prices.filter(pl.col("date") != dt.date(2020, 1, 8)).lazy()).collect()  # day 7: off the grid
    obs = stored_rows(prices.lazy(), grid)
    assert obs.select("ticker", "gidx").rows() == [("A", 0), ("A", 2), ("B", 1)]
    assert obs.filter(pl.col("ticker") == "B")["close"].to_list() == [4.0]  # the later duplicate wins
    plan = grid_layout(obs, guard=2)  # A: 2 guard rows + days 0..2; B: 2 guard rows + day 1
    assert plan["gidx"].to_list() == [-2, -1, 0, 1, 2, -1, 0, 1]
    assert plan["live"].to_list() == [False, False, True, True, True, False, False, True]
    assert plan["_src"].to_list() == [3, 3, 0, 3, 1, 3, 3, 2]  # 3 = the null row past obs


def test_partial_sums_match_a_group_by() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=500)
    x[rng.random(500) < 0.2] = np.nan
    raw = pl.DataFrame({"gidx": rng.integers(0, 30, 500), "a": x}).with_columns(pl.col("a").fill_nan(None))
    got = ex.partial_sums(raw, ["a"]).collect().filter(pl.col("_n_a") > 0)
    want = raw.group_by("gidx").agg(pl.col("a").count().alias("n"), pl.col("a").sum().alias("s"),
                                    (pl.col("a") ** 2).sum().alias("q")).sort("gidx")
    want = want.filter(pl.col("n") > 0)
    assert got["gidx"].to_list() == want["gidx"].to_list() and got["_n_a"].to_list() == want["n"].to_list()
    np.testing.assert_allclose(got["_s_a"].to_numpy(), want["s"].to_numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got["_q_a"].to_numpy(), want["q"].to_numpy(), rtol=1e-12)


def test_equal_weight_market_from_return_sums() -> None:
    rng = np.random.default_rng(1)
    rows = pl.DataFrame({"gidx": np.repeat(np.arange(40), 5), "ret": rng.normal(0.0, 0.01, 200)})
    rows = rows.with_columns(pl.when(pl.int_range(200) % 7 != 3).then(pl.col("ret")))  # some missing
    rows = rows.filter(~((pl.col("gidx") == 4) & (pl.int_range(200) % 5 != 0)))  # day 4: one company
    grid = pl.DataFrame({"date": [dt.date(2020, 1, 1) + dt.timedelta(days=k) for k in range(40)],
                         "gidx": range(40)})
    m = market_series(grid, return_sums(rows, 40), None, 10, 5)
    want = rows.group_by("gidx").agg(pl.col("ret").mean().alias("ew"), pl.col("ret").std().alias("sd")).sort("gidx")
    np.testing.assert_allclose(m["mkt_ret"].to_numpy(), want["ew"].to_numpy(), rtol=1e-12)
    disp = want["sd"].rolling_mean(5, min_samples=1)
    np.testing.assert_allclose(m["dispersion"].to_numpy(), disp.to_numpy(), rtol=1e-9)
    assert want["sd"][4] is None  # one company on day 4: no dispersion


def test_compiled_cross_section_has_the_bits_of_the_polars_steps() -> None:
    """kernels.cross_sums + day_scales + standardise_rows (the build) == partial_sums, cross_section_stats and
    standardise, bit for bit: two chunks, nulls, a date with one company, a constant date, an outlier."""
    rng = np.random.default_rng(3)
    rows, names = 4_000, ["a", "b", "o"]
    g = rng.integers(0, 60, rows)
    g[:3] = 59  # day 59: only three rows...
    g[3:] = np.where(g[3:] == 59, 58, g[3:])
    cols = {n: rng.normal(0.0, 1.0 + k, rows).astype(np.float32) for k, n in enumerate(names)}
    cols["a"][g == 58] = 0.25  # no spread on day 58
    cols["a"][7] = 1e4
    cols["b"][rng.random(rows) < 0.3] = np.nan
    cols["b"][:3] = [np.nan, np.nan, 1.5]  # ... of which one has b
    cols["o"][rng.random(rows) < 0.6] = np.nan
    raw = pl.DataFrame({"gidx": g, **cols}).with_columns(pl.col(names).fill_nan(None))
    halves = [raw.slice(0, 1_700), raw.slice(1_700)]
    st = ex.cross_section_stats(pl.concat([ex.partial_sums(h, names) for h in halves]), names).collect()
    want = ex.standardise(raw.lazy(), st, ["a", "b"], ["o"]).collect()

    sums = np.zeros((len(names), 3, 60))
    for h in halves:
        sums += kernels.cross_sums(h.select(names).to_numpy(order="fortran").T, h["gidx"].to_numpy(), 60)
    mu, inv = ex.day_scales(sums)
    x = raw.select(names).to_numpy(order="fortran").T
    fill = np.array([False, False, True])
    z = kernels.standardise_rows(x, g, mu, inv, fill, ex.WINSOR, np.empty(x.shape, np.float32))
    assert x.dtype == np.float32  # as the build's raw features, which it standardises in place
    inplace = x.copy()
    assert kernels.standardise_rows(inplace, g, mu, inv, fill, ex.WINSOR, inplace) is inplace
    assert np.array_equal(inplace, z, equal_nan=True)
    for j, n in enumerate(names):
        got = pl.Series(n, z[j], nan_to_null=True)
        assert got.dtype == want[n].dtype and got.null_count() == want[n].null_count(), n
        assert (got.to_numpy().view(np.uint32)[got.is_not_null().to_numpy()]
                == want[n].to_numpy().view(np.uint32)[want[n].is_not_null().to_numpy()]).all(), n
    assert want["a"].max() == ex.WINSOR and (want["a"].filter(raw["gidx"] == 58) == 0.0).all()
    assert want["b"].filter(raw["gidx"] == 59).drop_nulls().to_list() == [0.0]
