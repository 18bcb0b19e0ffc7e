from __future__ import annotations

import datetime as dt

import pytest
import torch

from dynmix.config import TrainConfig
from dynmix.errors import DynMIXError
from dynmix.runs.split import time_split
from dynmix.views.tensors import ViewTensors


def test_fraction_split_counts_usable_dates(views: ViewTensors) -> None:
    usable = views.valid().sum(dim=0) >= 2
    n_usable = int(usable.sum())
    s = time_split(views, TrainConfig(train_frac=0.75))
    assert s.n_train_dates == int(0.75 * n_usable)
    assert s.n_train_dates + s.n_test_dates == n_usable
    assert s.train_end < s.test_start  # type: ignore[operator]
    last = views.dates.index(s.train_end)
    assert s.train_mask.dtype == torch.bool and int(s.train_mask.sum()) == last + 1
    assert s.train_start == views.dates[int(torch.nonzero(usable)[0])]
    assert s.to_json()["test_end"] == views.dates[-1].isoformat()


def test_explicit_train_end_need_not_be_a_view_date(views: ViewTensors) -> None:
    k = next(k for k in range(100, 200) if views.dates[k].weekday() == 4)  # a Friday
    s = time_split(views, TrainConfig(train_end=(views.dates[k] + dt.timedelta(days=1)).isoformat()))  # Saturday
    assert s.train_end == views.dates[k] and s.test_start == views.dates[k + 1]
    assert bool(s.train_mask[k]) and not bool(s.train_mask[k + 1])
    everything = time_split(views, TrainConfig(train_end="2030-01-01"))
    assert everything.n_test_dates == 0 and everything.test_start is None


def test_bad_splits_raise(views: ViewTensors) -> None:
    with pytest.raises(DynMIXError, match="before the first view date"):
        time_split(views, TrainConfig(train_end="2000-01-01"))
    with pytest.raises(DynMIXError, match="no usable training dates"):
        time_split(views, TrainConfig(train_end=views.dates[5].isoformat()))
    with pytest.raises(DynMIXError, match="train_frac"):
        time_split(views, TrainConfig(train_frac=0.0))
