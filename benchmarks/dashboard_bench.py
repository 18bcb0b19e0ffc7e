"""Dashboard render times at N companies: `python -m benchmarks.dashboard_bench [--tickers 5000] [--years 2]`.

Writes a workspace under --home (default /tmp/dynmix-dash-bench): a synthetic market of N companies (the real
generator and store), views.json, and one run folder whose files have the shapes and sizes a run of N companies
has (embeddings through dynmix.runs.embeddings' writer, float16, every --every-th date; per-company forecast and
planner tables; metrics, gamma, split, report). The run's numbers are made up (no model is trained): a page's render
time depends on how much it reads and draws, not on what the numbers are. Then every page is opened with Streamlit's
AppTest (the script run on the server side: reading, computing, building the figures; not the browser's drawing)
three times: first (the first open in this process: empty caches, and the imports a page needs the first time),
cold cache (caches emptied again, modules already imported: what a new date or run costs on a running server)
and warm (the same page again, cached). Prints one JSON object and a Markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from dynmix.config import DynMIXConfig, save_config
from dynmix.io import append_jsonl, write_json, write_parquet, write_text
from dynmix.workspace import Workspace

APP_MAIN = Path(__file__).resolve().parents[1] / "app" / "main.py"
PAGES = ("overview", "data", "training", "embeddings", "forecasts", "planner")
RUN = "20261204-000000-bench"
D = 64
STRATEGIES = ("equal_weight", "inverse_vol", "min_variance", "hrp")


def _blocks(dates: list[dt.date], tickers: list[str], sector_of: np.ndarray,
            rng: np.random.Generator) -> Iterator[tuple[pl.Series, pl.Series, np.ndarray, np.ndarray]]:
    centres = rng.normal(0, 1, (int(sector_of.max()) + 1, D))
    for day in dates:
        x = centres[sector_of] + rng.normal(0, 0.5, (len(tickers), D))
        yield (pl.Series([day] * len(tickers), dtype=pl.Date), pl.Series(tickers),
               x.astype(np.float32), (x + rng.normal(0, 0.3, x.shape)).astype(np.float32))


def build(home: Path, tickers: int, years: float, every: int, seed: int = 0) -> dict[str, Any]:
    from dynmix.data.sources.synthetic import generate_market, write_market
    from dynmix.data.store import Store
    from dynmix.runs.embeddings import write_embeddings

    ws = Workspace(home)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    market = generate_market(tickers, min(10, tickers // 2), years, seed)
    write_market(Store(ws.store), market, replace=True)
    dates = sorted(market.prices["date"].unique().to_list())
    names = sorted(t for t in market.prices["ticker"].unique().to_list() if not t.startswith("^"))  # no index
    meta = Store(ws.store).read_meta().select("ticker", "sector")
    codes = {s: k for k, s in enumerate(sorted(meta["sector"].unique().to_list()))}
    sector = dict(zip(meta["ticker"], meta["sector"], strict=True))
    sector_of = np.array([codes[sector.get(t, next(iter(codes)))] for t in names])
    write_json({"feature_names": ["mom_21", "vol_21"], "channels": ["ret", "market"], "window": 60,
                "n_tickers": len(names), "n_dates": len(dates), "first_date": str(dates[0]),
                "last_date": str(dates[-1]), "built_at": "2026-12-04T00:00:00+00:00"}, ws.views / "views.json")

    run = ws.run(RUN)
    save_config(DynMIXConfig(), run / "config.toml")
    for step in range(10, 1010, 10):
        append_jsonl({"step": step, "epoch": step // 100, "loss": 20 * np.exp(-step / 300) + 5, "invariance": 0.3,
                      "variance": 0.2, "covariance": 0.1, "gamma": 1.0, "lr": 1e-3, "samples_per_s": 5000.0},
                     run / "metrics.jsonl")
    used = dates[60:]
    n_train = int(0.7 * len(used))
    vol = 0.15 + 0.05 * np.sin(np.arange(len(used)) / 30)
    write_parquet(pl.DataFrame({"date": used, "gamma": np.clip(vol / 0.15, 0.8, 1.2), "market_vol": vol,
                                "dispersion": vol * 0.8, "train": np.arange(len(used)) < n_train}),
                  run / "gamma.parquet")
    split = {"train_start": str(used[0]), "train_end": str(used[n_train - 1]), "test_start": str(used[n_train]),
             "test_end": str(used[-1]), "n_train_dates": n_train, "n_test_dates": len(used) - n_train}
    write_json(split, run / "split.json")
    kept = used[::-1][::every][::-1]  # every k-th date counted back from the last, as `dynmix embed --every k`
    write_embeddings(_blocks(kept, names, sector_of, rng), run / "embeddings", D, every)
    test = used[n_train:]
    write_parquet(pl.DataFrame({"date": test, "surprise": vol[n_train:] * 2, "market_vol": vol[n_train:]}),
                  run / "forecast" / "surprise.parquet")
    n, t = len(names), len(test)
    realised = 0.2 + 0.05 * rng.random(n * t)
    write_parquet(pl.DataFrame({"date": pl.Series(test * n, dtype=pl.Date), "ticker": np.repeat(names, t),
                                "realised": realised, "dynmix": realised * 1.05, "har": realised * 0.9,
                                "garch": realised * 1.1}),
                  run / "forecast" / "vol_forecast.parquet")
    equity = pl.concat([pl.DataFrame({"date": test, "strategy": s, "net_return": rng.normal(0.0004, 0.01, t)})
                        for s in STRATEGIES])
    equity = equity.with_columns((1 + pl.col("net_return")).cum_prod().over("strategy").alias("equity"))
    write_parquet(equity.select("date", "strategy", "equity", "net_return"), run / "planning" / "equity.parquet")
    rebal = test[::21]
    write_parquet(pl.DataFrame({"date": pl.Series([d for d in rebal for _ in range(n * len(STRATEGIES))],
                                                  dtype=pl.Date),
                                "strategy": np.tile(np.repeat(STRATEGIES, n), len(rebal)),
                                "ticker": np.tile(names, len(rebal) * len(STRATEGIES)),
                                "weight": 1.0 / n}), run / "planning" / "weights.parquet")
    methods = ("dynmix", "har", "garch")
    forecast = {
        "volatility": {h: {**{m: {"qlike": 0.1 + 0.02 * k, "mse": 0.001 * (k + 1)} for k, m in enumerate(methods)},
                           "dm": {"har": {"stat": 3.0, "p": 0.003}, "garch": {"stat": 0.5, "p": 0.6}},
                           "mcs": ["dynmix"]} for h in ("h1", "h5")},
        "gmv": {m: {"ann_vol": 0.15, "ann_vol_long_only": 0.16} for m in ("world_model", "sample", "ledoit_wolf")},
    }
    write_json({"split": split, "forecast": forecast, "notes": ["dashboard benchmark: made-up figures"]},
               run / "report.json")
    write_text("# Evaluation report\n\nDashboard benchmark: made-up figures.\n", run / "report.md")
    return {"companies": n, "days": len(dates), "embedding_dates": len(kept), "every": every,
            "build_s": round(time.perf_counter() - t0, 1)}


def _page_file(name: str) -> str:
    return f"screens/{name}.py"


def measure(home: Path) -> dict[str, dict[str, Any]]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    before = os.environ.get("DYNMIX_HOME")
    os.environ["DYNMIX_HOME"] = str(home)
    try:
        return _measure_pages(st, AppTest)
    finally:
        if before is None:
            os.environ.pop("DYNMIX_HOME", None)
        else:
            os.environ["DYNMIX_HOME"] = before


def _measure_pages(st: Any, app_test: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for page in PAGES:
        st.cache_data.clear()
        st.cache_resource.clear()
        at = app_test.from_file(str(APP_MAIN), default_timeout=600)
        at.run()
        row: dict[str, Any] = {}
        for label in ("first", "cold", "warm"):  # first open in this process; caches emptied again; cached
            if label == "cold":
                st.cache_data.clear()
                st.cache_resource.clear()
            t0 = time.perf_counter()
            at.switch_page(_page_file(page)).run()
            row[f"{label}_s"] = round(time.perf_counter() - t0, 2)
        row["exceptions"] = [str(e.value)[:200] for e in at.exception]
        row["charts"] = len(at.get("plotly_chart"))  # what the page drew (a hint instead of a chart shows here)
        row["tables"] = len(at.dataframe)
        row["hints"] = [str(b.value)[:120] for b in [*at.info, *at.warning]]
        out[page] = row
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, default=Path("/tmp/dynmix-dash-bench"))
    ap.add_argument("--tickers", type=int, default=5000)
    ap.add_argument("--years", type=float, default=2.0)
    ap.add_argument("--every", type=int, default=5, help="keep every k-th embedding date (as `dynmix embed --every`)")
    ap.add_argument("--reuse", action="store_true", help="keep a workspace already written under --home")
    a = ap.parse_args(argv)
    built = {"reused": True} if a.reuse and (a.home / "runs" / RUN).exists() else build(
        a.home, a.tickers, a.years, a.every)
    load = os.getloadavg()
    pages = measure(a.home)
    result = {"workspace": built, "pages": pages, "loadavg_start": [round(x, 2) for x in load],
              "loadavg_end": [round(x, 2) for x in os.getloadavg()], "cpu_count": os.cpu_count(),
              "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    print(json.dumps(result, indent=1))
    print("\n| page | first s | cold cache s | warm s | charts | tables | exceptions |\n|---|---|---|---|---|---|---|")
    for page, row in pages.items():
        print(f"| {page} | {row['first_s']:.2f} | {row['cold_s']:.2f} | {row['warm_s']:.2f} | {row['charts']} | "
              f"{row['tables']} | "
              f"{len(row['exceptions'])} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
