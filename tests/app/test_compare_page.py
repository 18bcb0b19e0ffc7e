"""The Training page's comparison of objectives: bars of HOME/compare/compare.json (mean ± sd over seeds per
objective, score and regime), explained in words when the file is absent."""

from __future__ import annotations

import json

import numpy as np

from app import artifacts
from app.charts import training as charts
from dynmix.evaluation.compare import summarise


def _summary() -> dict:
    per_seed = {
        "vicreg:static": {"spearman_future_corr": [0.30, 0.34, 0.32], "spearman_future_corr_stressed": [0.5, 0.6, 0.7],
                          "pair_vol": [0.33, 0.34, 0.35], "train_seconds": [10.0, 11.0, 12.0]},
        "barlow": {"spearman_future_corr": [0.20, 0.22, 0.24], "spearman_future_corr_stressed": [0.4, 0.4, 0.4],
                   "pair_vol": [0.29, 0.29, np.nan], "train_seconds": [9.0, 9.0, 9.0]},
        "pearson": {"spearman_future_corr": [0.527]},
    }
    return summarise(per_seed, "vicreg:static")


def test_compare_frame_splits_scores_by_regime() -> None:
    rows = artifacts.compare_frame(_summary() | {"junk": 3})
    one = rows.filter((rows["arm"] == "vicreg:static") & (rows["score"] == "spearman_future_corr")).sort("regime")
    assert one["regime"].to_list() == ["all", "stressed"]
    assert np.allclose(one["mean"].to_list(), [0.32, 0.6]) and np.allclose(one["sd"].to_list(), [0.02, 0.1])
    barlow_vol = rows.filter((rows["arm"] == "barlow") & (rows["score"] == "pair_vol"))
    assert barlow_vol["n"].to_list() == [2]  # the NaN seed is not counted
    assert rows.filter(rows["arm"] == "pearson")["sd"].to_list() == [0.0]
    assert artifacts.compare_frame({}).height == 0


def test_compare_chart_bars_with_error_bars() -> None:
    rows = artifacts.compare_frame(_summary())
    fig = charts.compare_chart(rows, "spearman_future_corr")
    names = [t.name for t in fig.data]
    assert names == ["vicreg:static", "barlow", "pearson"]
    static = fig.data[0]
    assert list(static.x) == ["all", "stressed"]
    assert np.allclose(static.y, [0.32, 0.6]) and np.allclose(static.error_y.array, [0.02, 0.1])
    assert not charts.compare_chart(rows, "nope").data  # an empty figure that says why


def test_training_page_shows_the_comparison(dashboard, writable_home) -> None:
    (writable_home / "compare").mkdir()
    (writable_home / "compare" / "compare.json").write_text(json.dumps(_summary()))
    at = dashboard(writable_home).run()
    at.switch_page("screens/training.py").run()
    assert not at.exception, [e.value for e in at.exception]
    score = at.selectbox(key="compare_score")
    assert score.value == "spearman_future_corr" and "train_seconds" not in score.options
    assert any("3 seed(s)" in c.value for c in at.caption)
    score.set_value("pair_vol").run()
    assert not at.exception


def test_training_page_explains_a_missing_comparison(dashboard, full_home) -> None:
    at = dashboard(full_home).run()
    at.switch_page("screens/training.py").run()
    assert not at.exception
    assert any("dynmix compare" in box.value and "seed noise" in box.value for box in at.info)
