"""`dynmix views build` through typer's CliRunner."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from dynmix.cli import app
from dynmix.data.store import Store
from dynmix.views import tensors
from dynmix.views.tensors import load_view_tensors

Data = Callable[..., tuple[pl.DataFrame, pl.DataFrame]]


def test_views_build_prints_a_summary(market_data: Data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prices, meta = market_data(n_equities=4, n_days=320)
    store = Store(tmp_path / "ws" / "store")
    store.write_prices(prices)
    store.upsert_meta(meta)
    config = tmp_path / "views.toml"
    config.write_text('[views]\nstart = "2015-02-02"\nwindow = 20\nmin_window_obs = 15\n')
    with monkeypatch.context() as m:  # the count comes from the build: the command loads no view tensors
        m.setattr(tensors, "load_view_tensors", lambda *a, **k: pytest.fail("views build loaded the view tensors"))
        result = CliRunner().invoke(app, ["--home", str(tmp_path / "ws"), "views", "build", "--config", str(config),
                                          "--no-progress"])
    assert result.exit_code == 0, result.output
    vt = load_view_tensors(tmp_path / "ws" / "views")
    assert vt.dates[0].isoformat() == "2015-02-02" and vt.window == 20
    out = " ".join(result.output.split())
    assert "companies 4" in out and "^GSPC" in out
    assert f"valid samples {int(vt.valid().sum()):,}" in out and int(vt.valid().sum()) > 0


def test_views_build_on_an_empty_store_fails_cleanly(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--home", str(tmp_path / "ws"), "views", "build"])
    assert result.exit_code == 1
    assert "dynmix data sample" in result.output and "Traceback" not in result.output


def test_views_build_bad_config_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[views]\nwindoww = 3\n")
    result = CliRunner().invoke(app, ["--home", str(tmp_path / "ws"), "views", "build", "--config", str(config)])
    assert result.exit_code == 1 and "windoww" in result.output
