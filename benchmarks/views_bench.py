"""Cases of the views benchmark, each run in a fresh process by `harness.run_case`.

    prepare_case   write the synthetic markets (N tickers x Y years) the other cases read (not timed)
    polars_case    dynmix.views.build.build_views: seconds and peak memory
    pandas_case    the pandas reference (views_pandas.build_views_pandas), optionally on the first M tickers

Both cases build whole-window views (`partial_history = false`, `LIKE_FOR_LIKE`): the pandas reference has no
partial-history mode, and the default polars build (partial history) does more work (expanding factor fits, the
short_history feature), so timing the default against the reference would not compare the same output.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import measure
from dynmix.config import ViewsConfig
from dynmix.data.store import Store
from dynmix.workspace import Workspace

SEED = 0
SECTORS = 10
LIKE_FOR_LIKE = ViewsConfig(partial_history=False)  # what the pandas reference builds


def market_home(home: str | Path, tickers: int, years: float) -> Workspace:
    """The workspace of the synthetic market of `tickers` x `years` under the benchmark's `home`."""
    return Workspace(Path(home) / f"market-{tickers}x{years:g}y")


def prepare_case(home: str, sizes: list[int], years: float) -> dict[str, Any]:
    """Write each market once (a store already written for the same arguments is kept)."""
    from dynmix.data.sources.synthetic import generate_market, write_market

    done: dict[str, Any] = {}
    for n in sizes:
        ws = market_home(home, n, years)
        marker = ws.home / "market.txt"
        sectors = min(SECTORS, n // 2)
        description = f"tickers={n} years={years:g} sectors={sectors} seed={SEED}"
        if marker.exists() and marker.read_text() == description:
            continue
        shutil.rmtree(ws.home, ignore_errors=True)
        t0 = time.perf_counter()
        market = generate_market(n, sectors, years, SEED)
        write_market(Store(ws.store), market)
        marker.write_text(description)
        done[str(n)] = {"seconds": time.perf_counter() - t0, "price_rows": market.prices.height}
    return {"written": done}


def polars_case(home: str, tickers: int, years: float, repeats: int, warmup: int,
                budget_s: float | None = None) -> dict[str, Any]:
    from dynmix.views.build import build_views

    ws = market_home(home, tickers, years)
    out: dict[str, Any] = {}

    def build() -> None:
        s = build_views(Store(ws.store), ws.views, LIKE_FOR_LIKE, progress=False)
        out.update(n_tickers=s.n_tickers, n_dates=s.n_dates, n_features=len(s.feature_names))

    timing = measure(build, repeats, warmup, budget_s)
    return {"timing": timing, **out, "rows": _rows(ws.views / "returns.parquet"), "partial_history": False}


def pandas_case(home: str, tickers: int, years: float, repeats: int, warmup: int, max_tickers: int | None = None,
                budget_s: float | None = None) -> dict[str, Any]:
    from benchmarks.views_pandas import build_views_pandas

    ws = market_home(home, tickers, years)
    target = ws.home / "views-pandas"
    counted: list[int] = []
    timing = measure(lambda: counted.append(build_views_pandas(Store(ws.store), target, LIKE_FOR_LIKE, max_tickers)),
                     repeats, warmup, budget_s)
    return {"timing": timing, "n_tickers": counted[-1], "rows": _rows(target / "returns.parquet"),
            "partial_history": False}


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)
