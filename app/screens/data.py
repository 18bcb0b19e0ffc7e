"""Data: tickers and sectors, coverage heat-map, refresh status, price and return charts, refresh from Yahoo."""

from __future__ import annotations

import polars as pl
import streamlit as st

import app.refresh as refresher
from app import components, loaders
from app.charts import data as charts
from dynmix.data.refresh import normalise_tickers
from dynmix.data.store import Store
from dynmix.errors import DynMIXError

st.title("Data")
ws = loaders.workspace()
cov = loaders.store_coverage(ws)


def refresh_panel() -> None:
    """Tickers to refresh and the button that downloads them from Yahoo Finance (progress in a status box)."""
    defaults = refresher.default_tickers(Store(ws.store))
    with st.expander("Refresh from Yahoo Finance", expanded=cov.height == 0):
        typed = st.text_input("Tickers (comma-separated; blank = the default list)", key="refresh_tickers",
                              placeholder=", ".join(defaults[:8]) + (" …" if len(defaults) > 8 else ""))
        st.caption(f"Default: {len(defaults)} ticker(s) — those in the store, else the sample universe. "
                   "Only missing dates are downloaded.")
        if not st.button("Refresh from Yahoo", icon=":material/sync:", key="refresh_button"):
            return
        try:
            tickers = normalise_tickers(typed.split(",")) if typed.strip() else defaults
        except DynMIXError as e:
            st.error(str(e))
            return
        if not tickers:
            st.error("No tickers to refresh: type some tickers.")
            return
        with st.status(f"Refreshing {len(tickers)} ticker(s) from Yahoo Finance…", expanded=True) as box:
            bar = st.progress(0.0, text="starting")

            def advance(done: int, total: int) -> None:
                bar.progress(done / total, text=f"{done} / {total} tickers")

            try:
                result = refresher.refresh_in_chunks(ws, tickers, advance)
            except DynMIXError as e:  # another command is writing the workspace, or a damaged store file
                box.update(label="Refresh not done", state="error")
                st.error(str(e))
                return
            if result.nothing_came_back:
                box.update(label="No data came back: are you offline?", state="error")
                first = next(iter(result.failed.values()))
                st.error(f"All {len(result.failed)} ticker(s) tried failed, so the refresh stopped; the last good "
                         f"data is kept. First reason: {first}")
                return
            box.update(label=f"Refresh done: {result.rows:,} row(s) written", state="complete")
        st.success(f"added {len(result.added)}, updated {len(result.updated)}, re-downloaded "
                   f"{len(result.redownloaded)}, failed {len(result.failed)}; {result.rows:,} row(s) written.")
        if result.failed:
            components.table(pl.DataFrame({"ticker": list(result.failed), "reason": list(result.failed.values())}))


if cov.height == 0:
    components.hint(f"The store `{ws.store}` holds no prices yet. Load the offline sample with "
                    "`dynmix data sample`, import a file with `dynmix data import FILE`, or refresh from Yahoo "
                    "below.")
    refresh_panel()
    st.stop()

meta = loaders.store_meta(ws)
extra = [c for c in ("name", "industry") if c in meta.columns]
listing = cov.join(meta.select("ticker", *extra), on="ticker", how="left")
failed = listing.filter(pl.col("status") != "ok")

c1, c2, c3, c4 = st.columns(4)
c1.metric("Tickers", f"{cov.height:,}")
c2.metric("Sectors", cov["sector"].n_unique())
when = components.last_refresh(cov)
c3.metric("Last refresh", components.last_refresh(cov, "%Y-%m-%d") or "—", help=f"{when} UTC" if when else None)
c4.metric("Failed tickers", failed.height)

st.subheader("Tickers and sectors")
components.table(listing.select("ticker", *extra, "sector", "asset_type", "first_date", "last_date", "rows",
                                "missing_days", "source", "status"), height=320 if listing.height > 10 else None)
if failed.height:
    st.warning(f"{failed.height} ticker(s) failed at the last refresh (their last good data is kept).")
    components.table(failed.select("ticker", "last_refresh", "last_date", "message"))

st.subheader("Coverage")
monthly = loaders.monthly_coverage(ws)
components.chart(charts.coverage_heatmap(monthly), key="coverage")
if cov.height > 80:
    st.caption(f"The heat-map shows the first 80 of {cov.height} tickers.")

st.subheader("Prices and returns")
tickers = cov.filter(pl.col("rows") > 0)["ticker"].to_list()
chosen = st.multiselect("Tickers", tickers, default=tickers[:3], key="data_tickers", max_selections=12)
chosen_prices = loaders.prices(ws, chosen) if chosen else pl.DataFrame()
left, right = st.columns(2)
with left:
    components.chart(charts.price_chart(chosen_prices), key="prices")
with right:
    components.chart(charts.returns_chart(chosen_prices), key="returns")

refresh_panel()
