from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from dynmix.config import DynMIXConfig, config_from_dict, save_config
from dynmix.errors import DynMIXError
from dynmix.runs.models import load_run
from dynmix.runs.rundir import RunDir, run_id
from dynmix.runs.viewstamp import signature_changes, views_signature, views_stamp
from dynmix.train import train
from dynmix.views.tensors import ViewTensors
from dynmix.workspace import Workspace


def test_run_id_is_utc_timestamp_and_clean_tag() -> None:
    now = dt.datetime(2026, 11, 21, 14, 5, 1, tzinfo=dt.UTC)
    assert run_id("market-vol", now) == "20261121-140501-market-vol"
    assert run_id("My Run / v2", now) == "20261121-140501-my-run-v2"
    assert run_id("///", now) == "20261121-140501-run"


def test_create_latest_and_resolve(home: Workspace) -> None:
    with pytest.raises(DynMIXError, match="no runs"):
        RunDir.latest(home)
    a = RunDir.create(home, "a")
    b = RunDir.create(home, "a")  # same second: a suffix keeps them apart
    assert a != b and a.path.is_dir() and b.path.is_dir() and not any(a.path.iterdir())
    for rd in (a, b):
        rd.write_config(DynMIXConfig())
    c = home.run("29990101-000000-z")
    c.mkdir()
    (c / "config.toml").write_text("")
    assert RunDir.latest(home).path == c
    assert RunDir.resolve(home, "latest").path == c
    assert RunDir.resolve(home, a.name).path == a.path.resolve()
    assert RunDir.resolve(home, str(b.path)).path == b.path.resolve()
    with pytest.raises(DynMIXError, match="no run 'missing'.*recent runs: 29990101-000000-z"):
        RunDir.resolve(home, "missing")


def test_update_report_merges_one_section_and_keeps_the_others(home: Workspace) -> None:
    rd = RunDir.create(home, "r")
    rd.update_report({"sector": {"m": {"ari": 0.5}}, "notes": ["a"]})
    rd.update_report({"forecast": {"volatility": {"har": {"qlike": 0.1}}}}, merge=True)
    rd.update_report({"forecast": {"surprise": {"x": {"spearman": float("nan")}}}}, merge=True)
    report = json.loads(rd.report_path.read_text())
    assert report["sector"] == {"m": {"ari": 0.5}} and report["notes"] == ["a"]
    assert set(report["forecast"]) == {"volatility", "surprise"}
    assert report["forecast"]["surprise"]["x"]["spearman"] is None  # NaN -> null: valid JSON
    assert "Sector recovery" in rd.report_md_path.read_text()
    rd.update_report({"forecast": {"latent": {}}})  # without merge: the section is replaced
    assert rd.read_report()["forecast"] == {"latent": {}}
    rd.report_path.write_text("{not json")
    assert "not valid JSON" in rd.update_report({"planning": {}})["notes"][-1]


def test_concurrent_report_writers_lose_no_section(home: Workspace) -> None:
    rd = RunDir.create(home, "r")
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda k: rd.update_report({f"s{k}": {"v": k}}), range(16)))
    assert {f"s{k}" for k in range(16)} <= set(rd.read_report())


def test_split_reader_names_the_file_and_what_it_expected(home: Workspace) -> None:
    rd = RunDir.create(home, "r")
    with pytest.raises(DynMIXError, match="split.json not found"):
        rd.read_split()
    rd.split_path.write_text("[1, 2]")
    with pytest.raises(DynMIXError, match="expected a JSON object with train_start"):
        rd.read_split()
    rd.write_split({"train_end": "2020-01-01"})
    assert rd.read_split() == {"train_end": "2020-01-01"}


def test_write_table_refuses_a_path_outside_the_run(home: Workspace, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import polars as pl

    rd = RunDir.create(home, "r")
    rd.write_table(rd.vol_forecast_path, pl.DataFrame({"a": [1]}))
    assert rd.vol_forecast_path.exists()
    with pytest.raises(DynMIXError, match="not a file of run"):
        rd.write_table(tmp_path / "x.parquet", pl.DataFrame({"a": [1]}))


def test_a_run_records_its_views_and_a_resume_refuses_changed_views(
        views_home: Workspace, views: ViewTensors, tiny_cfg: Callable[..., DynMIXConfig],
        write_views_fn: Callable[..., object]) -> None:
    run = train(views_home, tiny_cfg(epochs=1), progress=False, max_steps=1)
    record = RunDir(run).read_views_record()
    assert record["views_stamp"] == views_stamp(views_home.views) != ""
    assert {k: record[k] for k in ("feature_names", "channels", "window")} == views_signature(views)
    write_views_fn(views, views_home.views)  # the same views written again: the same stamp
    assert views_stamp(views_home.views) == record["views_stamp"]
    views.market_vol[5] += 1.0  # other data, same shapes
    write_views_fn(views, views_home.views)
    assert views_stamp(views_home.views) != record["views_stamp"]
    with pytest.raises(DynMIXError, match="changed since run .* was trained .*other data"):
        load_run(run)  # inference refuses to run the model on other data too
    with pytest.raises(DynMIXError, match="changed since run .* started .*cannot resume exactly"):
        train(views_home, tiny_cfg(), resume=run.name, progress=False)


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


def test_renamed_config_keys_still_load(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = config_from_dict({"model": {"implicit_channels": 24}, "world": {"factors": 2}})
    assert cfg.model.implicit_width == 24 and cfg.world.loadings == 2
    with pytest.raises(DynMIXError, match="'factors' is the old name of 'loadings'"):
        config_from_dict({"world": {"factors": 2, "loadings": 3}})
    save_config(cfg, tmp_path / "c.toml")
    assert "implicit_width = 24" in (tmp_path / "c.toml").read_text()


def test_latest_is_the_newest_finished_run(views_home: Workspace, tiny_cfg: Callable[..., DynMIXConfig]) -> None:
    done = train(views_home, tiny_cfg(epochs=1), progress=False, run_name="done")
    killed = train(views_home, tiny_cfg(epochs=1), progress=False, run_name="killed", max_steps=1)  # stopped early
    assert RunDir(killed).incomplete and not RunDir(done).incomplete
    assert RunDir.latest(views_home).path == done  # a run that did not finish never hides the last good one
    assert RunDir.resolve(views_home, "latest").path == done
    assert RunDir.resolve(views_home, "latest", complete=False).path == killed  # what `train --resume latest` takes
    train(views_home, tiny_cfg(), resume="latest", progress=False)  # finishes it
    assert not RunDir(killed).incomplete and RunDir.latest(views_home).path == killed


def test_no_finished_run_says_how_to_continue(views_home: Workspace, tiny_cfg: Callable[..., DynMIXConfig]) -> None:
    killed = train(views_home, tiny_cfg(epochs=1), progress=False, max_steps=1)
    with pytest.raises(DynMIXError, match=f"no finished run .*dynmix train --resume {killed.name}"):
        RunDir.latest(views_home)


def test_models_are_rebuilt_from_the_checkpoint_config(views_home: Workspace,
                                                       tiny_cfg: Callable[..., DynMIXConfig]) -> None:
    run = train(views_home, tiny_cfg(epochs=1), progress=False)
    rd = RunDir(run)
    edited = rd.read_config()
    edited.model.dim = 32  # an edit of config.toml after training must not change the model that is loaded
    save_config(edited, rd.config_path)
    cfg, model, _ = load_run(run)
    assert cfg.model.dim == 8 and model.cfg.dim == 8  # with config.toml's dim = 32 the weights would not even load
