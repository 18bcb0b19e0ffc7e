"""The JEPA energy and the market surprise index: `compute_surprise(ws, run) -> dict`.

Shapes: N companies, T dates, H horizon, D representation, M valid samples.

Energy of company i at date t: the mean over h = 1..H of the prediction error (the JEPA's training loss, mean
over D) of the representation of the window ending at t, predicted h days earlier from the context at t-h. It uses
data up to t only, so it is known at the close of t. The surprise index is its cross-sectional mean per date (dates
with at least MIN_COMPANIES companies). Out of sample (test dates), the surprise at t is correlated (Spearman,
Pearson) with the realised market volatility of t+1 .. t+5, next to the naive baselines: trailing realised market
volatility over 5 and 21 days; and whether the index adds to a HAR forecast of next-week market variance
(`surprise_increment`). Writes RUN/forecast/surprise.parquet (date, surprise, market_vol, split,
n_companies) and merges report["forecast"]["surprise"] into report.json, keeping every other key.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from scipy.stats import pearsonr, spearmanr
from torch import Tensor, nn

from dynmix.errors import DynMIXError
from dynmix.forecast.baselines import forward_mean, har_design
from dynmix.forecast.compare import diebold_mariano, qlike_loss
from dynmix.models.jepa import TemporalJEPA, prediction_error
from dynmix.runs.models import load_jepa, run_device
from dynmix.runs.rundir import RunDir
from dynmix.runs.threads import single_thread
from dynmix.runs.viewstamp import signature_changes
from dynmix.views.tensors import ViewTensors, load_view_tensors
from dynmix.workspace import Workspace

VOL_HORIZON = 5  # days of future realised market volatility scored
MIN_COMPANIES = 5  # a date needs this many companies with an energy (capped at N)
TRADING_DAYS = 252
CHUNK = 8192  # samples encoded at a time


@torch.no_grad()
def _encode_all(encoder: nn.Module, vt: ViewTensors, ii: Tensor, tt: Tensor) -> Tensor:
    """(M, D) representations of the windows ending at tt of companies ii, encoded in chunks."""
    out = [encoder(vt.implicit_windows(ii[k:k + CHUNK], tt[k:k + CHUNK])).float() for k in range(0, len(ii), CHUNK)]
    return torch.cat(out)


@torch.no_grad()
def energy_panel(model: TemporalJEPA, target_encoder: nn.Module, vt: ViewTensors, horizon: int,
                 kind: str = "smooth_l1") -> Tensor:
    """(N, T) energy: mean over h of the error of the h-step prediction from t-h of the window at t; NaN if unknown.

    Defined where the window at t and all H contexts t-1 .. t-H are valid.
    """
    n, t_all = vt.shape
    iv = vt.implicit_valid()  # (N, T)
    ii, tt = torch.nonzero(iv, as_tuple=True)  # (M,)
    target = torch.zeros(n, t_all, model.encoder.out.out_features, device=vt.device)  # (N, T, D)
    z = _encode_all(target_encoder, vt, ii, tt)  # (M, D)
    target[ii, tt] = torch.nn.functional.layer_norm(z, z.shape[-1:])
    total = torch.zeros(n, t_all, device=vt.device)  # (N, T) summed error over horizons
    count = torch.zeros(n, t_all, device=vt.device, dtype=torch.long)
    offs = torch.arange(1, horizon + 1, device=vt.device)  # (H,)
    for k in range(0, len(ii), CHUNK):
        i, t = ii[k:k + CHUNK], tt[k:k + CHUNK]  # context origins (b,)
        pred = model.predictor(model.encoder(vt.implicit_windows(i, t)).float())  # (b, H, D)
        tf = t[:, None] + offs[None, :]  # (b, H) target dates
        ok = tf < t_all
        tf = tf.clamp_max(t_all - 1)
        ok &= iv[i[:, None], tf]
        err = prediction_error(pred, target[i[:, None], tf], kind).mean(dim=2)  # (b, H)
        i_b = i[:, None].expand_as(tf)
        total.index_put_((i_b[ok], tf[ok]), err[ok], accumulate=True)
        count.index_put_((i_b[ok], tf[ok]), torch.ones_like(tf[ok]), accumulate=True)
    energy = total / horizon
    return torch.where(count == horizon, energy, torch.full_like(energy, float("nan")))


def market_returns(views_dir: Path, dates: list[Any]) -> np.ndarray:
    """(T,) daily market log returns from views/market.parquet on the views' dates (NaN where missing)."""
    market = pl.read_parquet(views_dir / "market.parquet").sort("date")
    if market["date"].to_list() != list(dates):
        raise DynMIXError(f"{views_dir / 'market.parquet'}: dates differ from the loaded views; rebuild the views")
    return market["mkt_ret"].cast(pl.Float64).fill_null(float("nan")).to_numpy().copy()


