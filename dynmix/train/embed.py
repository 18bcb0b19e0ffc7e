"""Embeddings of every valid (ticker, date), train and test dates alike, from a trained model (docs/DESIGN.md §4).

Batched by dates (no per-sample Python): each block of dates gathers its valid samples, runs `model.embed`
in eval mode and keeps the views. `export_embeddings` streams the blocks into the run's embeddings/ folder
(float16, one file per year, explicit and implicit only: dynmix.runs.embeddings), so its memory is one block
and one year's rows, whatever the number of companies. `embeddings_frame` is the in-memory long frame
date (pl.Date), ticker (str), view (explicit | implicit | fused), embedding (list[float32], D values).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import torch
from torch import Tensor

from dynmix.models.dynmix import DynMIX
from dynmix.runs.embeddings import VIEWS, write_embeddings
from dynmix.views.tensors import ViewTensors


def embed_dates(vt: ViewTensors, every: int = 1) -> Tensor:
    """Date indices with a valid sample; with `every` = k, every k-th date counted back from the views' last date
    (the dates `load_view_tensors(every=k)` loads).
    """
    if every < 1:
        raise ValueError(f"every = {every}: expected a stride >= 1")
    dates = torch.nonzero(vt.valid().any(dim=0)).flatten()  # (T_valid,)
    if every > 1:
        dates = dates[(len(vt.dates) - 1 - dates) % every == 0]
    return dates


@torch.no_grad()
def embed_blocks(model: DynMIX, vt: ViewTensors, dates_per_batch: int = 64, amp: bool = False, every: int = 1
                 ) -> Iterator[tuple[Tensor, Tensor, dict[str, Tensor]]]:
    """Per block of dates: (i (S_b,), t (S_b,), {view: (S_b, D) float32 on CPU}), date-major, ticker order within."""
    was_training = model.training
    model.eval()
    valid = vt.valid()  # (N, T)
    dates = embed_dates(vt, every)
    use_amp = amp and vt.device.type == "cuda"
    try:
        for start in range(0, dates.numel(), dates_per_batch):
            block = dates[start : start + dates_per_batch]  # (k,)
            kk, i = torch.nonzero(valid[:, block].T, as_tuple=True)  # date-major: (S_b,), (S_b,)
            t = block[kk]
            batch = {"explicit": vt.explicit_features(i, t), "implicit": vt.implicit_windows(i, t)}
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_amp):
                reps = model.embed(batch)  # each (S_b, D)
            yield i.cpu(), t.cpu(), {v: reps[v].float().cpu() for v in VIEWS}
    finally:
        model.train(was_training)


def embed_arrays(model: DynMIX, vt: ViewTensors, dates_per_batch: int = 64, amp: bool = False
                 ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """(i (S,), t (S,), {view: (S, D) float32 on CPU}) for every valid sample, ordered by date then ticker."""
    ii, tt = [], []
    outs: dict[str, list[Tensor]] = {v: [] for v in VIEWS}
    for i, t, reps in embed_blocks(model, vt, dates_per_batch, amp):
        ii.append(i)
        tt.append(t)
        for v in VIEWS:
            outs[v].append(reps[v])
    empty = torch.zeros(0, dtype=torch.long)
    return (torch.cat(ii) if ii else empty, torch.cat(tt) if tt else empty,
            {v: torch.cat(o) if o else torch.zeros(0, 0) for v, o in outs.items()})


def embeddings_frame(model: DynMIX, vt: ViewTensors, dates_per_batch: int = 64, amp: bool = False
                     ) -> pl.DataFrame:
    """The long embeddings frame (see the module docstring), views stacked in the order of VIEWS."""
    i, t, reps = embed_arrays(model, vt, dates_per_batch, amp)
    date_s = pl.Series("date", vt.dates, dtype=pl.Date).gather(t.numpy())
    ticker_s = pl.Series("ticker", vt.tickers, dtype=pl.String).gather(i.numpy())
    frames = []
    for v in VIEWS:
        emb = reps[v].numpy().astype(np.float32, copy=False)  # (S, D)
        frames.append(pl.DataFrame({
            "date": date_s, "ticker": ticker_s, "view": pl.repeat(v, len(date_s), eager=True, dtype=pl.String),
            "embedding": pl.Series("embedding", emb).cast(pl.List(pl.Float32)),
        }))
    return pl.concat(frames)


def export_embeddings(model: DynMIX, vt: ViewTensors, path: str | Path, dates_per_batch: int = 64,
                      amp: bool = False, every: int = 1) -> Path:
    """Write the run's embeddings/ folder (dynmix.runs.embeddings) atomically; returns its path."""
    date_s = pl.Series("date", vt.dates, dtype=pl.Date)
    ticker_s = pl.Series("ticker", vt.tickers, dtype=pl.String)
    blocks = ((date_s.gather(t.numpy()), ticker_s.gather(i.numpy()), reps["explicit"].numpy(),
               reps["implicit"].numpy()) for i, t, reps in embed_blocks(model, vt, dates_per_batch, amp, every))
    return write_embeddings(blocks, Path(path), model.cfg.dim, every)
