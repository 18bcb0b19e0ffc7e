"""Embedding map: companies in 2-D on a date or averaged over a period, coloured by sector or cluster;
a company's nearest neighbours and their similarity over time."""

from __future__ import annotations

import datetime as dt

import polars as pl
import streamlit as st

from app import components, embedmap, loaders
from app.charts import embeddings as charts
from dynmix.data.schema import UNKNOWN_SECTOR
from dynmix.runs.rundir import RunDir

st.title("Embedding map")
ws = loaders.workspace()
run = components.run_picker(ws, key="embeddings_run")
if run is None:
    st.stop()
path = RunDir(run).embeddings_path
if not path.exists():
    components.hint(f"Run {run.name} has no embeddings yet (they are written when training ends).",
                    f"dynmix train --resume {run.name}")
    st.stop()

views, dates = loaders.views_and_dates(path)
if not dates:
    components.hint(f"`{run.name}/{path.name}` holds no rows.")
    st.stop()
split = loaders.split(run)
c1, c2, c3, c4 = st.columns(4)
view = c1.selectbox("View", views, index=views.index("implicit") if "implicit" in views else 0, key="emb_view")
mode = c2.radio("Embeddings", ["one date", "mean over a period"], key="emb_mode", horizontal=True)
method = c3.selectbox("Projection", embedmap.available_methods(), key="emb_method")
colour = c4.radio("Colour", ["sector", "KMeans cluster"], key="emb_colour", horizontal=True)

if mode == "one date":
    date = st.select_slider("Date", options=dates, value=dates[-1], key="emb_date")
    start, end, what = date, None, f"on {date}"
else:
    test_start = dt.date.fromisoformat(str(split["test_start"])[:10]) if split.get("test_start") else dates[0]
    lo = max(dates[0], min(test_start, dates[-1]))
    period = st.slider("Period", min_value=dates[0], max_value=dates[-1], value=(lo, dates[-1]), key="emb_period")
    start, end, what = period[0], period[1], f"mean over {period[0]} → {period[1]}"

tickers, x = loaders.embeddings(path, view, start, end)
if len(tickers) < 2:
    components.hint(f"Fewer than two companies have {view} embeddings {what}: pick another date or period.")
    st.stop()

xy, note = loaders.projection(x, method)
meta = loaders.store_meta(ws).select("ticker", "sector")
points = (pl.DataFrame({"ticker": tickers, "x": xy[:, 0], "y": xy[:, 1]})
          .join(meta, on="ticker", how="left").with_columns(pl.col("sector").fill_null(UNKNOWN_SECTOR)))
if colour == "KMeans cluster":
    k = components.int_slider("Clusters", 2, min(20, len(tickers) - 1), 8, key="emb_k")
    points = points.with_columns(pl.Series("cluster", embedmap.kmeans_labels(x, k)).cast(pl.String))
if note:
    st.warning(note)

query = st.text_input("Search company", key="emb_search", placeholder="ticker, or part of it").strip().upper()
found = [t for t in tickers if query in t.upper()] if query else tickers
if not found:
    st.info(f"No company's ticker contains '{query}': all {len(tickers)} companies are listed.")
    found = tickers
company = st.selectbox("Company", found, key="emb_company")
components.chart(charts.embedding_map(points, "sector" if colour == "sector" else "cluster",
                                      f"{view} embeddings {what} ({method}, {len(tickers)} companies)",
                                      highlight=company), key="map")

st.subheader(f"Nearest neighbours of {company}")
k_nn = components.int_slider("Neighbours", 1, min(15, len(tickers) - 1), 5, key="emb_knn")
nn = embedmap.cosine_neighbours(tickers, x, company, k_nn).join(meta, on="ticker", how="left")
left, right = st.columns([1, 2])
with left:
    st.caption(f"Cosine similarity of the {view} embeddings {what}.")
    components.table(nn)
with right:
    sim = loaders.similarity_over_time(path, view, company, nn["ticker"].to_list())
    components.chart(charts.similarity_chart(sim, company), key="similarity")