def _realised_vol(r: np.ndarray, start: int, stop: int) -> np.ndarray:
    """(T,) annualised sqrt(mean r²) over days t+start .. t+stop-1 (NaN where any day is missing or outside)."""
    t_all = len(r)
    out = np.full(t_all, np.nan)
    for t in range(t_all):
        a, b = t + start, t + stop
        if a >= 0 and b <= t_all:
            out[t] = math.sqrt(np.mean(r[a:b] ** 2) * TRADING_DAYS)
    return out


def _corr(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    ok = np.isfinite(x) & np.isfinite(y)
    n = int(ok.sum())
    if n < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return {"spearman": None, "pearson": None, "n_dates": n}
    return {"spearman": float(spearmanr(x[ok], y[ok]).statistic), "pearson": float(pearsonr(x[ok], y[ok])[0]),
            "n_dates": n}


def surprise_scores(surprise: np.ndarray, mkt_ret: np.ndarray, test: np.ndarray) -> dict[str, dict[str, Any]]:
    """Correlation with the realised market volatility of t+1 .. t+5 on `test` dates: surprise vs trailing vols."""
    future = _realised_vol(mkt_ret, 1, VOL_HORIZON + 1)  # (T,)
    trailing = {"trailing_vol_5d": _realised_vol(mkt_ret, -VOL_HORIZON + 1, 1),
                "trailing_vol_21d": _realised_vol(mkt_ret, -20, 1)}
    keep = test & np.isfinite(surprise)
    for v in trailing.values():
        keep &= np.isfinite(v)  # score every method on the same dates
    return {"jepa_surprise": _corr(surprise[keep], future[keep]),
            **{k: _corr(v[keep], future[keep]) for k, v in trailing.items()}}


def surprise_increment(surprise: np.ndarray, mkt_ret: np.ndarray, train_last: int,
                       horizon: int = VOL_HORIZON) -> dict[str, Any]:
    """Does the surprise index add to HAR? The log of next-week market variance (mean r² of t+1 .. t+H)
    regressed by OLS on the logs of the market's HAR terms (mean r² of the last 1, 5, 22 days), with and without
    the index (standardised on the training rows), fitted on origins whose target lies inside the training period;
    forecasts exp(fit) times the training residuals' mean exp (smearing). QLIKE of both on the test origins, the
    index's HAC (Newey–West, H lags) t-statistic on the training rows, and a Diebold–Mariano test of the two
    forecasts' test losses (dm_stat < 0: the index helps). Logs keep every forecast positive.
    """
    import statsmodels.api as sm

    r2 = np.asarray(mkt_ret, dtype=np.float64)[None] ** 2  # (1, T)
    y = forward_mean(r2, horizon)[0]  # (T,)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_har = np.log(har_design(r2)[0])  # (T, 3)
        log_y = np.log(y)
    t_all = len(y)
    ok = np.isfinite(log_y) & np.isfinite(log_har).all(axis=1) & np.isfinite(surprise)
    train = ok & (np.arange(t_all) <= train_last - horizon)
    test = ok & (np.arange(t_all) > train_last)
    if train.sum() < 30 or test.sum() < 3:
        raise DynMIXError(f"surprise increment: {int(train.sum())} training and {int(test.sum())} test origins "
                          "with the index and a complete next week; need at least 30 and 3")
    z = (surprise - surprise[train].mean()) / (surprise[train].std() or 1.0)
    x0 = sm.add_constant(log_har, has_constant="add")  # (T, 4)
    x1 = np.column_stack([x0, z])  # (T, 5)
    fits, losses = [], []
    for x in (x0, x1):
        res = sm.OLS(log_y[train], x[train]).fit(cov_type="HAC", cov_kwds={"maxlags": horizon})
        smear = float(np.mean(np.exp(res.resid)))
        fits.append(res)
        losses.append(qlike_loss(y[test], np.exp(x[test] @ res.params) * smear))
    dm_stat, dm_p = diebold_mariano(losses[1], losses[0], lags=horizon)
    return {"qlike_har": float(losses[0].mean()), "qlike_har_surprise": float(losses[1].mean()),
            "coef": float(fits[1].params[-1]), "t_stat": float(fits[1].tvalues[-1]), "p": float(fits[1].pvalues[-1]),
            "dm_stat": dm_stat, "dm_p": dm_p, "train_origins": int(train.sum()), "test_origins": int(test.sum())}


def compute_surprise(ws: Workspace, run_dir: str | Path | RunDir) -> dict[str, Any]:
    """Write RUN/forecast/surprise.parquet, merge report["forecast"]["surprise"]; return that dict."""
    rd = RunDir.of(run_dir)
    if not rd.jepa_path.exists():
        raise DynMIXError(f"run {rd.name} has no JEPA ({rd.jepa_path}): train it with "
                          f"`dynmix train --stage jepa --run {rd.name}`")
    device = run_device(rd)
    vt = load_view_tensors(ws.views, device)
    cfg, model, target, ckpt = load_jepa(rd, vt, device)
    if changes := signature_changes(ckpt["views"], vt):
        raise DynMIXError(f"the views in {ws.views} differ from those {rd.jepa_path} was trained on ({changes}); "
                          f"train the JEPA again (`dynmix train --stage jepa --run {rd.name}`)")
    train_last = vt.date_index(ckpt["views"]["train_end"])
    with single_thread(device.type == "cpu"):  # a busy CPU loses more to thread contention than it gains
        energy = energy_panel(model, target, vt, cfg.jepa.horizon, cfg.jepa.loss).cpu().numpy()  # (N, T)
    n_comp = np.isfinite(energy).sum(axis=0)  # (T,)
    enough = n_comp >= min(MIN_COMPANIES, vt.shape[0])
    surprise = np.full(vt.shape[1], np.nan)
    surprise[enough] = np.nanmean(energy[:, enough], axis=0)
    is_test = np.arange(vt.shape[1]) > train_last
    frame = pl.DataFrame({
        "date": pl.Series(vt.dates, dtype=pl.Date), "surprise": surprise,
        "market_vol": vt.market_vol.cpu().numpy().astype(np.float64),
        "split": np.where(is_test, "test", "train"), "n_companies": n_comp.astype(np.int64),
    }).filter(pl.Series(enough))
    rd.write_table(rd.surprise_path, frame)
    mkt_ret = market_returns(ws.views, vt.dates)
    scores: dict[str, Any] = dict(surprise_scores(surprise, mkt_ret, is_test))
    try:
        scores["increment"] = surprise_increment(surprise, mkt_ret, train_last)
    except DynMIXError as e:  # a short history: the correlations above still stand
        scores["increment"] = {"note": str(e)}
    rd.update_report({"forecast": {"surprise": scores}}, merge=True)
    return scores


__all__ = ["compute_surprise", "energy_panel", "surprise_increment", "surprise_scores"]
