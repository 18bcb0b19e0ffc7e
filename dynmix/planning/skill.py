"""Skill of an expected-return forecast, measured on the training period, and the shrinkage it implies.

Letters: D origins (dates a forecast is made), A assets, H days held.

The skill is the information coefficient (IC): the cross-sectional Spearman correlation between a forecast made
at an origin and the simple return realised over the next H days, averaged over origins (its standard error from
the spread over origins). A forecast with IC κ is used as Grinold's alpha, α = max(κ, 0) · s · z: z the
forecast's cross-sectional z-score and s the typical cross-sectional dispersion of daily returns, so a forecast
without measured skill becomes 0 and the planner holds what risk and costs prefer. On the long-only simplex only
the cross-sectional differences of μ̂ move a plan (Σw = 1), so nothing is lost by centring.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy import stats as sps

from dynmix.models.risk import Forecast


@dataclass
class Skill:
    ic: float  # mean cross-sectional Spearman IC over origins (nan when there were none)
    ic_se: float  # its standard error (std over origins / sqrt(origins))
    origins: int  # dates the IC averages over
    dispersion: float  # mean cross-sectional std of daily simple returns on the origins' dates
    horizon: int = 1  # H: days of the realised returns the IC is measured on

    @property
    def factor(self) -> float:
        """The daily weight of the z-scored forecast: max(IC, 0) · dispersion / √H (0 without measured skill)."""
        return max(self.ic, 0.0) * self.dispersion / math.sqrt(self.horizon) if math.isfinite(self.ic) else 0.0

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


NO_SKILL = Skill(ic=float("nan"), ic_se=float("nan"), origins=0, dispersion=0.0)


def measure_skill(pred: np.ndarray, realised: np.ndarray, daily: np.ndarray, horizon: int = 1) -> Skill:
    """IC of forecasts `pred` (D, A) against `realised` (D, A) `horizon`-day simple returns (NaN: not scored), and
    the dispersion of `daily` (T, A) simple returns. Origins with fewer than 3 scored assets are skipped.
    """
    ics = []
    for p, r in zip(pred, realised, strict=True):
        ok = np.isfinite(p) & np.isfinite(r)
        if ok.sum() >= 3 and np.ptp(p[ok]) > 0 and np.ptp(r[ok]) > 0:
            ics.append(float(sps.spearmanr(p[ok], r[ok]).statistic))
    rows = daily[np.sum(np.isfinite(daily), axis=1) >= 2]  # days with a cross-section
    disp = np.nanstd(rows, axis=1) if len(rows) else np.zeros(0)
    dispersion = float(disp.mean()) if len(disp) else 0.0
    if not ics:
        return Skill(ic=float("nan"), ic_se=float("nan"), origins=0, dispersion=dispersion, horizon=horizon)
    x = np.asarray(ics)
    se = float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else float("nan")
    return Skill(ic=float(x.mean()), ic_se=se, origins=len(x), dispersion=dispersion, horizon=horizon)


def shrink(forecast: Forecast, skill: Skill) -> Forecast:
    """The forecast with μ̂ replaced by Grinold's daily alpha `skill.factor` · z, z the per-step z-score."""
    mu = forecast.mu
    if mu.shape[-1] < 2 or skill.factor == 0.0:
        return forecast.with_mu(torch.zeros_like(mu))
    centred = mu - mu.mean(-1, keepdim=True)
    sd = centred.pow(2).mean(-1, keepdim=True).sqrt()
    z = torch.where(sd > 0, centred / sd.clamp_min(1e-30), torch.zeros_like(centred))
    return forecast.with_mu(skill.factor * z)


def trailing_mean_skill(returns: np.ndarray, lookback: int, horizon: int, last: int) -> Skill:
    """Skill of the trailing `lookback`-day mean of (T, A) simple `returns` as a forecast of the next `horizon`
    days, at origins every `horizon` rows whose realised days all lie at or before row `last` (the training
    period). As in the backtest, the forecast at row p sees rows p − lookback .. p − 1 and is scored on p .. p + H − 1.
    """
    origins = np.arange(lookback, last - horizon + 2, horizon)
    if len(origins) == 0:
        return NO_SKILL
    pred = np.stack([_full_mean(returns[p - lookback : p]) for p in origins])
    realised = np.stack([np.prod(1.0 + returns[p : p + horizon], axis=0) - 1.0 for p in origins])
    return measure_skill(pred, realised, returns[lookback : last + 1], horizon)


def _full_mean(window: np.ndarray) -> np.ndarray:
    """Column means of a window; NaN for a column with a missing day (the backtest leaves such assets out)."""
    return np.where(np.isnan(window).any(0), np.nan, np.nan_to_num(window).mean(0))
