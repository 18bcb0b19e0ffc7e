"""Young companies and short panels: partial_history fills the year-long explicit features (with a flag) instead of
masking the sample; established companies' rows and the full-window factors keep their numbers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from dynmix.config import TrainConfig, ViewsConfig
from dynmix.data.store import Store
from dynmix.errors import DynMIXError
from dynmix.runs.split import time_split
from dynmix.views import explicit as ex
from dynmix.views.build import build_views
from dynmix.views.factors import statistical_factors
from dynmix.views.tensors import load_view_tensors


def _panel(store_dir: Path, days: int, n: int = 12, young: int = 0, young_days: int = 70, seed: int = 0) -> None:
    """n equities over `days` business days; the last `young` of them listed `young_days` days before the end."""
    rng = np.random.default_rng(seed)
    mkt = rng.normal(0.0003, 0.01, days)
    close = 50.0 * np.exp(np.cumsum((0.5 + 0.1 * np.arange(n)) * mkt[:, None]
                                    + rng.normal(0, 0.01, (days, n)), axis=0))  # (T, N)
    d0 = dt.date(2015, 1, 5)
    dates = [d for d in (d0 + dt.timedelta(k) for k in range(2 * days)) if d.weekday() < 5][:days]
    frames = []
    for j in range(n):
        first = days - young_days if j >= n - young else 0
        frames.append(pl.DataFrame({"date": dates[first:], "ticker": f"C{j:02d}", "close": close[first:, j],
                                    "volume": 1e5}))
    store = Store(store_dir)
    store.write_prices(pl.concat(frames))
    store.upsert_meta(pl.DataFrame({"ticker": [f"C{j:02d}" for j in range(n)],
                                    "sector": [f"S{j % 3}" for j in range(n)], "asset_type": "equity"}))


CFG = ViewsConfig(market_ticker="NONE", factors=2)  # default windows (60-day implicit view, 252-day features)


def test_one_year_panel_has_samples_by_default_and_a_clear_error_without(tmp_path: Path) -> None:
    _panel(tmp_path / "store", days=245)
    build_views(Store(tmp_path / "store"), tmp_path / "v", CFG, progress=False)
    vt = load_view_tensors(tmp_path / "v")
    assert ex.SHORT_HISTORY in vt.feature_names
    usable = (vt.valid().sum(dim=0) >= 2).sum()
    assert usable >= 245 - ex.MOMENT_WINDOW - 5  # from about the 63rd day on, not never
    split = time_split(vt, TrainConfig())
    assert split.n_train_dates > 100 and split.n_test_dates > 20
    flag = vt.feature(ex.SHORT_HISTORY)
    assert bool((flag[vt.valid()] == 1).all())  # no one has 252 days here: every sample is flagged

    build_views(Store(tmp_path / "store"), tmp_path / "w", ViewsConfig(market_ticker="NONE", factors=2,
                                                                       partial_history=False), progress=False)
    whole = load_view_tensors(tmp_path / "w")
    assert int(whole.valid().sum()) == 0
    with pytest.raises(DynMIXError, match=r"partial_history = false .* need 252 days"):
        time_split(whole, TrainConfig())


def test_too_short_for_the_implicit_window_names_it(tmp_path: Path) -> None:
    _panel(tmp_path / "store", days=62)
    build_views(Store(tmp_path / "store"), tmp_path / "v", CFG, progress=False)
    with pytest.raises(DynMIXError, match=r"min_window_obs = 45 .*window = 60 days.*41 usable returns"):
        time_split(load_view_tensors(tmp_path / "v"), TrainConfig())


def test_a_recent_listing_gets_samples_and_the_others_keep_their_numbers(tmp_path: Path) -> None:
    _panel(tmp_path / "store", days=400, young=2, young_days=70)
    store = Store(tmp_path / "store")
    build_views(store, tmp_path / "p", CFG, progress=False)
    build_views(store, tmp_path / "w", ViewsConfig(market_ticker="NONE", factors=2, partial_history=False),
                progress=False)
    vt = load_view_tensors(tmp_path / "p")
    valid = vt.valid()
    for t in ("C10", "C11"):  # 70 days of history: samples in their last days, flagged
        i = vt.tickers.index(t)
        assert 0 < int(valid[i].sum()) <= 70
        assert bool((vt.feature(ex.SHORT_HISTORY)[i, valid[i]] == 1).all())
    assert int(load_view_tensors(tmp_path / "w").valid()[vt.tickers.index("C10")].sum()) == 0
    # every row the whole-window build has is the same in the partial build (cross-sectional statistics come from
    # the companies that have the feature)
    whole = pl.read_parquet(tmp_path / "w" / "explicit.parquet")
    part = pl.read_parquet(tmp_path / "p" / "explicit.parquet")
    full = whole.select(pl.all_horizontal(pl.exclude("date", "ticker").is_not_null())).to_series()
    assert full.sum() > 1000
    assert part.filter(full).select(whole.columns).equals(whole.filter(full))
    assert part.filter(full)[ex.SHORT_HISTORY].sum() == 0
    returns = [pl.read_parquet(tmp_path / d / "returns.parquet") for d in ("p", "w")]
    assert returns[0].equals(returns[1])


def test_expanding_factor_fits_leave_the_full_window_fits_unchanged() -> None:
    rng = np.random.default_rng(0)
    panel = rng.standard_normal((600, 30))
    panel[:, :10] += rng.standard_normal((600, 1))
    panel[5, 3] = np.nan
    whole = statistical_factors(panel, 3, fit_window=252, refit=63)
    early = statistical_factors(panel, 3, fit_window=252, refit=63, first_fit=63)
    assert np.isnan(whole[:252]).all() and np.isnan(early[:63]).all() and not np.isnan(early[63:252]).any()
    np.testing.assert_array_equal(early[252:], whole[252:])
    with pytest.raises(ValueError, match="first_fit"):
        statistical_factors(panel, 3, fit_window=252, refit=63, first_fit=300)
