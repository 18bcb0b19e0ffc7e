"""A small synthetic market with a factor ETF, written to a store, for the benchmark tests."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest

from dynmix.data.sources.synthetic import generate_market, write_market
from dynmix.data.store import Store

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `benchmarks` is a folder of the checkout, not an installed package
    sys.path.insert(0, str(ROOT))


@pytest.fixture
def etf_market(tmp_path: Path) -> Store:
    """12 companies x 2 years, the ^MKT index, and an ETF 'XLF' (a company's prices, every 17th day missing)."""
    market = generate_market(12, 4, 2.0, seed=3)
    store = Store(tmp_path / "store")
    write_market(store, market)
    etf = (market.prices.filter(pl.col("ticker") == "S0002")
           .with_columns(pl.lit("XLF").alias("ticker"), pl.lit(None, pl.Float64).alias("volume"))
           .filter(pl.int_range(pl.len()) % 17 != 5))
    store.upsert_prices(etf)
    store.upsert_meta(pl.DataFrame({"ticker": ["XLF"], "name": ["ETF"], "sector": ["Unknown"],
                                    "industry": ["ETF"], "asset_type": ["etf"]}))
    return store
