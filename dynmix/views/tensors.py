"""Device-resident view tensors and the date-blocked sampler (DESIGN §4, §8).

On disk (written by `dynmix.views.build`), under HOME/views/:
    explicit.parquet  date, ticker, one float column per explicit feature (standardised per date; null = missing)
    returns.parquet   date, ticker, ret (daily log return), ret_scaled (implicit channel 0), on the aligned grid
    market.parquet    date, mkt_ret, mkt_scaled (implicit channel 1), market_vol, dispersion
    views.json        {"feature_names": [...], "channels": [...], "window": L, "min_window_obs": m, ...}

In memory the panels are dense (N, T, ·) float32 tensors, indexed by `tickers` (N) and `dates` (T). Implicit
windows are cut per batch by an index gather, never materialised for every sample.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import polars as pl
import torch
from torch import Tensor

from dynmix.errors import DynMIXError


@dataclass
class ViewTensors:
    tickers: list[str]  # N
    dates: list[dt.date]  # T
    feature_names: list[str]  # F
    channels: list[str]  # C
    window: int  # L
    min_window_obs: int
    explicit: Tensor  # (N, T, F) float32, 0 where missing
    explicit_mask: Tensor  # (N, T) bool: explicit features present
    returns: Tensor  # (N, T, C) float32 scaled returns (company, market, ...), 0 where missing
    returns_mask: Tensor  # (N, T) bool: the company's return is observed
    raw_returns: Tensor  # (N, T) float32 daily log returns, NaN where missing
    market_vol: Tensor  # (T,) float32 market realised volatility from data up to t (annualised)
    dispersion: Tensor  # (T,) float32 cross-sectional return dispersion from data up to t

    @property
    def device(self) -> torch.device:
        return self.explicit.device

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.tickers), len(self.dates)

    def to(self, device: str | torch.device) -> ViewTensors:
        moved = {f.name: getattr(self, f.name).to(device) for f in fields(self)
                 if isinstance(getattr(self, f.name), Tensor)}
        return replace(self, **moved)

    def window_obs(self) -> Tensor:
        """(N, T) number of observed company returns in the window ending at t (inclusive)."""
        c = torch.cumsum(self.returns_mask.to(torch.int32), dim=1)  # (N, T)
        shifted = torch.nn.functional.pad(c, (self.window, 0))[:, : c.shape[1]]  # c[t - L]
        return c - shifted

    def valid(self) -> Tensor:
        """(N, T) bool: the sample (i, t) has explicit features and a full enough return window."""
        n, t = self.shape
        enough = self.window_obs() >= self.min_window_obs
        started = torch.arange(t, device=self.device) >= self.window - 1
        return self.explicit_mask & enough & started[None, :]

    def implicit_windows(self, i: Tensor, t: Tensor) -> Tensor:
        """Gather the implicit view for samples (i, t): (B, L, C), oldest day first, window ends at t."""
        assert i.shape == t.shape and i.ndim == 1, f"i, t must be (B,), got {tuple(i.shape)}, {tuple(t.shape)}"
        offs = torch.arange(-self.window + 1, 1, device=t.device)  # (L,)
        idx = (t[:, None] + offs[None, :]).clamp_min(0)  # (B, L)
        return self.returns[i[:, None], idx]  # (B, L, C)

    def explicit_features(self, i: Tensor, t: Tensor) -> Tensor:
        """(B, F) explicit features of samples (i, t)."""
        return self.explicit[i, t]

    def date_index(self, date: dt.date | str) -> int:
        """Index of the last date <= `date` (so a split date need not be a trading day)."""
        d = dt.date.fromisoformat(date) if isinstance(date, str) else date
        pos = int(np.searchsorted(np.array(self.dates, dtype="datetime64[D]"), np.datetime64(d), side="right"))
        if pos == 0:
            raise DynMIXError(f"date {d} is before the first view date {self.dates[0]}")
        return pos - 1


def _panel(df: pl.DataFrame, cols: list[str], ti: dict[str, int], di: dict[dt.date, int],
           n: int, t: int) -> np.ndarray:
    """Scatter long rows (ticker, date, cols...) into a dense (N, T, len(cols)) float32 array (NaN = missing)."""
    out = np.full((n, t, len(cols)), np.nan, dtype=np.float32)
    rows = df.select(
        pl.col("ticker").replace_strict(ti, return_dtype=pl.Int64).alias("_i"),
        pl.col("date").replace_strict(di, return_dtype=pl.Int64).alias("_t"),
        *cols,
    )
    ii = rows["_i"].to_numpy()
    tt = rows["_t"].to_numpy()
    vals = rows.select(cols).to_numpy().astype(np.float32, copy=False)
    out[ii, tt] = vals
    return out


def load_view_tensors(views_dir: str | Path, device: str | torch.device = "cpu") -> ViewTensors:
    """Read HOME/views/ into dense tensors on `device` (one copy, then kept there)."""
    views_dir = Path(views_dir)
    meta_path = views_dir / "views.json"
    if not meta_path.exists():
        raise DynMIXError(f"no views in {views_dir}: run `dynmix views build` first")
    meta = json.loads(meta_path.read_text())
    feats: list[str] = meta["feature_names"]
    explicit = pl.read_parquet(views_dir / "explicit.parquet")
    returns = pl.read_parquet(views_dir / "returns.parquet")
    market = pl.read_parquet(views_dir / "market.parquet").sort("date")
    dates: list[dt.date] = market["date"].to_list()
    tickers: list[str] = sorted(set(returns["ticker"].unique().to_list()) | set(explicit["ticker"].unique().to_list()))
    ti = {k: v for v, k in enumerate(tickers)}
    di = {k: v for v, k in enumerate(dates)}
    n, t = len(tickers), len(dates)
    x = _panel(explicit, feats, ti, di, n, t)  # (N, T, F)
    x_mask = ~np.isnan(x).any(axis=2)
    x = np.nan_to_num(x, nan=0.0)
    r = _panel(returns, ["ret", "ret_scaled"], ti, di, n, t)  # (N, T, 2)
    raw, scaled = r[..., 0], r[..., 1]
    r_mask = ~np.isnan(scaled)
    mkt = market["mkt_scaled"].fill_null(0.0).fill_nan(0.0).to_numpy().astype(np.float32)
    channels = [np.nan_to_num(scaled, nan=0.0), np.broadcast_to(mkt[None, :], (n, t))]
    vt = ViewTensors(
        tickers=tickers,
        dates=dates,
        feature_names=feats,
        channels=["ret_scaled", "mkt_scaled"],
        window=int(meta["window"]),
        min_window_obs=int(meta["min_window_obs"]),
        explicit=torch.from_numpy(x),
        explicit_mask=torch.from_numpy(x_mask),
        returns=torch.from_numpy(np.ascontiguousarray(np.stack(channels, axis=-1))),
        returns_mask=torch.from_numpy(r_mask),
        raw_returns=torch.from_numpy(np.ascontiguousarray(raw)),
        market_vol=torch.from_numpy(market["market_vol"].fill_null(strategy="forward").fill_null(0.0)
                                    .to_numpy().astype(np.float32)),
        dispersion=torch.from_numpy(market["dispersion"].fill_null(strategy="forward").fill_null(0.0)
                                    .to_numpy().astype(np.float32)),
    )
    return vt.to(device)


class DateBlockSampler:
    """Date-blocked batches: each batch holds `dates_per_batch` dates x every valid company on them.

    Yields (i, t) index tensors of shape (B,) on the device of `valid`. Only dates where `allowed` is True
    (e.g. the training period) are drawn; the order is a seeded permutation per epoch, so a run (and a
    resumed run, via `epoch`) sees the same batches.
    """

    def __init__(self, valid: Tensor, allowed: Tensor, dates_per_batch: int, seed: int = 0,
                 min_companies: int = 2) -> None:
        assert valid.ndim == 2 and allowed.shape == valid.shape[1:], "valid (N, T) and allowed (T,) expected"
        self.valid = valid
        counts = valid.sum(dim=0)  # (T,)
        self.dates = torch.nonzero(allowed & (counts >= min_companies)).flatten()  # usable date indices
        if self.dates.numel() == 0:
            raise DynMIXError("no training dates with at least two valid companies: is the history long enough?")
        self.dates_per_batch = dates_per_batch
        self.seed = seed

    def __len__(self) -> int:
        return -(-self.dates.numel() // self.dates_per_batch)

    def epoch(self, epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        order = self.dates[torch.randperm(self.dates.numel(), generator=g).to(self.dates.device)]
        for start in range(0, order.numel(), self.dates_per_batch):
            block = order[start : start + self.dates_per_batch]  # (k,)
            ii, kk = torch.nonzero(self.valid[:, block], as_tuple=True)  # company, position in block
            yield ii, block[kk]
