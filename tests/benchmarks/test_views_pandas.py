"""The pandas reference gives the same views as the polars pipeline (dynmix.views.build)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from benchmarks.views_pandas import build_views_pandas
from dynmix.config import ViewsConfig
from dynmix.data.store import Store
from dynmix.views.build import build_views


@pytest.mark.parametrize("start", [None, "2000-09-01"])
def test_pandas_reference_matches_polars(etf_market: Store, tmp_path: Path, start: str | None) -> None:
    cfg = ViewsConfig(start=start, partial_history=False)  # the pandas reference builds whole-window views
    build_views(etf_market, tmp_path / "pl", cfg, progress=False)
    assert build_views_pandas(etf_market, tmp_path / "pd", cfg) == 12
    checked = 0
    for name in ("explicit", "returns", "market"):
        ours = pl.read_parquet(tmp_path / "pl" / f"{name}.parquet")
        ref = pl.read_parquet(tmp_path / "pd" / f"{name}.parquet")
        assert ours.columns == ref.columns, name
        keys = [c for c in ("date", "ticker") if c in ours.columns]
        assert ours.select(keys).equals(ref.select(keys)), name
        for col in set(ours.columns) - set(keys):
            a = ours[col].cast(pl.Float64).fill_nan(None).to_numpy()
            b = ref[col].cast(pl.Float64).fill_nan(None).to_numpy()
            assert (np.isnan(a) == np.isnan(b)).all(), f"{name}.{col}: missing values differ"
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6, equal_nan=True, err_msg=f"{name}.{col}")
            checked += int((~np.isnan(a)).sum())
    assert checked > 10_000  # real numbers were compared, not empty columns
    assert pl.read_parquet(tmp_path / "pl" / "market.parquet")["factor1_scaled"].drop_nulls().len() > 100
    names = pl.read_parquet(tmp_path / "pl" / "explicit.parquet").columns
    assert {"beta_etf_XLF", "liquidity", "skew", "kurt", "sector_sector_00"} <= set(names)


def test_subset_keeps_the_first_tickers(etf_market: Store, tmp_path: Path) -> None:
    assert build_views_pandas(etf_market, tmp_path / "pd", ViewsConfig(), max_tickers=5) == 5
    tickers = pl.read_parquet(tmp_path / "pd" / "explicit.parquet")["ticker"].unique().sort().to_list()
    assert tickers == ["S0001", "S0002", "S0003", "S0004", "S0005"]
