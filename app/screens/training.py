"""Training: a run's loss parts over steps, γ against market volatility, the collapse monitor, and the comparison
of objectives over seeds (`dynmix compare`)."""

from __future__ import annotations

import polars as pl
import streamlit as st

from app import artifacts, components, loaders
from app.charts import training as charts
from dynmix.runs.rundir import RunDir

st.title("Training")
ws = loaders.workspace()


def comparison_section() -> None:
    """Bars of HOME/compare/compare.json: mean ± sd over seeds per objective, score and regime."""
    st.subheader("Objectives compared over seeds")
    rows = loaders.comparison(ws)
    if rows.height == 0:
        components.hint(
            "No comparison yet (`HOME/compare/compare.json`). `dynmix compare` trains each objective (VICReg with "
            "a static, market-volatility or dispersion variance target, SIGReg, Barlow Twins, InfoNCE, BYOL) with "
            "the same budget for several seeds on HOME/views and scores every run: the bars would show each "
            "score's mean over seeds with the seeds' standard deviation, on per-company means and on per-date "
            "embeddings by market regime (calm / mid / stressed), so a difference can be told from seed noise.",
            "dynmix compare --seeds 3")
        return
    scores = list(dict.fromkeys(rows.filter(pl.col("score") != "train_seconds")["score"].to_list()))
    first = "spearman_future_corr" if "spearman_future_corr" in scores else scores[0]
    score = st.selectbox("Score", scores, index=scores.index(first), key="compare_score",
                         help="pair_vol: lower is better; every other score: higher is better.")
    components.chart(charts.compare_chart(rows, score), key="compare")
    seeds = rows.filter(pl.col("score") == score)["n"].max()
    st.caption(f"Implicit branch; error bars: standard deviation over {seeds} seed(s). A difference smaller than "
               "the bars cannot be told from seed noise; compare.md in HOME/compare has the paired tests against "
               "vicreg:static. pca_loadings and pearson are seed-free references.")


run = components.run_picker(ws, key="training_run")
if run is None:
    comparison_section()
    st.stop()

cfg = artifacts.read_toml(RunDir(run).config_path)
split = loaders.split(run)
metrics = loaders.metrics(run)
last = metrics.tail(1).to_dicts()[0] if metrics.height else {}

c1, c2, c3, c4 = st.columns(4)
c1.metric("Variance target", str(artifacts.nested(cfg, "loss", "variance_target") or "—"))
c2.metric("Steps logged", f"{int(last['step']):,}" if "step" in last else "—")
c3.metric("Final loss", f"{last['loss']:.4f}" if "loss" in last else "—")
c4.metric("Samples / s", f"{last['samples_per_s']:,.0f}" if "samples_per_s" in last else "—")
if split:
    st.caption(f"Train {split.get('train_start')} → {split.get('train_end')} · "
               f"test {split.get('test_start')} → {split.get('test_end')}")

st.subheader("Loss")
if metrics.height == 0:
    components.hint(f"`{run.name}/metrics.jsonl` holds no lines yet (the run has not logged a step).",
                    f"dynmix train --resume {run.name}")
else:
    components.chart(charts.loss_chart(metrics), key="loss")

st.subheader("Variance target")
gamma = loaders.parquet(RunDir(run).gamma_path)
if gamma is None:
    components.hint(f"`{run.name}/gamma.parquet` is absent: it is written when training starts.")
else:
    components.chart(charts.gamma_chart(gamma), key="gamma")
    st.caption("γ_t = γ₀ · clip(σ_t / σ_ref, lo, hi): the variance floor follows the market's realised volatility "
               "(σ_ref is its median over the training period). A static run keeps γ = 1.")

st.subheader("Collapse monitor")
if metrics.height:
    components.chart(charts.collapse_chart(metrics), key="collapse")
    st.caption("Per-dimension std of the representations (γ acts on the projector's outputs, drawn for scale) "
               "and their effective rank: a falling rank or a std near 0 means the embeddings collapse.")
collapse = artifacts.section_table(loaders.report(run).get("collapse"), first="view")
if collapse.height:
    st.write("Test-period embeddings (report.json):")
    components.table(collapse)

with st.expander("Configuration (config.toml)"):
    st.json(cfg or {"config.toml": "absent"}, expanded=False)

comparison_section()
