"""`dynmix compare`: arm names, the statistics over seeds, and a tiny end-to-end comparison."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import pytest
import torch
from scipy.stats import ttest_rel

from dynmix.data.store import Store
from dynmix.errors import DynMIXError
from dynmix.evaluation.compare import describe, overview, paired, summarise
from dynmix.evaluation.report import evaluate_run
from dynmix.views.build import build_views
from dynmix.workspace import Workspace
from pipelines.compare import arm_config, arm_name, parse_arm, run_compare


def test_arm_names() -> None:
    assert parse_arm("vicreg") == ("vicreg", "static")
    assert parse_arm("vicreg:market-vol") == ("vicreg", "market-vol")
    assert parse_arm("barlow") == ("barlow", None)
    assert arm_name("vicreg") == "vicreg:static"
    with pytest.raises(DynMIXError, match="unknown objective 'simclr'"):
        parse_arm("simclr")
    with pytest.raises(DynMIXError, match="unknown variance target 'garch'"):
        parse_arm("vicreg:garch")


def test_arm_config_sets_objective_target_seed_and_epochs(tiny_run_config) -> None:  # type: ignore[no-untyped-def]
    cfg = arm_config(tiny_run_config(), "vicreg:dispersion", seed=2, epochs=3)
    assert (cfg.loss.objective, cfg.loss.variance_target, cfg.train.seed, cfg.train.epochs) == (
        "vicreg", "dispersion", 2, 3)


def test_statistics_over_seeds() -> None:
    x, base = np.array([0.5, 0.7, 0.65, np.nan]), np.array([0.4, 0.5, 0.6, 0.3])
    d = describe(x)
    assert d["n"] == 3 and d["mean"] == pytest.approx(np.mean(x[:3]))
    assert d["sd"] == pytest.approx(np.std(x[:3], ddof=1))
    assert d["ci_lo"] <= d["mean"] <= d["ci_hi"]
    p = paired(x, base)  # seed 4 has no value for x: left out of the pairs
    ref = ttest_rel(x[:3], base[:3])
    assert p["diff"] == pytest.approx(np.mean(x[:3] - base[:3])) and p["p"] == pytest.approx(ref.pvalue)
    assert paired(base, base)["p"] == 1.0
    s = summarise({"a": {"s": list(base)}, "b": {"s": list(x)}, "ref": {"s": [0.1]}}, "a")
    assert "p" in s["b"]["s"] and "p" not in s["a"]["s"] and "p" not in s["ref"]["s"]
    table = overview(s, ["s"], "a").splitlines()
    assert table[2] == f"| a | {np.mean(base):.3f} ± {np.std(base, ddof=1):.3f} |" and table[4] == "| ref | 0.100 |"


def _tiny_market(n: int = 6, days: int = 420, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mkt, var = np.empty(days), 1e-4
    for k in range(days):  # GARCH-like market volatility, so the regimes differ
        mkt[k] = np.sqrt(var) * rng.standard_normal()
        var = 1e-5 + 0.1 * mkt[k] ** 2 + 0.85 * var
    sector = np.arange(n) % 2
    r = mkt[:, None] + rng.normal(0, 0.008, (days, 2))[:, sector] + rng.normal(0, 0.01, (days, n))
    return 50 * np.exp(np.cumsum(r, 0)), sector


def test_compare_end_to_end(tmp_path, write_panel, tiny_run_config) -> None:  # type: ignore[no-untyped-def]
    ws = Workspace(tmp_path / "ws")
    cfg = tiny_run_config()
    # whole-window views: partial history would start training earlier and move the regime thresholds, and this
    # test needs a test period without stressed dates
    cfg = dataclasses.replace(cfg, views=dataclasses.replace(cfg.views, partial_history=False))
    with pytest.raises(DynMIXError, match="views build"):
        run_compare(ws, cfg, arms=("vicreg",), seeds=2, epochs=1)
    write_panel(ws.store, dt.date(2012, 1, 2), *_tiny_market())
    build_views(Store(ws.store), ws.views, cfg.views, progress=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        out = run_compare(ws, cfg, arms=("vicreg", "vicreg:market-vol", "barlow"), seeds=2, epochs=1)
        assert torch.get_num_threads() == 2  # one thread while comparing, the caller's count restored after
    finally:
        torch.set_num_threads(threads)
    summary = json.loads((ws.home / "compare" / "compare.json").read_text())
    assert set(summary) == {"vicreg:static", "vicreg:market-vol", "barlow", "pca_loadings", "pearson"}
    s = summary["barlow"]
    for score in ("ari", "spearman_future_corr", "pair_vol", "spearman_future_corr_calm", "pair_vol_calm",
                  "train_seconds"):
        assert set(s[score]) >= {"mean", "sd", "n"} and s[score]["n"] == 2, score
        assert "p" in s[score]
    # this short test period has no stressed date: the score is there with no values rather than missing
    assert s["spearman_future_corr_stressed"]["n"] == 0
    runs = json.loads((ws.home / "compare" / "compare_runs.json").read_text())
    assert len(runs["runs"]["vicreg:market-vol"]) == 2 and runs["settings"]["seeds"] == 2
    assert runs["settings"]["torch_threads"] == 1
    # the last run's report used the baselines' scores of the first run: the same as evaluating it alone
    last = ws.runs / runs["runs"]["barlow"][1]
    kept = json.loads((last / "report.json").read_text())
    alone = json.loads(json.dumps(evaluate_run(ws, last), default=str))
    for part in ("sector", "similarity", "hedging", "regimes"):
        assert json.dumps(kept[part], sort_keys=False) == json.dumps(alone[part], sort_keys=False), part
    assert {"pca", "correlation", "random", "pearson"} <= set(kept["similarity"])
    assert {"dynmix_implicit", "pearson"} == set(kept["regimes"]["scores"])
    # the seeds really differ (different initialisation): not the same number twice
    assert len(set(runs["per_seed"]["vicreg:static"]["spearman_future_corr"])) == 2
    md = (ws.home / "compare" / "compare.md").read_text()
    assert "### spearman_future_corr_calm" in md and "| barlow |" in md and "## Overview" in md
    assert out["settings"]["arms"] == ["vicreg:static", "vicreg:market-vol", "barlow"]
