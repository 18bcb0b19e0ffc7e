"""`dynmix_har`: a volatility forecast that starts at HAR and adds only what the world model's state knows.

σ̂²_{i,t} = HAR_{i,t} · exp(c + x_{i,t}·β), with x_{i,t} the company's latent z_{i,t}, the market latent m_t and
log(world-model variance / HAR) at origin t (all from data up to t), standardised with training means and stds.
(c, β) minimise the ridge-penalised QLIKE of the forecast on training origins only (first < t, t + H <= last; the
features come from a world model trained up to `first`, so they are out of sample on every fitted row); the penalty
(or β = 0, HAR times a fitted constant) is chosen by blocked cross-validation over the training period: FOLDS
contiguous blocks of dates, each scored by QLIKE after fitting on the others less `horizon` dates either side of
it (their targets overlap the block's), so the choice sees the training period's stressed spells and not only its
last, calm stretch; then (c, β) are refitted on all of them. `loss="log"` fits log(RV / HAR) by ridge
instead, with Duan's smearing. The design (features, loss) was chosen by that training-tail QLIKE; README lists
each design tried with its figures.

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
FOLDS = 5  # blocks of training dates that choose the penalty
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
    """Linear model f = c + x·β of the log factor on HAR; `fit` on training rows, `predict` the factor exp(f).

    loss "log": ridge regression of log(RV / HAR) plus Duan's smearing; loss "qlike": ridge-penalised QLIKE of
    HAR·exp(f) minimised directly (convex in c, β; L-BFGS). Penalty candidates: ALPHAS and, with `allow_none`,
    β = 0 (HAR times a fitted constant), chosen by blocked cross-validation over the rows' dates (FOLDS blocks,
    `gap` dates purged either side of the scored block).
    """

    def __init__(self, loss: str = "qlike", allow_none: bool = True, gap: int = 0) -> None:
        if loss not in ("log", "qlike"):
            raise DynMIXError(f"HARCorrection: loss must be 'log' or 'qlike', got {loss!r}")
        self.loss, self.allow_none, self.gap = loss, allow_none, gap

    def fit(self, x: np.ndarray, log_ratio: np.ndarray, real: np.ndarray, prior: np.ndarray, t: np.ndarray
            ) -> HARCorrection:
        """X (R, F), log_ratio (R,) = log(realised / prior), real, prior (R,) variances, t (R,) the rows' dates."""
        ok = np.isfinite(x).all(1) & np.isfinite(log_ratio)
        if ok.sum() < 50:
            raise DynMIXError(f"dynmix_har: only {int(ok.sum())} complete training rows; expected at least 50")
        x, y, real, prior, t = x[ok], log_ratio[ok], real[ok], prior[ok], t[ok]
        blocks = np.array_split(np.unique(t), FOLDS)
        self.valid_qlike_ = {}
        for a in (*ALPHAS, *((np.inf,) if self.allow_none else ())):
            losses = []
            for days in blocks:
                test = (t >= days[0]) & (t <= days[-1])
                train = (t < days[0] - self.gap) | (t > days[-1] + self.gap)
                pred = prior[test] * self._fit(x[train], y[train], a).predict(x[test])
                losses.append(qlike_loss(real[test], pred))
            self.valid_qlike_[a] = float(np.mean(np.concatenate(losses)))
        self.alpha_ = min(self.valid_qlike_, key=self.valid_qlike_.__getitem__)
        self._fit(x, y, self.alpha_)
        self.rows_ = int(len(y))
        return self

    def _fit(self, x: np.ndarray, y: np.ndarray, alpha: float) -> HARCorrection:
        self.mean_, self.std_ = x.mean(0), x.std(0) + 1e-8
        xs = (x - self.mean_) / self.std_
        if self.loss == "qlike":
            return self._fit_qlike(xs, y, alpha)
        b0 = float(y.mean())
        if not np.isfinite(alpha):
            self.beta_ = np.zeros(xs.shape[1])
            self.c_ = float(np.log(np.mean(np.exp(y))))
            return self
        self.beta_ = np.linalg.solve(xs.T @ xs + alpha * np.eye(xs.shape[1]), xs.T @ (y - b0))
        resid = y - b0 - xs @ self.beta_
        self.c_ = b0 + float(np.log(np.mean(np.exp(resid))))
        return self

    def _fit_qlike(self, xs: np.ndarray, y: np.ndarray, alpha: float) -> HARCorrection:
        """Min over (c, β) of mean(u e^{−f} + f) + alpha ‖β‖² / R, u = RV / HAR = e^y, f = c + xs·β."""
        from scipy.optimize import minimize

        u, r = np.exp(y), len(y)
        if not np.isfinite(alpha):  # β = 0: the QLIKE-optimal constant is log mean(u)
            self.beta_, self.c_ = np.zeros(xs.shape[1]), float(np.log(np.mean(u)))
            return self

        def obj(p: np.ndarray) -> tuple[float, np.ndarray]:
            f = p[0] + xs @ p[1:]
            e = u * np.exp(-f)
            g = 1.0 - e  # d loss / d f per row
            grad = np.concatenate([[g.mean()], xs.T @ g / r + 2 * alpha * p[1:] / r])
            return float(np.mean(e + f) + alpha * p[1:] @ p[1:] / r), grad

        p0 = np.concatenate([[np.log(np.mean(u))], np.zeros(xs.shape[1])])
        res = minimize(obj, p0, jac=True, method="L-BFGS-B")
        self.c_, self.beta_ = float(res.x[0]), res.x[1:]
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(…,) multiplicative factors exp(c + x·β) for x (…, F); NaN where a feature is missing."""
        return np.exp(self.c_ + ((x - self.mean_) / self.std_) @ self.beta_)


def dynmix_har(features: np.ndarray, har: np.ndarray, world_var: np.ndarray, realised: np.ndarray, last: int,
               horizon: int, loss: str = "qlike", with_world_ratio: bool = True, first: int = -1
               ) -> tuple[np.ndarray, HARCorrection]:
    """(N, T) dynmix_har forecast from state features (N, T, F), the HAR forecast, the world model's variance and
    the realised target (all (N, T)); fitted on origins first < t <= last − horizon only (`first`: the last
    training date of the world model that made the features, so that they are out of sample for it).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.concatenate([features, np.log(world_var / har)[..., None]], -1) if with_world_ratio else features
        log_ratio = np.log(realised / har)
    tt = np.arange(max(first + 1, 0), max(last - horizon + 1, 0))
    if len(tt) < 2 * FOLDS:
        raise DynMIXError(f"dynmix_har: {len(tt)} fitting dates after the stacking cut with {horizon}-day targets "
                          f"inside the training period; expected at least {2 * FOLDS} (raise [world] stack_share)")
    rows_t, rows_i = np.meshgrid(tt, np.arange(har.shape[0]), indexing="xy")  # time-major order below
    order = np.lexsort((rows_i.ravel(), rows_t.ravel()))
    ii, tj = rows_i.ravel()[order], rows_t.ravel()[order]
    model = HARCorrection(loss, gap=horizon).fit(x[ii, tj], log_ratio[ii, tj], realised[ii, tj], har[ii, tj], tj)
    return har * model.predict(x), model


__all__ = ["HARCorrection", "dynmix_har", "state_features"]
