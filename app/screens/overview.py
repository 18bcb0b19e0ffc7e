"""Overview: the workspace at a glance — data coverage, views, latest runs with headline metrics, next steps."""

from __future__ import annotations

import streamlit as st

from app import artifacts, components, loaders
from dynmix.runs.rundir import RunDir

st.title("DynMIX — overview")
ws = loaders.workspace()
cov = loaders.store_coverage(ws)
runs = loaders.run_dirs(ws)

st.subheader("Data")
if cov.height == 0:
    st.markdown(components.START_HINT)
else:
    failed = int((cov["status"] != "ok").sum())
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Tickers", f"{cov.height:,}")
    c2.metric("First date", str(cov["first_date"].min()))
    c3.metric("Last date", str(cov["last_date"].max()))
    c4.metric("Failed tickers", failed)
    if components.last_refresh(cov):
        st.caption(f"Last refresh {components.last_refresh(cov)} UTC.")
    sectors = cov.group_by("sector").len("tickers").sort("tickers", descending=True)
    st.caption("Tickers per sector: " + ", ".join(f"{s} {n}" for s, n in sectors.iter_rows()))

views = artifacts.read_json(ws.views / "views.json")
st.subheader("Views")
if views:
    st.write(f"{views.get('n_tickers', '?')} tickers × {views.get('n_dates', '?')} dates, "
             f"{len(views.get('feature_names', []))} explicit features, window {views.get('window', '?')} days "
             f"({views.get('first_date', '?')} → {views.get('last_date', '?')}; built {views.get('built_at', '?')}).")
elif cov.height:
    components.hint("The views are not built yet.", "dynmix views build")
else:
    st.caption("The views come after the data.")

st.subheader("Runs")
if not runs:
    if cov.height:
        components.hint("No training runs yet.", "dynmix train")
    else:
        st.caption("No runs yet.")
else:
    table = loaders.runs_table(ws)
    components.table(table.head(20))
    st.caption(f"{len(runs)} run(s) in `{ws.runs}`, newest first. Headline metrics are those of the implicit "
               "view on the test period (report.json); a run without them has not been evaluated.")
    latest = runs[0]
    todo = []
    if not RunDir(latest).report_path.is_file():
        todo.append(f"`dynmix evaluate {latest.name}`")
    if not RunDir(latest).world_path.is_file():
        todo.append(f"`dynmix train --stage world --run {latest.name}`")
    if not RunDir(latest).vol_forecast_path.is_file():
        todo.append(f"`dynmix forecast {latest.name}`")
    if not RunDir(latest).planning_dir.is_dir():
        todo.append(f"`dynmix plan {latest.name}`")
    if todo:
        st.info(f"Next for the latest run {latest.name}: " + " · ".join(todo), icon=":material/lightbulb:")
    if "kNN sector acc" in table.columns:
        best = table.drop_nulls("kNN sector acc").sort("kNN sector acc", descending=True).head(1)
        if best.height:
            row = best.row(0, named=True)
            st.success(f"Best sector recovery: {row['run']} (kNN accuracy {row['kNN sector acc']:.2f}).")
