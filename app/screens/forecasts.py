"""Forecasts: volatility forecasts against realised with every baseline, which forecast is best at each horizon
(with the significance tests in words), whether the world model's covariance lowers a minimum-variance
portfolio's risk, and whether the JEPA surprise index says something about market volatility that HAR does not."""

from __future__ import annotations

import polars as pl
import streamlit as st

from app import artifacts, components, loaders
from app.charts import forecasts as charts
from dynmix.runs.report_md import SURPRISE_META, surprise_verdict, volatility_verdict
from dynmix.runs.rundir import RunDir

st.title("Forecasts")
ws = loaders.workspace()
run = components.run_picker(ws, key="forecasts_run")
if run is None:
    st.stop()

surprise = loaders.parquet(RunDir(run).surprise_path)
vol = loaders.parquet(RunDir(run).vol_forecast_path)
forecast = loaders.report(run).get("forecast")
forecast = forecast if isinstance(forecast, dict) else {}
if surprise is None and vol is None and not forecast:
    components.hint(f"Run {run.name} has no forecasts yet: the JEPA surprise index and the volatility forecasts "
                    f"are written to `{RunDir(run).forecast_dir}`.",
                    f"dynmix train --stage world --run {run.name}; dynmix train --stage jepa --run {run.name}; "
                    f"dynmix forecast {run.name}")
    st.stop()

st.subheader("Volatility: forecast against realised")
if vol is None or vol.height == 0:
    components.hint("`forecast/vol_forecast.parquet` is absent.", f"dynmix forecast {run.name}")
else:
    tickers = vol["ticker"].unique().sort().to_list() if "ticker" in vol.columns else ["(all)"]
    ticker = st.selectbox("Company", tickers, key="forecast_ticker")
    components.chart(charts.vol_forecast_chart(vol, ticker), key="vol")

st.subheader("Which volatility forecast is best?")
table = artifacts.volatility_table(forecast)
if table.height:
    components.table(table)
    st.caption("QLIKE of the variance forecast of the next day (h1), 5 days (h5) and 22 days (h22) on the test "
               "period, lower is better; the world model (dynmix), HAR times a correction learnt from its latents "
               "(dynmix_har), HAR-RV, log-HAR, GARCH(1,1) and EWMA.")
    for h, section in (forecast.get("volatility") or {}).items():
        if isinstance(section, dict):
            st.markdown(f"- {volatility_verdict(section, f'h = {h[1:]}')}")
else:
    components.hint("report.json has no volatility scores.", f"dynmix forecast {run.name}")

st.subheader("Does the world model's covariance lower risk?")
gmv = artifacts.section_table(forecast.get("gmv"), first="covariance")
if gmv.height:
    components.table(gmv)
    st.caption("Global-minimum-variance portfolios rebalanced weekly on the test period from each covariance "
               "estimate: their realised annualised volatility, unconstrained and long-only (lower is better).")
else:
    components.hint("report.json has no GMV comparison.", f"dynmix forecast {run.name}")

st.subheader("Surprise index")
if surprise is None:
    components.hint("`forecast/surprise.parquet` is absent.",
                    f"dynmix train --stage jepa --run {run.name}; dynmix forecast {run.name}")
else:
    components.chart(charts.surprise_chart(surprise), key="surprise")
    if {"surprise", "market_vol"} <= set(surprise.columns) and surprise.height > 2:
        corr = surprise.select(pl.corr("surprise", "market_vol", method="spearman")).item()
        shown = f"{corr:.2f}" if isinstance(corr, float) else "—"
        st.caption(f"The surprise index is the cross-sectional mean JEPA prediction error (energy), smoothed over "
                   f"{charts.SMOOTH_DAYS} days. Spearman correlation of the daily index with realised market "
                   f"volatility: {shown}.")
scores = forecast.get("surprise")
if isinstance(scores, dict) and scores:
    components.table(artifacts.section_table({k: v for k, v in scores.items() if k not in SURPRISE_META}))
    st.caption("Test period: Spearman and Pearson correlation with the realised market volatility of the next "
               "5 days, for the surprise index and for trailing realised volatility.")
    if isinstance(scores.get("increment"), dict):
        st.markdown(surprise_verdict(scores["increment"]))

other = artifacts.section_table({k: forecast[k] for k in ("density", "latent") if isinstance(forecast.get(k), dict)})
if other.height:
    st.subheader("Density and latent forecasts")
    components.table(other)
    st.caption("density: next-day NLL per company against a static factor model (lower is better); latent: "
               "relative MSE of the rolled-out latents against persistence.")
