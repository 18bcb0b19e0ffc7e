"""Device-resident view tensors and the date-blocked sampler (docs/DESIGN.md §4, §13).

On disk (written by `dynmix.views.build`), under HOME/views/:
    explicit.parquet  date, ticker, one float column per explicit feature (standardised per date; null = missing)
    returns.parquet   date, ticker, ret (daily log return), ret_scaled (implicit channel 0), on the aligned grid
    market.parquet    date, mkt_ret, mkt_scaled (implicit channel 1), market_vol, dispersion, then
                      factor1_scaled .. factorK_scaled (implicit channels 2 .., dynmix.views.factors)
    views.json        {"feature_names": [...], "channels": [...], "window": L, "min_window_obs": m, ...}

In memory the panels are dense (N, T, ·) float32 tensors, indexed by `tickers` (N) and `dates` (T). Implicit
windows are cut per batch by an index gather, never materialised for every sample. The sector one-hot columns,
constant per company, are kept once per company (`sectors`, (N, S)) and put back in their place per batch
(`explicit_features`): at 20,000 companies x 25 years the ten sector columns would take 5.2 GB as (N, T) panels.

Derived at load (not on disk), from the same day's values only (no look-ahead, no sector information):
    sector one-hot     the `sector_*` explicit columns are multiplied by SECTOR_SCALE, so the one-hot block is not
                       drowned by the ~20 standardised continuous features in the explicit MLP
Together with the implicit encoder's product/square channels (dynmix.models.encoders) this lets the mean
implicit embedding recover the planted sectors (measured in tests/train/test_learns.py).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import torch
from torch import Tensor

from dynmix.errors import DynMIXError
from dynmix.views.factors import CHANNELS
from dynmix.views.generation import check_generation, resolve_views


@dataclass
class ViewTensors:
    tickers: list[str]  # N
    dates: list[dt.date]  # T
    feature_names: list[str]  # F
    channels: list[str]  # C
    window: int  # L
    min_window_obs: int
    explicit: Tensor  # (N, T, F - S) float32, 0 where missing: every explicit feature but the S sector columns
    explicit_mask: Tensor  # (N, T) bool: explicit features present
    returns: Tensor  # (N, T, 2) float32 scaled returns (company, market), 0 where missing
    returns_mask: Tensor  # (N, T) bool: the company's return is observed
    raw_returns: Tensor  # (N, T) float32 daily log returns, NaN where missing
    market_vol: Tensor  # (T,) float32 market realised volatility from data up to t (annualised)
    dispersion: Tensor  # (T,) float32 cross-sectional return dispersion from data up to t
    factors: Tensor = field(default_factory=lambda: torch.zeros(0, 0))  # (T, P) float32 factor channels, P = 0: none
    sectors: Tensor = field(default_factory=lambda: torch.zeros(0, 0))  # (N, S) float32 scaled one-hot, S = 0: none
    # (T,) int64 row of `explicit` holding date t, -1 where not loaded (`load_view_tensors(every=k)`); empty: row t
    explicit_rows: Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))

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

    def implicit_valid(self) -> Tensor:
        """(N, T) bool: the implicit window ending at t is full enough (explicit features not needed)."""
        started = torch.arange(len(self.dates), device=self.device) >= self.window - 1  # (T,)
        return (self.window_obs() >= self.min_window_obs) & started[None, :]

    def implicit_windows(self, i: Tensor, t: Tensor) -> Tensor:
        """Gather the implicit view for samples (i, t): (B, L, C), oldest day first, window ends at t.

        Channels: the company's and the market's scaled returns, then the P factor channels (the same for every
        company on a date, so kept once as (T, P) and gathered by date).
        """
        assert i.shape == t.shape and i.ndim == 1, f"i, t must be (B,), got {tuple(i.shape)}, {tuple(t.shape)}"
        offs = torch.arange(-self.window + 1, 1, device=t.device)  # (L,)
        idx = (t[:, None] + offs[None, :]).clamp_min(0)  # (B, L)
        own = self.returns[i[:, None], idx]  # (B, L, 2)
        if self.factors.shape[-1] == 0:
            return own
        return torch.cat([own, self.factors[idx]], dim=2)  # (B, L, 2 + P)

    def explicit_features(self, i: Tensor, t: Tensor) -> Tensor:
        """(B, F) explicit features of samples (i, t), in the order of `feature_names`: the company's sector
        columns put back in their place (on every date, also where its explicit row is missing: `valid()` masks those).
        """
        dense = self.explicit[i, t if self.explicit_rows.numel() == 0 else self.explicit_rows[t]]  # (B, F - S)
        if self.sectors.shape[-1] == 0:
            return dense
        pos = sector_positions(self.feature_names)
        rest = [j for j in range(len(self.feature_names)) if j not in pos]
        column = torch.tensor(rest + pos).argsort()  # output column j = column[j] of [dense | sectors]
        # an index made on the host and sent without waiting: a list index on a GPU tensor syncs the device
        return torch.cat([dense, self.sectors[i]], dim=1)[:, column.to(dense.device, non_blocking=True)]

    def feature(self, name: str) -> Tensor:
        """(N, T) one explicit feature on every date (a sector column repeated over the dates)."""
        j = self.feature_names.index(name)
        pos = sector_positions(self.feature_names) if self.sectors.shape[-1] else []
        if j in pos:
            return self.sectors[:, pos.index(j), None].expand(-1, len(self.dates))
        column = self.explicit[:, :, j - sum(p < j for p in pos)]
        if self.explicit_rows.numel() == 0:
            return column
        loaded = self.explicit_rows >= 0  # (T,)
        out = column.new_zeros(self.shape)  # 0 on the dates not loaded, as on missing rows
        out[:, loaded] = column[:, self.explicit_rows[loaded]]
        return out

    def date_index(self, date: dt.date | str) -> int:
        """Index of the last date <= `date` (so a split date need not be a trading day)."""
        d = dt.date.fromisoformat(date) if isinstance(date, str) else date
        pos = int(np.searchsorted(np.array(self.dates, dtype="datetime64[D]"), np.datetime64(d), side="right"))
        if pos == 0:
            raise DynMIXError(f"date {d} is before the first view date {self.dates[0]}")
        return pos - 1


SECTOR_PREFIX = "sector_"  # explicit one-hot columns (dynmix.views.explicit.sector_feature)
SECTOR_SCALE = 4.0  # weight of the sector one-hot block in the explicit view
BATCH_ROWS = 1_000_000  # rows of a views file scattered at a time: bounds the memory beside the dense panels


def sector_positions(feature_names: list[str]) -> list[int]:
    """Positions of the sector one-hot columns among `feature_names`."""
    return [j for j, f in enumerate(feature_names) if f.startswith(SECTOR_PREFIX)]


def _rows(path: Path, cols: list[str], tickers: pl.Series,
          dates: pl.Series) -> Iterator[tuple[np.ndarray, pl.DataFrame]]:
    """Batches of a long views file: each row's flat panel position i * T + t (int64) and its `cols`.

    Positions come from binary searches in the sorted `tickers` (N) and `dates` (T); a date that is not one of
    `dates` raises DynMIXError naming the file and row.
    """
    t = len(dates)
    ticker_pos = pl.lit(tickers).search_sorted(pl.col("ticker")).cast(pl.Int64)
    date_pos = pl.lit(dates).search_sorted(pl.col("date")).cast(pl.Int64)
    seen = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS, columns=["ticker", "date", *cols]):
        df = pl.DataFrame(pl.from_arrow(batch))
        pos = df.select(ticker_pos.alias("_i"), date_pos.alias("_t"))
        on_grid = pos["_t"] < t
        on_grid = on_grid & (pl.Series(dates).gather(pos["_t"].clip(upper_bound=t - 1)) == df["date"])
        if not on_grid.all():
            row = int(on_grid.arg_min() or 0)
            raise DynMIXError(f"{path}: row {seen + row + 1}: date {df['date'][row]} is not a date of market.parquet "
                              "(expected views written by one `dynmix views build`)")
        yield (pos["_i"] * t + pos["_t"]).to_numpy(), df
        seen += df.height


def _present(cols: list[str]) -> pl.Expr:
    return pl.all_horizontal([pl.col(c).is_not_null() & pl.col(c).is_not_nan() for c in cols])


def _filled(cols: list[str]) -> list[pl.Expr]:
    return [pl.col(c).cast(pl.Float32).fill_nan(0.0).fill_null(0.0) for c in cols]


def load_view_tensors(views_dir: str | Path, device: str | torch.device = "cpu", *, every: int = 1) -> ViewTensors:
    """Read HOME/views/ into dense tensors on `device` (one copy, then kept there).

    The long files are scattered batch by batch straight into the float32 panels (zeros and masks filled on the
    way), so the peak memory is about the panels themselves. Every file is read from one generation (the link
    resolved once); a file that cannot be read is an error naming it and saying to rebuild the views.

    `every` = k > 1 loads the explicit features of every k-th date only, counted back from the last date (the
    others are masked out, so `valid()` holds only those dates): what a strided embeddings export needs, in 1/k
    of the explicit panel's memory. The returns are loaded whole (the windows reach back before those dates).
    """
    if every < 1:
        raise DynMIXError(f"every = {every}: expected a stride of 1 or more dates")
    shown = Path(views_dir)
    views_dir = resolve_views(shown)
    meta_path = views_dir / "views.json"
    if not meta_path.exists():
        raise DynMIXError(f"no views in {shown}: run `dynmix views build` first")
    check_generation(views_dir)
    try:
        return _load(views_dir, meta_path, device, every)
    except (pl.exceptions.PolarsError, OSError, ValueError, KeyError) as e:
        if isinstance(e, DynMIXError):
            raise
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        bad = _unreadable(views_dir)
        which = f"{', '.join(bad)} in " if bad else ""
        raise DynMIXError(f"the views ({which}{shown}) cannot be read ({type(e).__name__}: {reason}): they are "
                          "damaged or from another version; run `dynmix views build` again") from e


def _unreadable(views_dir: Path) -> list[str]:
    """Names of the views' Parquet files whose footer cannot be read (truncated, overwritten)."""
    bad = []
    for path in sorted(views_dir.glob("*.parquet")):
        try:
            pl.read_parquet_schema(path)
        except (pl.exceptions.PolarsError, OSError):
            bad.append(path.name)
    return bad


