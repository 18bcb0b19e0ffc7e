"""Forecasts: the surprise index against market volatility, volatility forecasts against realised with the
HAR and GARCH baselines, and the forecast metrics of report.json."""

from __future__ import annotations

import polars as pl
import streamlit as st

from app import artifacts, components, loaders
from app.charts import forecasts as charts
from dynmix.runs.rundir import RunDir

st.title("Forecasts")
ws = loaders.workspace()
run = components.run_picker(ws, key="forecasts_run")
if run is None:
    st.stop()

surprise = loaders.parquet(RunDir(run).surprise_path)
vol = loaders.parquet(RunDir(run).vol_forecast_path)
metrics = artifacts.section_table(loaders.report(run).get("forecast"))
if surprise is None and vol is None and metrics.height == 0:
    components.hint(f"Run {run.name} has no forecasts yet: the JEPA surprise index and the volatility forecasts "
                    f"are written to `{RunDir(run).forecast_dir}`.",
                    f"dynmix train --stage world --run {run.name}; dynmix train --stage jepa --run {run.name}; "
                    f"dynmix forecast {run.name}")
    st.stop()

st.subheader("Surprise index")
if surprise is None:
    components.hint("`forecast/surprise.parquet` is absent.",
                    f"dynmix train --stage jepa --run {run.name}; dynmix forecast {run.name}")
else:
    components.chart(charts.surprise_chart(surprise), key="surprise")
    if {"surprise", "market_vol"} <= set(surprise.columns) and surprise.height > 2:
        corr = surprise.select(pl.corr("surprise", "market_vol", method="spearman")).item()
        shown = f"{corr:.2f}" if isinstance(corr, float) else "—"
        st.caption(f"The surprise index is the cross-sectional mean JEPA prediction error (energy). Spearman "
                   f"correlation with realised market volatility: {shown}.")

st.subheader("Volatility forecasts")
if vol is None or vol.height == 0:
    components.hint("`forecast/vol_forecast.parquet` is absent.", f"dynmix forecast {run.name}")
else:
    tickers = vol["ticker"].unique().sort().to_list() if "ticker" in vol.columns else ["(all)"]
    ticker = st.selectbox("Company", tickers, key="forecast_ticker")
    components.chart(charts.vol_forecast_chart(vol, ticker), key="vol")

st.subheader("Forecast metrics")
if metrics.height:
    components.table(metrics)
    st.caption("QLIKE and MSE of the volatility forecasts on the test period (lower is better): the world model "
               "(dynmix), HAR times a correction learnt from its latents (dynmix_har), HAR-RV, log-HAR, GARCH(1,1) "
               "and EWMA, at 5 days (volatility) and 1 and 22 days; dm_stat / dm_p: Diebold–Mariano test of dynmix "
               "against that method (> 0: dynmix loses more); in_mcs90: in the 90 % Model Confidence Set.")
else:
    components.hint("report.json has no `forecast` section.", f"dynmix forecast {run.name}")
