"""`dynmix_har`: a volatility forecast that starts at HAR and adds only what the world model's state knows.

σ̂²_{i,t} = HAR_{i,t} · exp(c + x_{i,t}·β), with x_{i,t} the company's latent z_{i,t}, the market latent m_t and
log(world-model variance / HAR) at origin t (all from data up to t). β: ridge regression of
log(RV_{t+1..t+H} / HAR_{i,t}) on x (standardised with training means and stds), fitted on training origins only
(t + H <= last); the ridge penalty is chosen on the last VALID_FRACTION of the training origins (by QLIKE after
refitting on the earlier ones), then β is refitted on all of them; c = the intercept plus log of the mean of
exp(residual) on the training rows (Duan's smearing, so the variance, not the log, is unbiased). With β = 0 the
forecast is HAR's times a constant.

Letters: N companies, T dates, B origins in a block, F features, Z company latent, M market latent.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from dynmix.errors import DynMIXError
from dynmix.forecast.compare import qlike_loss
from dynmix.models.world import WorldModel
from dynmix.runs.panel import WorldPanel

ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)  # ridge penalties tried (on standardised features)
VALID_FRACTION = 0.2  # last part of the training origins that chooses the penalty
BLOCK = 256


@torch.no_grad()
def state_features(world: WorldModel, panel: WorldPanel, origins: Tensor) -> np.ndarray:
    """(N, T, Z + M) the company latent and the market latent at each origin; NaN where not valid."""
    n, t_all = len(panel.tickers), len(panel.dates)
    f = world.cfg.latent + world.cfg.market_latent
    out = np.full((n, t_all, f), np.nan)
    for start in range(0, origins.numel(), BLOCK):
        t = origins[start : start + BLOCK]
        z = world.encode(*panel.inputs(t))
        feat = torch.cat([z.company, z.market.unsqueeze(1).expand(-1, n, -1)], -1)  # (B, N, F)
        feat = torch.where(z.mask.unsqueeze(-1), feat, torch.nan)
        out[:, t.cpu().numpy()] = feat.transpose(0, 1).double().cpu().numpy()
    return out


class HARCorrection:
    """Ridge model of log(RV / HAR) on features; `fit` on training rows, `predict` the multiplicative factor."""

    def fit(self, x: np.ndarray, log_ratio: np.ndarray, real: np.ndarray, prior: np.ndarray) -> HARCorrection:
        """X (R, F), log_ratio (R,) = log(realised / prior), real, prior (R,) variances; rows in time order."""
        ok = np.isfinite(x).all(1) & np.isfinite(log_ratio)
        if ok.sum() < 50:
            raise DynMIXError(f"dynmix_har: only {int(ok.sum())} complete training rows; expected at least 50")
        x, y, real, prior = x[ok], log_ratio[ok], real[ok], prior[ok]
        cut = int(len(y) * (1 - VALID_FRACTION))
        self.valid_qlike_ = {}
        for a in ALPHAS:
            pred = prior[cut:] * self._fit(x[:cut], y[:cut], a).predict(x[cut:])
            self.valid_qlike_[a] = float(np.mean(qlike_loss(real[cut:], pred)))
        self.alpha_ = min(self.valid_qlike_, key=self.valid_qlike_.__getitem__)
        self._fit(x, y, self.alpha_)
        self.rows_ = int(len(y))
        return self

    def _fit(self, x: np.ndarray, y: np.ndarray, alpha: float) -> HARCorrection:
        self.mean_, self.std_ = x.mean(0), x.std(0) + 1e-8
        xs = (x - self.mean_) / self.std_
        b0 = float(y.mean())
        self.beta_ = np.linalg.solve(xs.T @ xs + alpha * np.eye(xs.shape[1]), xs.T @ (y - b0))
        resid = y - b0 - xs @ self.beta_
        self.c_ = b0 + float(np.log(np.mean(np.exp(resid))))
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(…,) multiplicative factors exp(c + x·β) for x (…, F); NaN where a feature is missing."""
        return np.exp(self.c_ + ((x - self.mean_) / self.std_) @ self.beta_)


def dynmix_har(features: np.ndarray, har: np.ndarray, world_var: np.ndarray, realised: np.ndarray, last: int,
               horizon: int) -> tuple[np.ndarray, HARCorrection]:
    """(N, T) dynmix_har forecast from state features (N, T, F), the HAR forecast, the world model's variance and
    the realised target (all (N, T)); fitted on origins t <= last − horizon only.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.concatenate([features, np.log(world_var / har)[..., None]], -1)  # (N, T, F + 1)
        log_ratio = np.log(realised / har)
    t_fit = max(last - horizon + 1, 0)
    tt = np.arange(t_fit)
    rows_t, rows_i = np.meshgrid(tt, np.arange(har.shape[0]), indexing="xy")  # time-major order below
    order = np.lexsort((rows_i.ravel(), rows_t.ravel()))
    ii, tj = rows_i.ravel()[order], rows_t.ravel()[order]
    model = HARCorrection().fit(x[ii, tj], log_ratio[ii, tj], realised[ii, tj], har[ii, tj])
    return har * model.predict(x), model


__all__ = ["HARCorrection", "dynmix_har", "state_features"]
