"""`run_forecast`: the world model's out-of-sample forecasts against their baselines, and the JEPA surprise index.
It trains nothing: the world model and the JEPA come from `dynmix train --stage world|jepa`.

Volatility: at every test origin t (dates after train_end, data up to t), each method forecasts the realised
volatility of days t+1 .. t+5 (sqrt of the mean squared daily log return, annualised with 252). Methods: DynMIX
(sqrt of diag Σ̂ + μ̂² of the world model's 5 rolled-out steps), HAR-RV, log-HAR and GARCH(1,1), fitted on the
training period only, and RiskMetrics EWMA (λ = 0.94). Scores on the (company, date) pairs every method covers:
QLIKE of the variance (σ²_real/σ²_hat − log(σ²_real/σ²_hat) − 1) and MSE of the daily variance in percent² (r in
%); for each baseline a Diebold–Mariano test of DynMIX against it (QLIKE averaged over companies per date,
Newey–West variance with H lags; dm_stat > 0: DynMIX loses more), and whether each method is in the 90 % Model
Confidence Set of the per-date QLIKE losses (mcs).
Writes RUN/forecast/vol_forecast.parquet (date, ticker, realised, one column per method) and report["forecast"].
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from rich.progress import Progress

from dynmix.errors import DynMIXError
from dynmix.forecast.baselines import HARRV, forward_mean, garch_forecasts
from dynmix.forecast.compare import LogHAR, diebold_mariano, ewma_variance, model_confidence_set, qlike_loss
from dynmix.forecast.correction import FOLDS, dynmix_har, state_features
from dynmix.forecast.gmv import gmv_comparison
from dynmix.forecast.oracle import oracle_variance, true_variance_panel
from dynmix.forecast.surprise import compute_surprise
from dynmix.forecast.world import density_nll, latent_errors, world_variance
from dynmix.runs.models import WorldRun, load_world_run
from dynmix.runs.panel import origin_dates
from dynmix.runs.report_md import forecast_markdown
from dynmix.runs.rundir import RunDir
from dynmix.workspace import Workspace

VOL_HORIZON = 5  # days of realised volatility forecast written to vol_forecast.parquet (the dashboard's chart)
HORIZONS = (1, 5, 22)  # scored: report["forecast"]["volatility"]["h1" | "h5" | "h22"]
TRADING_DAYS = 252
METHODS = ("dynmix", "dynmix_har", "har", "log_har", "garch", "ewma")
BASELINES = METHODS[2:]
ORACLE = "oracle"  # on a synthetic market: the generator's true variance, a reference left out of the MCS
MCS_SIZE = 0.1  # the Model Confidence Set at 90 %
MCS_REPS = 1000


def qlike(real_var: np.ndarray, pred_var: np.ndarray) -> float:
    """Mean QLIKE loss of variance forecasts: x − log x − 1 with x = σ²_real / σ²_hat (0 for a perfect forecast)."""
    x = np.asarray(real_var, dtype=np.float64) / np.asarray(pred_var, dtype=np.float64)
    return float(np.mean(x - np.log(x) - 1.0))


def mse(real: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean((np.asarray(real, dtype=np.float64) - np.asarray(pred, dtype=np.float64)) ** 2))


def volatility_scores(frame: pl.DataFrame, horizon: int = VOL_HORIZON) -> dict[str, Any]:
    """One horizon's section of report["forecast"]["volatility"] from the annualised vols in `frame` (the methods
    among its columns): {method: {qlike, mse}}, "dm": {method: {stat, p}} of DynMIX against each other method,
    "dm_dynmix_har": the same for `dynmix_har` against the baselines, "mcs": the methods kept in the 90 % Model
    Confidence Set. MSE of the daily variance in percent²; DM and MCS on the per-date mean QLIKE.
    """
    methods = [m for m in frame.columns if m not in ("date", "ticker", "realised")]
    daily_pct2 = 1e4 / TRADING_DAYS  # annualised variance (decimal) -> daily variance in percent²
    real = frame["realised"].to_numpy() ** 2
    out: dict[str, Any] = {m: {"qlike": qlike(real, frame[m].to_numpy() ** 2),
                               "mse": mse(real * daily_pct2, frame[m].to_numpy() ** 2 * daily_pct2)}
                           for m in methods}
    per_date = (frame.select("date", *[pl.Series(m, qlike_loss(real, frame[m].to_numpy() ** 2)) for m in methods])
                .group_by("date").mean().sort("date"))
    if per_date.height < 3:
        return out
    losses = {m: per_date[m].to_numpy() for m in methods}
    for ours in ("dynmix", "dynmix_har"):
        if ours in losses:
            key = "dm" if ours == "dynmix" else f"dm_{ours}"
            out[key] = {m: dict(zip(("stat", "p"), diebold_mariano(losses[ours], losses[m], lags=horizon),
                                    strict=True))
                        for m in methods if not m.startswith("dynmix") or (ours == "dynmix" and m != ours)}
    kept = model_confidence_set({m: v for m, v in losses.items() if m != ORACLE}, size=MCS_SIZE, reps=MCS_REPS,
                                seed=0)
    out["mcs"] = [m for m in methods if m in kept]
    return out


def volatility_frame(wr: WorldRun, progress: bool = True, horizon: int = VOL_HORIZON,
                     true_var: np.ndarray | None = None) -> tuple[pl.DataFrame, list[str]]:
    """The (date, ticker, realised, *METHODS[, oracle]) frame of annualised vols of the next `horizon` days on
    test origins, and notes; `oracle` when the market's (N, T) true daily variance is given.
    """
    raw = wr.vt.raw_returns.double().cpu().numpy()  # (N, T)
    n, t_all = raw.shape
    realised = forward_mean(raw**2, horizon)  # (N, T)
    origins = origin_dates(wr.panel, wr.train_last + 1, t_all - 1, horizon)
    with Progress(disable=not progress) as bar:
        task = bar.add_task(f"GARCH(1,1) per company, h = {horizon}", total=n)
        garch, notes = garch_forecasts(raw, wr.train_last, horizon, lambda _: bar.advance(task))
    train_origins = origin_dates(wr.panel, 0, wr.train_last, horizon)  # targets inside the training period
    both = torch.cat([train_origins, origins])
    world_var = world_variance(wr.world, wr.panel, both, horizon)
    har = HARRV(horizon).fit(raw, wr.train_last).predict(raw)
    base = wr.stack or wr.world  # the stacking model's forecasts after its cut are out of sample for it
    base_var = world_variance(base, wr.panel, both, horizon) if wr.stack is not None else world_var
    corrected, corr = dynmix_har(state_features(base, wr.panel, both), har, base_var, realised, wr.train_last,
                                 horizon, first=wr.stack_last)
    fitted_on = (f"the stacking world model's out-of-sample forecasts after {wr.vt.dates[wr.stack_last]}"
                 if wr.stack is not None else "world.pt's in-sample forecasts")
    notes.append(f"h = {horizon}: dynmix_har: HAR x exp(QLIKE fit on the world model's latents and log(world/HAR)), "
                 f"fitted on {corr.rows_} training rows of {fitted_on}; penalty {corr.alpha_:g} chosen by "
                 f"{FOLDS}-fold blocked cross-validation over the training dates (QLIKE "
                 + ", ".join(f"{a:g}: {q:.3f}" for a, q in corr.valid_qlike_.items()) + ")")
    fc = {"dynmix": world_var, "dynmix_har": corrected, "har": har,
          "log_har": LogHAR(horizon).fit(raw, wr.train_last).predict(raw), "garch": garch,
          "ewma": ewma_variance(raw)}
    if true_var is not None:
        fc[ORACLE] = oracle_variance(true_var, horizon)
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
        "realised": vol(realised), **{m: vol(f) for m, f in fc.items()},
    })
    notes.append(f"volatility h = {horizon}: {frame.height} (company, test date) pairs scored, {len(origins)} test "
                 "origins; QLIKE of the variance, MSE of the daily variance in percent²; DM: DynMIX against each "
                 f"baseline on the per-date mean QLIKE, Newey–West with {horizon} lags, dm_stat > 0: DynMIX loses "
                 f"more; mcs: the methods kept in the 90 % Model Confidence Set (arch, {MCS_REPS} stationary-bootstrap "
                 "replications, seed 0)")
    return frame, notes


def run_forecast(ws: Workspace, run_dir: str | Path | RunDir, *, progress: bool = True) -> dict[str, Any]:
    """Forecast, score, write the files and merge report["forecast"]; returns that section.

    Needs the run's world model; the JEPA surprise index is added when the run has a JEPA (else a note says how
    to train it).
    """
    rd = RunDir.of(run_dir)
    wr = load_world_run(ws, rd)
    notes = list(wr.notes)
    true_var = true_variance_panel(ws, wr.vt.tickers, wr.vt.dates)
    if true_var is not None:
        notes.append("oracle: the synthetic market's true variance of the forecast days (it knows their regimes: "
                     "the limit no forecast from data up to t reaches); left out of the Model Confidence Set")
    frame, vol_notes = volatility_frame(wr, progress, true_var=true_var)
    notes += vol_notes
    rd.write_table(rd.vol_forecast_path, frame)
    first_test, t_end = wr.train_last + 1, len(wr.vt.dates) - 1
    rolled = origin_dates(wr.panel, first_test, t_end, wr.cfg.world.rollout)  # test origins with H later days
    next_day = (origin_dates(wr.panel, 0, wr.train_last, 1), origin_dates(wr.panel, first_test, t_end, 1))
    volatility: dict[str, Any] = {}
    ours: dict[str, Any] = {
        "volatility": volatility,
        "latent": latent_errors(wr.world, wr.panel, rolled, wr.cfg.world.rollout) if rolled.numel() else {},
        "density": density_nll(wr.world, wr.panel, wr.train_last, *next_day),
    }
    ours["gmv"], gmv_note = gmv_comparison(wr.world, wr.panel, wr.vt.raw_returns.double().cpu().numpy(),
                                           wr.train_last)
    notes.append(gmv_note)
    for h in HORIZONS:
        if h == VOL_HORIZON:
            frame_h = frame
        else:
            try:
                frame_h, notes_h = volatility_frame(wr, progress, h, true_var)
            except DynMIXError as e:  # e.g. too few training rows for a 22-day target on a short history
                notes.append(f"volatility h = {h} not scored: {e}")
                continue
            notes += notes_h[-2:]  # the GARCH notes are the same at every horizon
        if frame_h.height:
            volatility[f"h{h}"] = volatility_scores(frame_h, h)
        else:
            notes.append(f"volatility h = {h}: no test origin with {h} later returns: nothing scored")
    if not rd.jepa_path.exists():
        notes.append(f"JEPA surprise index skipped: run {rd.name} has no JEPA (`dynmix train --stage jepa --run "
                     f"{rd.name}`)")
    report = rd.update_report({"forecast": {**ours, "notes": notes}})  # the whole section: no stale keys stay
    if rd.jepa_path.exists():  # after the first write: if the surprise fails, the world model's results are saved
        ours["surprise"] = compute_surprise(ws, rd)
        report = rd.update_report({"forecast": {**ours, "notes": notes}}, merge=True)
    return dict(report["forecast"])


def forecast_table(result: dict[str, Any]) -> str:
    """Markdown tables of a forecast section (or a whole report): volatility by horizon, GMV, density, latent,
    surprise.
    """
    return "\n".join(forecast_markdown(result.get("forecast", result), level="")).rstrip() or "no forecast results"


__all__ = ["forecast_table", "mse", "qlike", "run_forecast", "volatility_scores"]
