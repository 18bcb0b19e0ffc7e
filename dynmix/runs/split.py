"""The time split: training dates are those <= train_end (docs/DESIGN.md §11); later dates are out of sample."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from dynmix.config import TrainConfig
from dynmix.errors import DynMIXError
from dynmix.views.tensors import ViewTensors


@dataclass(frozen=True)
class Split:
    train_mask: Tensor  # (T,) bool: the date is a training date (<= train_end)
    train_start: dt.date
    train_end: dt.date
    test_start: dt.date | None
    test_end: dt.date | None
    n_train_dates: int  # usable dates (>= 2 valid companies) in each period
    n_test_dates: int

    def to_json(self) -> dict[str, Any]:
        iso = {k: (v.isoformat() if v is not None else None) for k, v in
               (("train_start", self.train_start), ("train_end", self.train_end),
                ("test_start", self.test_start), ("test_end", self.test_end))}
        return {**iso, "n_train_dates": self.n_train_dates, "n_test_dates": self.n_test_dates}


def too_short(vt: ViewTensors, n_usable: int) -> str:
    """Why the views have fewer than two usable dates: the setting that blocks and the history it needs."""
    from dynmix.views.explicit import LONGEST_WINDOW, MOMENT_WINDOW
    from dynmix.views.implicit import MIN_SCALE_OBS

    longest = int(vt.returns_mask.sum(dim=1).max()) if vt.returns_mask.numel() else 0  # observed returns
    head = f"only {n_usable} usable dates in the views (a date needs two companies with a valid sample)"
    if int((vt.implicit_valid().sum(dim=0) >= 2).sum()) < 2:
        return (f"{head}: the implicit window needs views.min_window_obs = {vt.min_window_obs} observed returns "
                f"within views.window = {vt.window} days, and the longest company history here has {longest} "
                f"usable returns (a return counts once {MIN_SCALE_OBS} returns set the company's scale; import a "
                "longer history, or lower [views] window / min_window_obs)")
    return (f"{head}: the explicit features are missing wherever the implicit window is full. With [views] "
            f"partial_history = false the year-long features (mom_252, beta, drawdown) need {LONGEST_WINDOW} days; "
            f"with partial_history = true (the default) every company needs {MOMENT_WINDOW} days "
            f"(the longest history here has {longest} usable returns)")


def time_split(vt: ViewTensors, cfg: TrainConfig) -> Split:
    """Split at `cfg.train_end` (the last view date <= it), else after the first `train_frac` of usable dates.

    A date is usable when at least two companies have a valid sample on it.
    """
    usable = (vt.valid().sum(dim=0) >= 2).cpu()  # (T,)
    idx = torch.nonzero(usable).flatten()
    if idx.numel() < 2:
        raise DynMIXError(too_short(vt, idx.numel()))
    if cfg.train_end is not None:
        last = vt.date_index(cfg.train_end)
    else:
        if not 0.0 < cfg.train_frac <= 1.0:
            raise DynMIXError(f"train.train_frac must lie in (0, 1], got {cfg.train_frac}")
        n_train = max(1, int(cfg.train_frac * idx.numel()))
        last = int(idx[n_train - 1])
    train_mask = torch.arange(len(vt.dates)) <= last  # (T,)
    train_idx, test_idx = idx[idx <= last], idx[idx > last]
    if train_idx.numel() == 0:
        raise DynMIXError(f"no usable training dates up to train_end={vt.dates[last]} "
                          f"(first usable date is {vt.dates[int(idx[0])]})")
    return Split(
        train_mask=train_mask.to(vt.device),
        train_start=vt.dates[int(train_idx[0])],
        train_end=vt.dates[int(train_idx[-1])],
        test_start=vt.dates[int(test_idx[0])] if test_idx.numel() else None,
        test_end=vt.dates[int(test_idx[-1])] if test_idx.numel() else None,
        n_train_dates=int(train_idx.numel()),
        n_test_dates=int(test_idx.numel()),
    )
