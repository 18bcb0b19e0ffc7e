"""`run_forecast`: the world model's out-of-sample forecasts against their baselines (DESIGN §7), and the JEPA
surprise index when that part of DynMIX is installed.

Volatility: at every test origin t (dates after train_end, data up to t), each method forecasts the realised
volatility of days t+1 .. t+5 (sqrt of the mean squared daily log return, annualised with 252). Methods: DynMIX
(sqrt of diag Σ̂ + μ̂² of the world model's 5 rolled-out steps), HAR-RV and GARCH(1,1), both fitted on the training
period only. Scores on the (company, date) pairs every method covers: QLIKE of the variance
(σ²_real/σ²_hat − log(σ²_real/σ²_hat) − 1) and MSE of the daily variance in percent² (r in %).
Writes RUN/forecast/vol_forecast.parquet (date, ticker, realised, dynmix, har, garch) and report["forecast"].
"""

from __future__ import annotations

import importlib
import json
import math
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from rich.progress import Progress

from dynmix.evaluation.forecast_baselines import HARRV, forward_mean, garch_forecasts
from dynmix.evaluation.forecast_world import density_nll, latent_errors, world_variance
from dynmix.evaluation.report import write_report
from dynmix.evaluation.report_md import markdown_table
from dynmix.io import write_parquet
from dynmix.train.world_run import WorldRun, prepare_world
from dynmix.train.world_trainer import origin_dates
from dynmix.workspace import Workspace

VOL_HORIZON = 5  # days of realised volatility forecast
TRADING_DAYS = 252
METHODS = ("dynmix", "har", "garch")


def qlike(real_var: np.ndarray, pred_var: np.ndarray) -> float:
    """Mean QLIKE loss of variance forecasts: x − log x − 1 with x = σ²_real / σ²_hat (0 for a perfect forecast)."""
    x = np.asarray(real_var, dtype=np.float64) / np.asarray(pred_var, dtype=np.float64)
    return float(np.mean(x - np.log(x) - 1.0))


def mse(real: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean((np.asarray(real, dtype=np.float64) - np.asarray(pred, dtype=np.float64)) ** 2))


def volatility_scores(frame: pl.DataFrame) -> dict[str, dict[str, float]]:
    """{method: {qlike, mse}} from annualised vols in `frame`; MSE of the daily variance in percent²."""
    daily_pct2 = 1e4 / TRADING_DAYS  # annualised variance (decimal) -> daily variance in percent²
    real = frame["realised"].to_numpy() ** 2
    return {m: {"qlike": qlike(real, frame[m].to_numpy() ** 2),
                "mse": mse(real * daily_pct2, frame[m].to_numpy() ** 2 * daily_pct2)} for m in METHODS}


def volatility_frame(wr: WorldRun, progress: bool = True) -> tuple[pl.DataFrame, list[str]]:
    """The (date, ticker, realised, dynmix, har, garch) frame of annualised vols on test origins, and notes."""
    raw = wr.vt.raw_returns.double().cpu().numpy()  # (N, T)
    n, t_all = raw.shape
    realised = forward_mean(raw**2, VOL_HORIZON)  # (N, T)
    origins = origin_dates(wr.panel, wr.train_last + 1, t_all - 1, VOL_HORIZON)
    with Progress(disable=not progress) as bar:
        task = bar.add_task("GARCH(1,1) per company", total=n)
        garch, notes = garch_forecasts(raw, wr.train_last, VOL_HORIZON, lambda _: bar.advance(task))
    fc = {"dynmix": world_variance(wr.world, wr.panel, origins, VOL_HORIZON),
          "har": HARRV(VOL_HORIZON).fit(raw, wr.train_last).predict(raw), "garch": garch}
    keep = np.zeros((n, t_all), dtype=bool)
    keep[:, origins.cpu().numpy()] = True
    keep &= np.isfinite(realised) & (realised > 0)
    for f in fc.values():
        keep &= np.isfinite(f) & (f > 0)
    ii, tt = np.nonzero(keep)
    order = np.lexsort((ii, tt))  # by date, then ticker
    ii, tt = ii[order], tt[order]

    def vol(v: np.ndarray) -> np.ndarray:
        return np.sqrt(v[ii, tt] * TRADING_DAYS)

    frame = pl.DataFrame({
        "date": pl.Series([wr.vt.dates[k] for k in tt], dtype=pl.Date),
        "ticker": pl.Series([wr.vt.tickers[k] for k in ii], dtype=pl.String),
        "realised": vol(realised), **{m: vol(fc[m]) for m in METHODS},
    })
    notes.append(f"volatility: {frame.height} (company, test date) pairs scored, {len(origins)} test origins; "
                 "QLIKE of the variance, MSE of the daily variance in percent²")
    return frame, notes


