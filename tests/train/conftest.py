"""Seeded fixtures of the training tests: small in-memory view tensors, their on-disk form, a tiny config."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from dynmix.config import DynMIXConfig, LossConfig, ModelConfig, TrainConfig, ViewsConfig
from dynmix.views.tensors import ViewTensors


def make_views(n: int = 16, t: int = 200, f: int = 6, window: int = 20, seed: int = 0) -> ViewTensors:
    """Random panels with a planted two-group structure, a late listing and a few missing days."""
    rng = np.random.default_rng(seed)
    days = (dt.date(2015, 1, 5) + dt.timedelta(days=k) for k in range(2 * t))
    dates = [d for d in days if d.weekday() < 5][:t]  # business days
    group = np.arange(n) % 2  # (N,)
    mkt = rng.normal(0, 0.01, t)  # (T,)
    fac = rng.normal(0, 0.01, (2, t))  # (2, T)
    raw = (mkt[None] + fac[group] + rng.normal(0, 0.01, (n, t))).astype(np.float32)  # (N, T)
    r_mask = np.ones((n, t), bool)
    r_mask[0, :50] = False  # listed late
    r_mask[rng.random((n, t)) < 0.02] = False
    raw[~r_mask] = np.nan
    x = rng.normal(0, 1, (n, t, f)).astype(np.float32)
    x[..., 0] += 2 * group[:, None] - 1  # a "sector" feature
    x_mask = r_mask.copy()
    x[~x_mask] = 0.0
    scaled = np.nan_to_num(raw / 0.015)
    returns = np.stack([scaled, np.broadcast_to(mkt[None] / 0.01, (n, t))], axis=-1).astype(np.float32)
    vol = np.abs(rng.normal(0.15, 0.05, t)).astype(np.float32) + 0.01
    return ViewTensors(
        tickers=[f"T{k:02d}" for k in range(n)], dates=dates, feature_names=[f"f{k}" for k in range(f)],
        channels=["ret_scaled", "mkt_scaled"], window=window, min_window_obs=window - 5,
        explicit=torch.from_numpy(x), explicit_mask=torch.from_numpy(x_mask),
        returns=torch.from_numpy(np.ascontiguousarray(returns)), returns_mask=torch.from_numpy(r_mask),
        raw_returns=torch.from_numpy(raw), market_vol=torch.from_numpy(vol),
        dispersion=torch.from_numpy(np.abs(rng.normal(0.02, 0.005, t)).astype(np.float32) + 1e-3),
    )


def write_views(vt: ViewTensors, views_dir: Path) -> Path:
    """The on-disk form read by `load_view_tensors` (see dynmix/views/tensors.py)."""
    views_dir.mkdir(parents=True, exist_ok=True)
    n, t = vt.shape
    ii, tt = np.meshgrid(np.arange(n), np.arange(t), indexing="ij")
    ii, tt = ii.ravel(), tt.ravel()
    date_s = pl.Series(vt.dates, dtype=pl.Date).gather(tt)
    ticker_s = pl.Series(vt.tickers).gather(ii)
    xm = vt.explicit_mask.numpy().ravel()
    x = vt.explicit.numpy().reshape(n * t, -1)
    explicit = pl.DataFrame({"date": date_s, "ticker": ticker_s,
                             **{c: x[:, k] for k, c in enumerate(vt.feature_names)}}).filter(pl.Series(xm))
    rm = vt.returns_mask.numpy().ravel()
    returns = pl.DataFrame({"date": date_s, "ticker": ticker_s, "ret": vt.raw_returns.numpy().ravel(),
                            "ret_scaled": vt.returns[..., 0].numpy().ravel()}).filter(pl.Series(rm))
    market = pl.DataFrame({"date": pl.Series(vt.dates, dtype=pl.Date), "mkt_ret": vt.returns[0, :, 1].numpy() * 0.01,
                           "mkt_scaled": vt.returns[0, :, 1].numpy(), "market_vol": vt.market_vol.numpy(),
                           "dispersion": vt.dispersion.numpy()})
    explicit.write_parquet(views_dir / "explicit.parquet")
    returns.write_parquet(views_dir / "returns.parquet")
    market.write_parquet(views_dir / "market.parquet")
    (views_dir / "views.json").write_text(json.dumps({
        "feature_names": vt.feature_names, "channels": vt.channels, "window": vt.window,
        "min_window_obs": vt.min_window_obs}))
    return views_dir


def tiny_config(**train: object) -> DynMIXConfig:
    """A model small enough for sub-second steps on a CPU."""
    return DynMIXConfig(
        views=ViewsConfig(window=20, min_window_obs=15),
        model=ModelConfig(dim=8, explicit_hidden=16, implicit_width=8, implicit_layers=2, projector_dim=16,
                          projector_hidden=16),
        loss=LossConfig(variance_target="market-vol"),
        train=TrainConfig(**{"epochs": 2, "dates_per_batch": 16, "log_every": 1, "checkpoint_every": 5,
                             "device": "cpu", "lr": 3e-3, **train}),  # type: ignore[arg-type]
    )


@pytest.fixture
def views() -> ViewTensors:
    return make_views()


@pytest.fixture
def tiny_cfg() -> Callable[..., DynMIXConfig]:
    return tiny_config


@pytest.fixture
def views_home(home, views: ViewTensors):  # type: ignore[no-untyped-def]
    """The `home` workspace with `views` written to HOME/views."""
    write_views(views, home.views)
    return home


@pytest.fixture
def write_views_fn() -> Callable[[ViewTensors, Path], Path]:
    return write_views
