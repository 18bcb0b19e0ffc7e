"""The scaling curve: views time, load_view_tensors time, measured epoch time and peak memory against N tickers.

Each quantity is fitted as y = a N^b by least squares in log-log; b near 1 is linear growth. Points missing
or not measured are left out of the fit (and a fit needs two points). The epoch is one measured epoch over a
fixed number of training dates (benchmarks/epoch_bench.py), so its samples grow as N: linear epoch time is a
constant samples/s.
"""

from __future__ import annotations

from typing import Any

import numpy as np

LINEAR = (0.85, 1.15)  # slopes in this band count as linear

QUANTITIES = {  # name -> (case kind, path of keys inside that case's result, unit)
    "views_s": ("views_polars", ("timing", "median_s"), "s"),
    "views_peak_mb": ("views_polars", ("peak_rss_mb",), "MiB"),
    "tensors_s": ("epoch", ("tensors", "timing", "median_s"), "s"),
    "tensors_peak_mb": ("epoch", ("tensors", "peak_rss_mb"), "MiB"),
    "epoch_s": ("epoch", ("epoch_s",), "s"),
    "epoch_peak_mb": ("epoch", ("peak_rss_mb",), "MiB"),
}
# per point, not fitted: the epoch's throughput and span
EPOCH_INFO = ("samples_per_s", "epoch_dates", "dates_per_batch", "steps", "samples", "batch_samples_mean")


def loglog_slope(xs: list[float], ys: list[float]) -> float | None:
    """Slope b of log y = log a + b log x (None with fewer than two positive points)."""
    pts = [(x, y) for x, y in zip(xs, ys, strict=True) if x > 0 and y is not None and y > 0]
    if len({x for x, _ in pts}) < 2:
        return None
    lx, ly = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(lx, ly, 1)[0])


def verdict(slope: float | None) -> str:
    if slope is None:
        return "not enough points"
    if slope < LINEAR[0]:
        return "sub-linear"
    return "linear" if slope <= LINEAR[1] else "super-linear"


def _get(result: dict[str, Any] | None, path: tuple[str, ...]) -> float | None:
    node: Any = result
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return float(node) if isinstance(node, int | float) else None


def curve(cases: dict[str, dict[int, dict[str, Any]]], sizes: list[int]) -> dict[str, Any]:
    """Per size the quantities of the scaling curve, and per quantity its log-log slope and verdict.

    `cases`: case kind -> tickers -> that case's result (as returned by `harness.run_case`).
    """
    points = []
    for n in sizes:
        row: dict[str, Any] = {"tickers": n}
        for name, (kind, path, _unit) in QUANTITIES.items():
            row[name] = _get(cases.get(kind, {}).get(n), path)
        epoch = cases.get("epoch", {}).get(n) or {}
        row |= {key: epoch.get(key) for key in EPOCH_INFO} | {"error": epoch.get("error")}
        points.append(row)
    fits = {}
    for name, (_kind, _path, unit) in QUANTITIES.items():
        b = loglog_slope([p["tickers"] for p in points], [p[name] for p in points])
        fits[name] = {"slope": b, "verdict": verdict(b), "unit": unit}
    return {"points": points, "fits": fits}