def jepa_functions() -> tuple[Callable[..., Any] | None, Callable[..., Any]] | None:
    """(fit_jepa, compute_surprise) of the temporal-JEPA step when this install has it, else None.

    compute_surprise(ws, run_dir) -> dict lives in dynmix.evaluation.surprise; fit_jepa(ws, run_dir, *, epochs,
    progress) in a dynmix.train.jepa* module (or beside compute_surprise).
    """
    try:
        surprise = importlib.import_module("dynmix.evaluation.surprise")
    except ModuleNotFoundError as e:
        if e.name != "dynmix.evaluation.surprise":
            raise
        return None
    import dynmix.train

    names = sorted(m.name for m in pkgutil.iter_modules(dynmix.train.__path__) if m.name.startswith("jepa"))
    for module in [importlib.import_module(f"dynmix.train.{n}") for n in names] + [surprise]:
        if callable(fit := getattr(module, "fit_jepa", None)):
            return fit, surprise.compute_surprise
    return None, surprise.compute_surprise


def _jepa_surprise(ws: Workspace, run_dir: Path, epochs: int | None, progress: bool, notes: list[str]) -> Any:
    """Train the temporal JEPA when missing (its own step reuses what exists) and compute the surprise index."""
    found = jepa_functions()
    if found is None:
        notes.append("JEPA surprise index skipped: dynmix.evaluation.surprise is not part of this install")
        return None
    fit, compute = found
    if fit is not None:
        fit(ws, run_dir, epochs=epochs, progress=progress)
    return compute(ws, run_dir)


def run_forecast(ws: Workspace, run_dir: str | Path, *, epochs: int | None = None, retrain: bool = False,
                 progress: bool = True) -> dict[str, Any]:
    """Train what is missing, forecast, score, write the files and merge report["forecast"]; returns that section."""
    wr = prepare_world(ws, run_dir, epochs=epochs, retrain=retrain, progress=progress)
    notes = list(wr.notes)
    frame, vol_notes = volatility_frame(wr, progress)
    notes += vol_notes
    write_parquet(frame, wr.run_dir / "forecast" / "vol_forecast.parquet")
    first_test, t_end = wr.train_last + 1, len(wr.vt.dates) - 1
    rolled = origin_dates(wr.panel, first_test, t_end, wr.cfg.world.rollout)  # test origins with H later days
    next_day = (origin_dates(wr.panel, 0, wr.train_last, 1), origin_dates(wr.panel, first_test, t_end, 1))
    ours: dict[str, Any] = {
        "volatility": volatility_scores(frame) if frame.height else {},
        "latent": latent_errors(wr.world, wr.panel, rolled, wr.cfg.world.rollout) if rolled.numel() else {},
        "density": density_nll(wr.world, wr.panel, wr.train_last, *next_day),
    }
    if not frame.height:
        notes.append("volatility: no test origin with 5 later returns: nothing scored")
    write_report(wr.run_dir, {"forecast": {**_existing_forecast(wr.run_dir), **ours, "notes": notes}})
    surprise = _jepa_surprise(ws, wr.run_dir, epochs, progress, notes)  # if it fails, our part is saved
    if surprise is not None:
        ours["surprise"] = surprise
    report = write_report(wr.run_dir, {"forecast": {**_existing_forecast(wr.run_dir), **ours, "notes": notes}})
    return dict(report["forecast"])


def _existing_forecast(run_dir: Path) -> dict[str, Any]:
    try:
        old = json.loads((run_dir / "report.json").read_text(encoding="utf-8")).get("forecast")
    except (OSError, json.JSONDecodeError, AttributeError):
        return {}
    return old if isinstance(old, dict) else {}


def forecast_table(result: dict[str, Any]) -> str:
    """Markdown tables of a forecast section (or a whole report): volatility, density, latent, surprise."""
    section = result.get("forecast", result)
    parts = []
    for key, title in (("volatility", "Volatility, 5-day realised, test period (lower is better)"),
                       ("density", "Next-day NLL per company (lower is better)"),
                       ("latent", "Latent forecast error, relative MSE (lower is better)"),
                       ("surprise", "JEPA surprise index")):
        table = section.get(key)
        if isinstance(table, dict) and table and all(isinstance(v, dict) for v in table.values()):
            parts += [title, markdown_table(_finite(table)), ""]
        elif isinstance(table, dict) and table:
            parts += [title, markdown_table({"surprise": _finite(table)}), ""]
    return "\n".join(parts).rstrip() or "no forecast results"


def _finite(table: dict[str, Any]) -> dict[str, Any]:
    return {k: (_finite(v) if isinstance(v, dict) else (v if not isinstance(v, float) or math.isfinite(v) else None))
            for k, v in table.items()}


__all__ = ["forecast_table", "mse", "qlike", "run_forecast", "volatility_scores"]
