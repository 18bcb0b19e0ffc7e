"""Sharpe intervals and Sharpe-difference tests on cases whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dynmix.errors import DynMIXError
from dynmix.planning import stats


def test_sharpe_and_cvar_of_known_series() -> None:
    x = np.array([0.01, -0.01] * 50 + [0.0])
    assert stats.sharpe(x) == pytest.approx(0.0, abs=1e-12)
    y = np.r_[np.full(95, 0.001), np.full(5, -0.05)]  # the worst 5 % of 100 days lose 5 % each
    assert stats.cvar(y) == pytest.approx(0.05)
    assert math.isnan(float(stats.sharpe(np.zeros(20))))


def test_interval_covers_the_true_sharpe_and_shrinks_with_more_data() -> None:
    true = 1.0  # annualised: daily mean / std = 1 / sqrt(252)
    widths, covered = [], 0
    for seed in range(8):
        rng = np.random.default_rng(seed)
        x = rng.normal(0.01 / math.sqrt(252), 0.01, (2000, 1))
        boot = stats.bootstrap_sharpes(x, reps=300, seed=seed)
        lo, hi = stats.sharpe_interval(boot)
        covered += int(lo[0] <= true <= hi[0])
        widths.append(hi[0] - lo[0])
    assert covered >= 6  # 95 % intervals: 8 of 8 expected, 6 allows for chance
    # the asymptotic width of an iid Sharpe interval is 2·1.96·sqrt((1 + SR_d²/2) · 252 / T)
    assert np.mean(widths) == pytest.approx(2 * 1.96 * math.sqrt(252 / 2000), rel=0.25)


def test_difference_test_finds_a_real_gap_and_not_a_null_one() -> None:
    rng = np.random.default_rng(0)
    T = 1500
    common = rng.normal(0, 0.01, T)
    base = common + rng.normal(0, 0.004, T)
    better = common + rng.normal(0, 0.004, T) + 0.002  # + 0.2 %/day: Sharpe up by ~ 3
    same = common + rng.permutation(base - common)  # the same mean as base, its noise reshuffled: no gap
    out = stats.judge({"equal_weight": base, "better": better, "same": same}, reps=500)
    assert out["better"]["p"] < 0.01 and out["better"]["p_memmel"] < 0.01
    assert out["same"]["p"] > 0.1 and out["same"]["p_memmel"] > 0.1
    assert out["better"]["sharpe_diff"] == pytest.approx(out["better"]["sharpe"] - out["equal_weight"]["sharpe"])
    assert "p" not in out["equal_weight"]
    # the bootstrap and Memmel's closed form agree on iid normal data
    assert abs(out["same"]["p"] - out["same"]["p_memmel"]) < 0.15
    assert abs(out["better"]["sharpe_diff"]) > 2.0 and abs(out["same"]["sharpe_diff"]) < 0.1


def test_p_values_under_the_null_are_not_too_small() -> None:
    """Two independent series with equal true Sharpe: the test rejects at 5 % about 5 % of the time."""
    rejections = 0
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        x = rng.normal(0.0004, 0.01, (600, 2))
        boot = stats.bootstrap_sharpes(x, reps=200, seed=seed)
        rejections += int(stats.diff_pvalue(boot, stats.sharpe(x), 0, 1) < 0.05)
    assert rejections <= 4


def test_bootstrap_rejects_bad_input() -> None:
    with pytest.raises(DynMIXError, match="finite"):
        stats.bootstrap_sharpes(np.full((50, 2), np.nan))
    with pytest.raises(DynMIXError, match="T >= 10"):
        stats.bootstrap_sharpes(np.zeros((5, 2)))
