"""Statistics of a comparison of training arms over seeds: mean, standard deviation, a bootstrap interval of the
mean, and a paired test of each arm against a baseline arm (seed k of one arm against seed k of the other: the
same split, initialisation seed and batch order, so seed-to-seed noise common to both cancels).

`per_seed` maps arm -> score -> (S,) values over seeds (NaN where a score was not computable for a seed).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.stats import ttest_rel

BOOTSTRAP = 2000  # resamples of the seeds for the interval of the mean
LOWER_IS_BETTER = ("pair_vol", "train_seconds")  # score names starting like these: smaller is better


def lower_is_better(score: str) -> bool:
    return score.startswith(LOWER_IS_BETTER)


def bootstrap_interval(x: np.ndarray, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `x` (finite values); (nan, nan) for fewer than 2."""
    x = x[np.isfinite(x)]
    if x.size < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, (BOOTSTRAP, x.size))].mean(axis=1)
    a = (1 - level) / 2
    return float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def describe(x: np.ndarray) -> dict[str, float | int]:
    """{mean, sd, n, ci_lo, ci_hi} of the finite values (sd with ddof 1; 0 for a single value)."""
    x = np.asarray(x, dtype=np.float64)
    ok = x[np.isfinite(x)]
    lo, hi = bootstrap_interval(ok)
    return {"mean": float(ok.mean()) if ok.size else float("nan"),
            "sd": float(ok.std(ddof=1)) if ok.size > 1 else 0.0 if ok.size else float("nan"),
            "n": int(ok.size), "ci_lo": lo, "ci_hi": hi}


def paired(x: np.ndarray, base: np.ndarray) -> dict[str, float]:
    """Paired difference x - base over the seeds where both are finite: {diff, diff_sd, t, p} (two-sided t-test on
    the differences; p is NaN with fewer than 2 pairs or identical pairs).
    """
    x, base = np.asarray(x, dtype=np.float64), np.asarray(base, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(base)
    d = x[ok] - base[ok]
    out = {"diff": float(d.mean()) if d.size else float("nan"),
           "diff_sd": float(d.std(ddof=1)) if d.size > 1 else float("nan"), "t": float("nan"), "p": float("nan")}
    if d.size >= 2 and np.ptp(d) > 0:
        res = ttest_rel(x[ok], base[ok])
        out["t"], out["p"] = float(res.statistic), float(res.pvalue)
    elif d.size >= 2 and d[0] != 0:
        out["p"] = 0.0  # every seed moved by the same nonzero amount
    elif d.size >= 2:
        out["p"] = 1.0  # identical on every seed
    return out


def summarise(per_seed: dict[str, dict[str, list[float]]], baseline: str | None) -> dict[str, Any]:
    """{arm: {score: {mean, sd, n, ci_lo, ci_hi[, diff, diff_sd, t, p vs baseline]}}}."""
    out: dict[str, Any] = {}
    for arm, scores in per_seed.items():
        out[arm] = {}
        for score, values in scores.items():
            stats: dict[str, Any] = describe(np.asarray(values, dtype=np.float64))
            base = per_seed.get(baseline or "", {}).get(score)
            if base is not None and arm != baseline and len(base) == len(values):  # seed-free references: no test
                stats |= paired(np.asarray(values, dtype=np.float64), np.asarray(base, dtype=np.float64))
            out[arm][score] = stats
    return out


def _fmt(v: float, digits: int = 3) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def overview(summary: dict[str, Any], scores: list[str], baseline: str | None) -> str:
    """One table: an arm per row, `mean ± sd` per score (with `*` where the paired test against the baseline gives
    p < 0.05), so the arms read side by side.
    """
    lines = ["| arm | " + " | ".join(scores) + " |", "|---|" + "---:|" * len(scores)]
    for arm, stats in summary.items():
        cells = []
        for score in scores:
            st = stats.get(score)
            if st is None or not st.get("n"):
                cells.append("—")
                continue
            star = "*" if arm != baseline and math.isfinite(st.get("p", float("nan"))) and st["p"] < 0.05 else ""
            cells.append(f"{_fmt(st['mean'])} ± {_fmt(st['sd'])}{star}" if st["n"] > 1 else _fmt(st["mean"]))
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def markdown(summary: dict[str, Any], scores: list[str], baseline: str | None) -> str:
    """A table per score: arm, mean ± sd (n), 95 % bootstrap interval, paired difference vs the baseline and p."""
    lines = []
    for score in scores:
        arrow = "lower is better" if lower_is_better(score) else "higher is better"
        lines += [f"### {score} ({arrow})", "",
                  f"| arm | mean ± sd (n) | 95 % interval | Δ vs {baseline} | p (paired t) |",
                  "|---|---:|---:|---:|---:|"]
        for arm, stats in summary.items():
            s = stats.get(score)
            if s is None:
                continue
            lines.append(f"| {arm} | {_fmt(s['mean'])} ± {_fmt(s['sd'])} ({s['n']}) | "
                         f"[{_fmt(s['ci_lo'])}, {_fmt(s['ci_hi'])}] | {_fmt(s.get('diff', float('nan')), 4)} | "
                         f"{_fmt(s.get('p', float('nan')), 3)} |")
        lines.append("")
    return "\n".join(lines)
