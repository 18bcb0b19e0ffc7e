from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from dynmix.train.runs import latest_run, load_run, new_run_dir, resolve_run, run_id, signature_changes, views_signature

from dynmix.config import DynMIXConfig, save_config
from dynmix.errors import DynMIXError
from dynmix.train import train
from dynmix.views.tensors import ViewTensors
from dynmix.workspace import Workspace


def test_run_id_is_utc_timestamp_and_clean_tag() -> None:
    now = dt.datetime(2026, 11, 21, 14, 5, 1, tzinfo=dt.UTC)
    assert run_id("market-vol", now) == "20261121-140501-market-vol"
    assert run_id("My Run / v2", now) == "20261121-140501-my-run-v2"
    assert run_id("///", now) == "20261121-140501-run"


def test_new_latest_and_resolve(home: Workspace) -> None:
    with pytest.raises(DynMIXError, match="no runs"):
        latest_run(home)
    a = new_run_dir(home, "a")
    b = new_run_dir(home, "a")  # same second: a suffix keeps them apart
    assert a != b and a.is_dir() and b.is_dir() and not any(a.iterdir())
    for p in (a, b):
        save_config(DynMIXConfig(), p / "config.toml")
    c = home.run("29990101-000000-z")
    c.mkdir()
    (c / "config.toml").write_text("")
    assert latest_run(home) == c
    assert resolve_run(home, "latest") == c
    assert resolve_run(home, a.name) == a.resolve()
    assert resolve_run(home, str(b)) == b.resolve()
    with pytest.raises(DynMIXError, match="no run 'missing'.*recent runs: 29990101-000000-z"):
        resolve_run(home, "missing")


def test_load_run_refuses_changed_views(views_home: Workspace, views: ViewTensors,
                                        tiny_cfg: Callable[..., DynMIXConfig],
                                        write_views_fn: Callable[..., object]) -> None:
    run = train(views_home, tiny_cfg(epochs=1), progress=False, max_steps=1)
    cfg, model, vt = load_run(run, ema=True)
    assert vt.feature_names == views.feature_names
    views.feature_names[0] = "renamed"
    write_views_fn(views, views_home.views)
    with pytest.raises(DynMIXError, match=r"differ from those run .*feature_names: .*added \['renamed'\]"):
        load_run(run)


def test_signature_changes_name_what_changed(views: ViewTensors) -> None:
    saved = views_signature(views)
    assert signature_changes(saved, views) == ""
    older = {**saved, "channels": ["ret_scaled", "mkt_scaled"], "window": 5}  # trained before the factor channels
    views.channels.append("factor1_scaled")
    msg = signature_changes(older, views)
    assert "channels: 2 trained on, 3 now (added ['factor1_scaled'], gone [])" in msg
    assert f"window: 5 trained on, {views.window} now" in msg and "[views] factors" in msg
    assert "feature_names" not in msg
