"""Pure readers of the workspace's artifacts for the dashboard: tolerant of absent or half-written files.

Nothing here imports streamlit; app/loaders.py wraps these functions in caches keyed by file versions.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import polars as pl

from dynmix.io import read_jsonl
from dynmix.runs.report_md import VOLATILITY_META
from dynmix.runs.rundir import RunDir

NONE_VERSION = 0.0  # the version of an absent file


def version(path: Path) -> float:
    """A value that changes when the file changes (its mtime); 0.0 when absent."""
    try:
        return path.stat().st_mtime
    except OSError:
        return NONE_VERSION


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from `path`; {} when absent, unreadable or not an object."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return obj if isinstance(obj, dict) else {}


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def read_parquet(path: Path) -> pl.DataFrame | None:
    """The table at `path`, or None when it is absent or unreadable (e.g. mid-write by another process)."""
    if not path.is_file():
        return None
    try:
        return pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError):
        return None


def metrics_frame(path: Path) -> pl.DataFrame:
    """metrics.jsonl as a frame, one column per numeric key seen in any line (keys read dynamically)."""
    rows = [{k: float(v) for k, v in r.items() if isinstance(v, int | float)} for r in read_jsonl(path)]
    if not rows:
        return pl.DataFrame()
    df = pl.DataFrame(rows, infer_schema_length=None)
    return df.sort("step") if "step" in df.columns else df.with_row_index("step", offset=1)


def nested(obj: dict[str, Any], *keys: str) -> Any:
    """obj[k1][k2]… or None if any level is missing."""
    cur: Any = obj
    for k in keys:
        if not isinstance(cur, dict) or k not in cur:
            return None
        cur = cur[k]
    return cur


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}/{k}" if prefix else str(k), v, out)
    elif isinstance(value, int | float | str | bool) or value is None:
        out[prefix or "value"] = value


def section_table(section: Any, first: str = "method") -> pl.DataFrame:
    """A report section {row: {metric: value or {…}}} as a table (nested keys joined with '/')."""
    if not isinstance(section, dict) or not section:
        return pl.DataFrame()
    rows: list[dict[str, Any]] = []
    scalars: dict[str, Any] = {}
    for name, value in section.items():
        if isinstance(value, dict):
            flat: dict[str, Any] = {}
            _flat("", value, flat)
            rows.append({first: str(name), **flat})
        elif not isinstance(value, list):
            scalars[str(name)] = value
    if scalars:
        rows.append({first: "(all)", **scalars})
    if not rows:
        return pl.DataFrame()
    cleaned = [{k: (float(v) if isinstance(v, int | float) and not isinstance(v, bool) and k != first else v)
                for k, v in r.items()} for r in rows]
    try:
        return pl.DataFrame(cleaned, infer_schema_length=None)
    except (TypeError, pl.exceptions.PolarsError):  # mixed types in a column: show them as text
        return pl.DataFrame([{k: None if v is None else str(v) for k, v in r.items()} for r in cleaned])


HORIZONS = ("h1", "h5", "h22")


def volatility_table(forecast: Any) -> pl.DataFrame:
    """report["forecast"]["volatility"] as one row per method: QLIKE at each horizon, MSE at 5 days, and the
    horizons whose 90 % Model Confidence Set keeps the method; columns no method has are left out."""
    vol = nested(forecast, "volatility")
    if not isinstance(vol, dict):
        return pl.DataFrame()
    rows: dict[str, dict[str, Any]] = {}
    for h in HORIZONS:
        section = vol.get(h)
        if not isinstance(section, dict):
            continue
        kept = section.get("mcs") if isinstance(section.get("mcs"), list) else []
        for m, v in section.items():
            if m in VOLATILITY_META or not isinstance(v, dict):
                continue
            row = rows.setdefault(m, {"method": m})
            row[f"QLIKE {h}"] = v.get("qlike")
            if h == "h5":
                row["MSE h5"] = v.get("mse")
            if m in kept:
                row["in MCS 90 %"] = ", ".join(filter(None, [row.get("in MCS 90 %"), h]))
    if not rows:
        return pl.DataFrame()
    df = pl.DataFrame(list(rows.values()), infer_schema_length=None)
    return df.select([c for c in df.columns if df[c].null_count() < df.height])


def monthly_coverage(prices: pl.DataFrame) -> pl.DataFrame:
    """(ticker, month, share): the share of the month's trading days (union calendar) on which a ticker has a row.

    Months before a ticker's first or after its last row count too (share 0), so gaps and late listings show.
    """
    if prices.height == 0:
        return pl.DataFrame(schema={"ticker": pl.String(), "month": pl.Date(), "share": pl.Float64()})
    days = prices.select(pl.col("date").unique()).with_columns(pl.col("date").dt.truncate("1mo").alias("month"))
    per_month = days.group_by("month").agg(pl.len().alias("days"))
    have = (prices.with_columns(pl.col("date").dt.truncate("1mo").alias("month"))
            .group_by("ticker", "month").agg(pl.len().alias("have")))
    grid = prices.select(pl.col("ticker").unique()).join(per_month, how="cross")
    return (grid.join(have, on=["ticker", "month"], how="left")
            .with_columns((pl.col("have").fill_null(0) / pl.col("days")).alias("share"))
            .select("ticker", "month", "share").sort("ticker", "month"))


def run_summary(run_dir: Path) -> dict[str, Any]:
    """One row for the runs table: id, variance target, steps, final loss and headline metrics when evaluated."""
    cfg = read_toml(RunDir(run_dir).config_path)
    metrics = metrics_frame(RunDir(run_dir).metrics_path)
    report = read_json(RunDir(run_dir).report_path)
    last = metrics.tail(1).to_dicts()[0] if metrics.height else {}
    planning = report.get("planning")
    sharpes: dict[str, float] = {
        str(k): float(v["sharpe"]) for k, v in (planning.items() if isinstance(planning, dict) else ())
        if isinstance(v, dict) and isinstance(v.get("sharpe"), int | float)}
    best = max(sharpes, key=lambda k: sharpes[k], default=None)
    return {
        "run": run_dir.name,
        "variance target": nested(cfg, "loss", "variance_target"),
        "steps": int(last["step"]) if "step" in last else None,
        "final loss": last.get("loss"),
        "embeddings": RunDir(run_dir).embeddings_path.exists(),
        "kNN sector acc": nested(report, "sector", "dynmix_implicit", "knn_accuracy"),
        "Spearman→future": nested(report, "similarity", "dynmix_implicit", "spearman_future_corr"),
        "pair vol": nested(report, "hedging", "dynmix_implicit", "pair_vol"),
        "eff. rank": nested(report, "collapse", "implicit", "effective_rank"),
        "best planner Sharpe": f"{best} {sharpes[best]:.2f}" if best is not None else None,
    }


def runs_table(run_dirs: list[Path]) -> pl.DataFrame:
    """run_summary of each run, newest first; metric columns no run has are dropped."""
    if not run_dirs:
        return pl.DataFrame()
    df = pl.DataFrame([run_summary(p) for p in run_dirs], infer_schema_length=None)
    return df.select([c for c in df.columns if c == "run" or df[c].null_count() < df.height])


REGIME_SUFFIXES = ("calm", "mid", "stressed", "per_date")  # compare.json's per-date scores: <score>_<regime>


def compare_frame(summary: dict[str, Any]) -> pl.DataFrame:
    """compare.json ({arm: {score: {mean, sd, n, …}}}) as one row per arm and score: arm, score (the base name),
    regime ("all" for the per-company-mean scores, else calm / mid / stressed / per_date), mean, sd, n. Entries
    that are not {mean, …} objects, or have no finite value (n = 0), are left out.
    """
    rows = []
    for arm, scores in summary.items():
        if not isinstance(scores, dict):
            continue
        for name, st in scores.items():
            if not isinstance(st, dict) or not st.get("n") or not isinstance(st.get("mean"), int | float):
                continue
            base, regime = name, "all"
            for suffix in REGIME_SUFFIXES:
                if name.endswith(f"_{suffix}"):
                    base, regime = name[: -len(suffix) - 1], suffix
                    break
            sd = st.get("sd")
            rows.append({"arm": str(arm), "score": base, "regime": regime, "mean": float(st["mean"]),
                         "sd": float(sd) if isinstance(sd, int | float) else 0.0, "n": int(st["n"])})
    schema = {"arm": pl.String, "score": pl.String, "regime": pl.String, "mean": pl.Float64, "sd": pl.Float64,
              "n": pl.Int64}
    return pl.DataFrame(rows, schema=schema)