def _load(views_dir: Path, meta_path: Path, device: str | torch.device, every: int = 1) -> ViewTensors:
    meta = json.loads(meta_path.read_text())
    feats: list[str] = meta["feature_names"]
    exp_path, ret_path = views_dir / "explicit.parquet", views_dir / "returns.parquet"
    market = pl.read_parquet(views_dir / "market.parquet").sort("date")
    dates: list[dt.date] = market["date"].to_list()
    names = (pl.scan_parquet(p).select(pl.col("ticker").unique()).collect()["ticker"] for p in (exp_path, ret_path))
    ticker_s = pl.concat(list(names)).unique().sort()
    tickers: list[str] = ticker_s.to_list()
    n, t = len(tickers), len(dates)
    sector_cols = [feats[j] for j in sector_positions(feats)]
    dense = [f for f in feats if f not in sector_cols]
    row_of = np.full(t, -1, dtype=np.int64)  # (T,) row of the explicit panel holding each date
    kept = np.arange(t - 1, -1, -every)[::-1]  # every k-th date counted back from the last
    row_of[kept] = np.arange(kept.size)
    tk = kept.size
    x = np.zeros((n * tk, len(dense)), dtype=np.float32)  # (N*T_kept, F - S) 0 where missing
    sectors = np.zeros((n, len(sector_cols)), dtype=np.float32)  # (N, S) the same on every row of a company
    x_mask = np.zeros(n * t, dtype=bool)  # (N*T,)
    for flat, df in _rows(exp_path, feats, ticker_s, market["date"]):
        if every > 1:  # only the rows of the kept dates
            rows = row_of[flat % t]
            keep = rows >= 0
            flat, rows, df = flat[keep], rows[keep], df.filter(pl.Series(keep))
            x[(flat // t) * tk + rows] = df.select(_filled(dense)).to_numpy(order="c")
        else:
            x[flat] = df.select(_filled(dense)).to_numpy(order="c")
        x_mask[flat] = df.select(_present(feats)).to_series().to_numpy()
        if sector_cols:
            sectors[flat // t] = df.select(_filled(sector_cols)).to_numpy(order="c")
    r = np.zeros((n * t, 2), dtype=np.float32)  # (N*T, C): company channel now, the market's below
    raw = np.full(n * t, np.nan, dtype=np.float32)  # (N*T,)
    r_mask = np.zeros(n * t, dtype=bool)
    for flat, df in _rows(ret_path, ["ret", "ret_scaled"], ticker_s, market["date"]):
        r[flat, 0] = df.select(_filled(["ret_scaled"])).to_series().to_numpy()
        r_mask[flat] = df.select(_present(["ret_scaled"])).to_series().to_numpy()
        raw[flat] = df["ret"].cast(pl.Float32).fill_null(float("nan")).to_numpy()
    r2 = r.reshape(n, t, 2)
    r2[:, :, 1] = market["mkt_scaled"].cast(pl.Float32).fill_null(0.0).fill_nan(0.0).to_numpy()[None, :]
    returns = r2
    sectors *= SECTOR_SCALE

    def series(col: str) -> Tensor:  # (T,) forward-filled, 0 before the first value
        filled = market[col].fill_null(strategy="forward").fill_null(0.0).cast(pl.Float32)
        return torch.from_numpy(filled.to_numpy(writable=True))

    channels: list[str] = meta.get("channels", CHANNELS)
    factor_cols = channels[len(CHANNELS):]  # like the market channel: 0 where missing
    factors = market.select(pl.col(c).cast(pl.Float32).fill_null(0.0).fill_nan(0.0) for c in factor_cols)

    vt = ViewTensors(
        tickers=tickers,
        dates=dates,
        feature_names=feats,
        channels=channels,
        window=int(meta["window"]),
        min_window_obs=int(meta["min_window_obs"]),
        explicit=torch.from_numpy(x.reshape(n, tk, len(dense))),
        explicit_mask=torch.from_numpy(x_mask.reshape(n, t)),
        returns=torch.from_numpy(returns),
        returns_mask=torch.from_numpy(r_mask.reshape(n, t)),
        raw_returns=torch.from_numpy(raw.reshape(n, t)),
        market_vol=series("market_vol"),
        dispersion=series("dispersion"),
        factors=torch.from_numpy(factors.to_numpy(order="c", writable=True)).reshape(t, len(factor_cols)),
        sectors=torch.from_numpy(sectors),
        explicit_rows=torch.from_numpy(row_of) if every > 1 else torch.zeros(0, dtype=torch.long),
    )
    return vt.to(device)


class DateBlockSampler:
    """Date-blocked batches: each batch holds `dates_per_batch` dates x every valid company on them.

    Yields (i, t) index tensors of shape (B,) on the device of `valid`. Only dates where `allowed` is True
    (e.g. the training period) are drawn; the order is a seeded permutation per epoch, so a run (and a
    resumed run, via `epoch`) sees the same batches.

    `max_samples`: when a block's dates hold more valid samples than this, each date keeps
    floor(count * max_samples / total) of its companies (at least `min_companies`), drawn uniformly from the
    epoch's generator. Every date of the block stays in the batch, so a variance target of the batch's dates is
    the one of the whole block; a batch then holds at most max(max_samples, min_companies x dates_per_batch).
    """

    def __init__(self, valid: Tensor, allowed: Tensor, dates_per_batch: int, seed: int = 0,
                 min_companies: int = 2, max_samples: int | None = None) -> None:
        assert valid.ndim == 2 and allowed.shape == valid.shape[1:], "valid (N, T) and allowed (T,) expected"
        if max_samples is not None and max_samples < 1:
            raise DynMIXError(f"max_samples = {max_samples}: expected a positive number of samples per batch")
        # drawn on the host and sent to valid's device without waiting: a GPU draw syncs it twice a batch
        self.device = valid.device
        self.valid = valid.cpu()
        counts = self.valid.sum(dim=0)  # (T,)
        self.dates = torch.nonzero(allowed.cpu() & (counts >= min_companies)).flatten()  # usable date indices
        if self.dates.numel() == 0:
            raise DynMIXError("no training dates with at least two valid companies: is the history long enough?")
        self.dates_per_batch = dates_per_batch
        self.seed = seed
        self.min_companies = min_companies
        self.max_samples = max_samples

    def __len__(self) -> int:
        return -(-self.dates.numel() // self.dates_per_batch)

    def largest_block(self) -> int:
        """Valid samples of the `dates_per_batch` usable dates with the most (the largest batch before sampling)."""
        counts = self.valid[:, self.dates].sum(dim=0)  # (T_usable,)
        return int(counts.topk(min(self.dates_per_batch, counts.numel())).values.sum())

    def epoch(self, epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        order = self.dates[torch.randperm(self.dates.numel(), generator=g)]
        for start in range(0, order.numel(), self.dates_per_batch):
            block = order[start : start + self.dates_per_batch]  # (k,)
            chosen = self.valid[:, block]  # (N, k)
            if self.max_samples is not None:
                counts = chosen.sum(dim=0)  # (k,)
                total = int(counts.sum())
                if total > self.max_samples:
                    chosen = self._sample(chosen, counts, total, g)
            ii, kk = torch.nonzero(chosen, as_tuple=True)  # company, position in block
            yield ii.to(self.device, non_blocking=True), block[kk].to(self.device, non_blocking=True)

    def _sample(self, chosen: Tensor, counts: Tensor, total: int, g: torch.Generator) -> Tensor:
        """(N, k) bool: per date, a uniform draw of its quota among its valid companies."""
        assert self.max_samples is not None
        quota = torch.minimum((counts * self.max_samples // total).clamp_min(self.min_companies), counts)  # (k,)
        keys = torch.rand(chosen.shape, generator=g).masked_fill(~chosen, 2.0)  # invalid last
        rank = keys.argsort(dim=0).argsort(dim=0)  # (N, k) rank of each company's key within its date
        return rank < quota[None, :]
