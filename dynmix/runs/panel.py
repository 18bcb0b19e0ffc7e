"""The world model's inputs: frozen DynMIX representations and market features on the (T, N) date grid.

Letters: T dates, N companies, D DynMIX representation, E = 2D world input per company (explicit and
implicit representations side by side), G market features, B dates in a batch.

The DynMIX encoders are frozen, so their outputs are read once from the run's embeddings (the encoders' output for
every valid sample, exported at the end of training) or, for the dates they lack, computed by date blocks; they
are kept as a dense (T, N, E) panel: T·N·E floats (the 20-company sample: 4,500 x 20 x 64, 23 MB).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import torch
from torch import Tensor

from dynmix.errors import DynMIXError
from dynmix.models.dynmix import DynMIX
from dynmix.runs import embeddings as emb
from dynmix.views.tensors import ViewTensors

MARKET_DAYS = 5  # scaled market returns of the last days in the market features


@dataclass
class WorldPanel:
    tickers: list[str]  # N
    dates: list[dt.date]  # T
    reps: Tensor  # (T, N, E) frozen representations [explicit, implicit], 0 where not valid
    valid: Tensor  # (T, N) bool: the company has a valid sample (views) at the date
    market: Tensor  # (T, G) market features from data up to each date
    returns: Tensor  # (T, N) daily log returns x return_scale, NaN where missing

    def inputs(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The arguments of `WorldModel.encode` at dates t (B,): reps (B, N, E), mask (B, N), market (B, G)."""
        return self.reps[t], self.valid[t], self.market[t]

    @property
    def rep_dim(self) -> int:
        return int(self.reps.shape[-1])

    @property
    def market_dim(self) -> int:
        return int(self.market.shape[-1])


def origin_dates(panel: WorldPanel, first: int, last: int, horizon: int) -> Tensor:
    """(B,) date indices t in [first, last − horizon] with at least two valid companies at t."""
    t = torch.arange(max(first, 0), max(last - horizon + 1, 0), device=panel.valid.device)
    return t[panel.valid[t].sum(1) >= 2]


def market_features(vt: ViewTensors) -> Tensor:
    """(T, G): the market's scaled returns of the last MARKET_DAYS days, log market volatility, log dispersion."""
    mkt = vt.returns[0, :, 1]  # (T,) the market channel, the same for every company
    padded = torch.nn.functional.pad(mkt, (MARKET_DAYS - 1, 0))
    lags = padded.unfold(0, MARKET_DAYS, 1)  # (T, MARKET_DAYS), oldest first
    vol = torch.log(vt.market_vol.clamp_min(1e-4)).unsqueeze(1)  # (T, 1)
    disp = torch.log(vt.dispersion.clamp_min(1e-6)).unsqueeze(1)  # (T, 1)
    return torch.cat([lags, vol, disp], 1).float()


@torch.no_grad()
def representations(model: DynMIX, vt: ViewTensors, dates: Tensor, valid: Tensor,
                    dates_per_batch: int = 128) -> Tensor:
    """(len(dates), N, 2D) [explicit, implicit] representations of the valid companies at `dates`; 0 elsewhere."""
    was_training = model.training
    model.eval()
    n = len(vt.tickers)
    out: Tensor | None = None
    for start in range(0, dates.numel(), dates_per_batch):
        block = dates[start : start + dates_per_batch]  # (b,)
        kk, i = torch.nonzero(valid[:, block].T, as_tuple=True)  # position in block, company
        if out is None:
            out = torch.zeros(dates.numel(), n, 2 * model.cfg.dim, device=vt.device)
        if i.numel() == 0:
            continue
        t = block[kk]
        reps = model.embed({"explicit": vt.explicit_features(i, t), "implicit": vt.implicit_windows(i, t)})
        out[start + kk, i] = torch.cat([reps["explicit"], reps["implicit"]], 1).float()
    model.train(was_training)
    return out if out is not None else torch.zeros(0, n, 2 * model.cfg.dim, device=vt.device)


def exported_representations(path: Path, vt: ViewTensors, dates: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    """(len(dates), N, 2D) [explicit, implicit] representations read from the run's embeddings (either layout,
    dynmix.runs.embeddings; only the years and dates asked for), and the (len, N) mask of the samples found there.
    """
    wanted = [vt.dates[k] for k in dates.cpu().tolist()]
    pos = {d: k for k, d in enumerate(wanted)}
    col = {tk: k for k, tk in enumerate(vt.tickers)}
    stored = emb.embedding_dim(path)
    if stored != dim:
        raise DynMIXError(f"{path}: embeddings of size {stored}, expected {dim} (the run's model.dim); "
                          "re-export them with `dynmix embed RUN`")
    reps = torch.zeros(len(wanted), len(vt.tickers), 2 * dim)
    found = torch.ones(len(wanted), len(vt.tickers), dtype=torch.bool)
    some = pl.Series(wanted, dtype=pl.Date).implode()
    for half, view in enumerate(("explicit", "implicit")):
        lf = emb.scan_view(path, view, min(wanted, default=None), max(wanted, default=None), col)
        part = lf.filter(pl.col("date").is_in(some)).collect() if len(wanted) < len(vt.dates) else lf.collect()
        seen = torch.zeros_like(found)
        if part.height:
            t = torch.tensor(part["date"].replace_strict(pos, return_dtype=pl.Int64).to_numpy())
            i = torch.tensor(part["ticker"].replace_strict(col, return_dtype=pl.Int64).to_numpy())
            x = part["embedding"].list.to_array(dim).to_numpy().astype("float32")  # (S, D)
            reps[t, i, half * dim : (half + 1) * dim] = torch.from_numpy(x)
            seen[t, i] = True
        found &= seen
    return reps.to(vt.device), found.to(vt.device)


def build_panel(model: DynMIX, vt: ViewTensors, return_scale: float, dates: Tensor | None = None,
                embeddings: Path | None = None) -> WorldPanel:
    """The world panel over all dates (default) or the given date indices (e.g. one date for the planner).

    With `embeddings` (a run's embeddings that exist), the representations are read from them; `model` computes
    them otherwise, and for the dates a strided export skipped.
    """
    valid = vt.valid()  # (N, T)
    idx = torch.arange(len(vt.dates), device=vt.device) if dates is None else dates.to(vt.device)
    mask = valid[:, idx].T  # (len, N)
    if embeddings is not None and embeddings.exists():
        reps, found = exported_representations(embeddings, vt, idx, model.cfg.dim)
        gap = (mask & ~found).any(dim=1)  # (len,) dates the export skipped (`dynmix embed --every k`)
        if bool(gap.any()):
            reps[gap] = representations(model, vt, idx[gap], valid)
            found[gap] = True
        mask = mask & found
    else:
        reps = representations(model, vt, idx, valid)
    keep = idx.cpu().tolist()
    return WorldPanel(
        tickers=list(vt.tickers),
        dates=[vt.dates[k] for k in keep],
        reps=reps,
        valid=mask.contiguous(),
        market=market_features(vt)[idx],
        returns=(vt.raw_returns[:, idx].T * return_scale).contiguous(),
    )
