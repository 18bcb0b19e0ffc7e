"""Shared, seeded fixtures. Sub-folders add their own conftest.py for their own fixtures."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from dynmix.config import DynMIXConfig, JEPAConfig, ModelConfig, PlanConfig, TrainConfig, ViewsConfig, WorldConfig
from dynmix.workspace import Workspace


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """An empty workspace in a temporary folder, also exported as $DYNMIX_HOME."""
    monkeypatch.setenv("DYNMIX_HOME", str(tmp_path / "ws"))
    return Workspace.at(tmp_path / "ws")


def make_prices(tickers: list[str], n_days: int = 300, start: str = "2010-01-04", seed: int = 0) -> pl.DataFrame:
    """A small canonical price table: business days, geometric random walks, positive volumes."""
    rng = np.random.default_rng(seed)
    dates = pl.date_range(dt.date.fromisoformat(start), dt.date(2100, 1, 1), "1d", eager=True)
    dates = dates.filter(dates.dt.weekday() <= 5).head(n_days)
    frames = []
    for tk in tickers:
        r = rng.normal(0.0003, 0.015, n_days)
        close = 50.0 * np.exp(np.cumsum(r))
        frames.append(pl.DataFrame({
            "date": dates, "ticker": [tk] * n_days,
            "open": close * 0.999, "high": close * 1.01, "low": close * 0.99,
            "close": close, "adj_close": close, "volume": rng.integers(1_000, 100_000, n_days).astype(float),
        }))
    return pl.concat(frames)


@pytest.fixture
def prices() -> pl.DataFrame:
    return make_prices(["AAA", "BBB", "CCC"])


@pytest.fixture(scope="session")
def seeded_run():  # noqa: ANN201 - returns the maker below
    """Make a run folder as `dynmix train` leaves it: config.toml, a seeded DynMIX checkpoint and split.json."""
    import json

    import torch

    from dynmix.config import save_config
    from dynmix.models.dynmix import DynMIX
    from dynmix.runs.checkpoint import save_checkpoint
    from dynmix.runs.viewstamp import views_signature
    from dynmix.train.schedule import make_optimizer
    from dynmix.views.tensors import ViewTensors

    def make(ws: Workspace, vt: ViewTensors, cfg: DynMIXConfig, train_end: int,
             name: str = "20260101-000000-test") -> Path:
        run_dir = ws.run(name)
        run_dir.mkdir(parents=True)
        save_config(cfg, run_dir / "config.toml")
        torch.manual_seed(0)
        model = DynMIX(cfg.model, len(vt.feature_names), len(vt.channels), vt.window)
        opt, sched = make_optimizer(model, cfg.train, 10)
        save_checkpoint(run_dir / "checkpoint.pt", step=10, epoch=0, model=model, ema=None, optimizer=opt,
                        scheduler=sched, config=cfg.to_dict(), views=views_signature(vt))
        (run_dir / "split.json").write_text(json.dumps({"train_end": vt.dates[train_end].isoformat()}))
        return run_dir

    return make


@pytest.fixture(scope="session")
def write_panel():  # noqa: ANN201 - returns the writer below
    """Write a (T, N) close panel of equities (business days from `start`, sector k -> 'S{k}') to a store."""
    from dynmix.data.store import Store

    def write(store_dir: Path, start: dt.date, close: np.ndarray, sector: np.ndarray, prefix: str = "C") -> None:
        days = close.shape[0]
        dates = [d for d in (start + dt.timedelta(k) for k in range(2 * days)) if d.weekday() < 5][:days]
        tickers = [f"{prefix}{k}" for k in range(close.shape[1])]
        store = Store(store_dir)
        store.write_prices(pl.concat([pl.DataFrame({"date": dates, "ticker": t, "close": close[:, j], "volume": 1e5})
                                      for j, t in enumerate(tickers)]))
        store.upsert_meta(pl.DataFrame({"ticker": tickers, "sector": [f"S{s}" for s in sector],
                                        "asset_type": "equity"}))

    return write


@pytest.fixture(scope="session")
def tiny_run_config():  # noqa: ANN201 - returns the maker below
    """A config small enough to train, forecast and plan in seconds on a CPU."""

    def make(plan: PlanConfig | None = None, world_epochs: int = 2) -> DynMIXConfig:
        return DynMIXConfig(
            views=ViewsConfig(window=20, min_window_obs=15, start=None, vol_scale_window=60),
            model=ModelConfig(dim=8, explicit_hidden=16, implicit_width=8, implicit_layers=2, projector_dim=16,
                              projector_hidden=16),
            train=TrainConfig(epochs=1, dates_per_batch=32, device="cpu"),
            plan=plan or PlanConfig(samples=64, iterations=3, elites=8),
            jepa=JEPAConfig(epochs=1, predictor_hidden=16, horizon_dim=4, sigreg_slices=32),
            world=WorldConfig(latent=8, market_latent=4, hidden=16, epochs=world_epochs, dates_per_batch=32),
        )

    return make
