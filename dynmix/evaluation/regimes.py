"""Per-date scores by market regime: what per-company means over the test period wash out.

Each test date d is labelled calm / mid / stressed by its market volatility (gamma.parquet's `market_vol`, trailing,
known at d) against the terciles of the training dates' values, so no test-period value sets a threshold. For each
regime r and each of its test dates d (at most MAX_DATES per regime, evenly thinned), the embeddings of that date
alone (N_d, D) give a cosine similarity S_d, scored as:

- `spearman_future_corr_r`: Spearman of S_d against the return correlation realised over regime r's test dates,
  averaged over the dates;
- `pair_vol_r`: each company paired with its least similar other under S_d; the equal-weight pair's next-day
  return, annualised standard deviation over regime r's dates, averaged over companies (the hedge is chosen at d,
  held on d+1);
- `precision_at_k_r`: share of each company's k most similar others under S_d that share its sector.

The same scores suffixed `_per_date` pool the three regimes' dates. Train-period Pearson correlation, one matrix
for all dates, is scored the same way as the reference (`pearson` in `regime_report`).
Shapes: N companies, D embedding, T dates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from dynmix.data.schema import UNKNOWN_SECTOR
from dynmix.errors import DataError
from dynmix.evaluation.baselines import pearson_similarity, period, returns_panel
from dynmix.evaluation.run_inputs import RunInputs
from dynmix.evaluation.similarity import (
    MIN_OBS,
    TRADING_DAYS,
    cosine_matrix,
    least_similar_partner,
    precision_at_k,
    return_correlation,
    spearman_future,
)
from dynmix.runs.embeddings import scan_view

REGIMES: tuple[str, ...] = ("calm", "mid", "stressed")
MAX_DATES = 120  # per regime: per-date scores of more dates change the mean little and cost time


def regime_labels(market_vol: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """(T,) regime index 0 calm / 1 mid / 2 stressed (-1 where the volatility is missing) and the two thresholds,
    the training dates' 1/3 and 2/3 quantiles.
    """
    vol = np.asarray(market_vol, dtype=np.float64)
    ref = vol[np.asarray(train, dtype=bool) & np.isfinite(vol)]
    if ref.size < 3:
        raise DataError(f"only {ref.size} training dates have a market volatility: expected at least 3 to set the "
                        "regime terciles")
    lo, hi = np.quantile(ref, [1 / 3, 2 / 3])
    out = np.where(vol <= lo, 0, np.where(vol <= hi, 1, 2))
    return np.where(np.isfinite(vol), out, -1), (float(lo), float(hi))


def _date_embeddings(path: Any, view: str, dates: list[dt.date]) -> dict[dt.date, tuple[list[str], np.ndarray]]:
    if not dates:
        return {}
    df = (scan_view(path, view, min(dates), max(dates))
          .filter(pl.col("date").is_in(pl.Series(dates, dtype=pl.Date).implode())).collect())
    if df.height == 0:
        raise DataError(f"no {view!r} embeddings on the test dates", file=path)
    out: dict[dt.date, tuple[list[str], np.ndarray]] = {}
    for (d,), g in df.group_by("date"):
        x = np.asarray(g["embedding"].to_list(), dtype=np.float64)  # (N_d, D)
        out[d] = (g["ticker"].to_list(), x)
    return out


Similarity = tuple[list[str], np.ndarray]  # the companies of a date and their (N_d, N_d) similarity


def _cosines(emb: dict[dt.date, tuple[list[str], np.ndarray]], dates: list[dt.date],
             rows: dict[dt.date, list[int]], names: dict[dt.date, list[str]]) -> Iterator[Similarity]:
    """Each date's cosine similarity of the embeddings in its `rows`, one date at a time (200 MB at 5,000)."""
    for d in dates:
        yield names[d], cosine_matrix(emb[d][1][rows[d]])


def _submatrices(m: np.ndarray, column: dict[str, int], dates: list[dt.date],
                 names: dict[dt.date, list[str]]) -> Iterator[Similarity]:
    """The (N, N) matrix `m` restricted to each date's companies, one date at a time."""
    for d in dates:
        idx = [column[t] for t in names[d]]
        yield names[d], m[np.ix_(idx, idx)]


class _Scorer:
    """Scores a per-date similarity S_d on one regime's dates, against that regime's realised returns."""

    def __init__(self, test_ret: pd.DataFrame, sectors: list[str | None], k: int) -> None:
        self.ret = test_ret  # (T_test, N)
        self.cols = {t: j for j, t in enumerate(test_ret.columns)}
        self.sectors = sectors
        self.k = k

    def score(self, dates: list[dt.date], sims: Iterable[Similarity]) -> dict[str, float]:
        """Mean per-date Spearman and precision@k, next-day pair volatility, over `dates` with their S_d."""
        r = self.ret.to_numpy(dtype=np.float64)  # (T, N)
        pos = {d: i for i, d in enumerate(self.ret.index)}
        rows = [pos[d] for d in dates if d in pos]
        corr = return_correlation(self.ret.iloc[rows], min_obs=min(MIN_OBS, max(3, len(rows) // 2)))  # (N, N)
        rho, prec, pair_rows = [], [], []
        for d, (tickers, sim) in zip(dates, sims, strict=True):
            idx = np.array([self.cols[t] for t in tickers])
            rho.append(spearman_future(sim, corr[np.ix_(idx, idx)]))
            known = np.array([self.sectors[j] is not None for j in idx])
            if known.sum() > self.k:
                prec.append(precision_at_k(sim[np.ix_(known, known)], [str(self.sectors[j]) for j in idx[known]],
                                           self.k))
            nxt = pos.get(d, -1) + 1
            if 0 < nxt < len(r):
                pair = np.full(r.shape[1], np.nan)
                partner = idx[least_similar_partner(sim)]
                pair[idx] = 0.5 * (r[nxt, idx] + r[nxt, partner])
                pair_rows.append(pair)
        vol = float("nan")
        if len(pair_rows) >= 3:
            p = np.asarray(pair_rows)  # (dates, N)
            ok = np.isfinite(p).sum(axis=0) >= 3
            if ok.any():
                vol = float((np.nanstd(p[:, ok], axis=0, ddof=1) * np.sqrt(TRADING_DAYS)).mean())
        return {"spearman_future_corr": float(np.nanmean(rho)) if rho else float("nan"),
                f"precision_at_{self.k}": float(np.mean(prec)) if prec else float("nan"), "pair_vol": vol}


def _thin(dates: list[dt.date], n: int) -> list[dt.date]:
    if len(dates) <= n:
        return dates
    return [dates[int(i)] for i in np.linspace(0, len(dates) - 1, n).round()]


def regime_report(run: RunInputs, view: str = "implicit", *, max_dates: int = MAX_DATES,
                  shared: dict[Any, Any] | None = None) -> dict[str, Any]:
    """{"thresholds", "n_dates": {regime: n}, "scores": {method: {score or score_regime: value}}} for the run's
    per-date `view` embeddings ("dynmix_<view>") and train-period Pearson ("pearson").

    `shared`: a dict kept across the runs of one workspace (`dynmix compare`); Pearson's per-regime scores, which
    depend only on the returns, the split, the dates and the companies scored, are reused from it when the same.
    """
    gamma = pl.read_parquet(run.rd.gamma_path)
    labels, thresholds = regime_labels(gamma["market_vol"].to_numpy(), gamma["train"].to_numpy())
    all_dates: list[dt.date] = gamma["date"].to_list()
    test = [(d, int(g)) for d, g in zip(all_dates, labels, strict=True) if d >= run.test_start and g >= 0
            and (run.test_end is None or d <= run.test_end)]
    ret = returns_panel(run.prices, run.equities)
    test_ret = period(ret, run.test_start, run.test_end)
    pearson = pearson_similarity(period(ret, run.train_start, run.train_end))  # (N, N)
    sectors: list[str | None] = [None if run.sectors.get(t, UNKNOWN_SECTOR) == UNKNOWN_SECTOR else run.sectors[t]
                                 for t in run.equities]
    scorer = _Scorer(test_ret, sectors, run.eval_cfg.precision_k)
    by_regime = {name: _thin([d for d, g in test if g == k], max_dates) for k, name in enumerate(REGIMES)}
    wanted = sorted({d for ds in by_regime.values() for d in ds})
    emb = _date_embeddings(run.embeddings_path, view, wanted)
    equities = set(run.equities)
    column = {t: j for j, t in enumerate(run.equities)}  # (N,) position in `pearson`
    scores: dict[str, dict[str, float]] = {f"dynmix_{view}": {}, "pearson": {}}
    groups = {**by_regime, "per_date": sorted(d for ds in by_regime.values() for d in ds)}
    for name, dates in groups.items():
        dates = [d for d in dates if d in emb]
        suffix = f"_{name}"
        if len(dates) < 3:  # too few dates in this regime: the scores are there, as NaN (null in report.json)
            for method in scores:
                scores[method] |= {f"{key}{suffix}": float("nan") for key in
                                   ("spearman_future_corr", f"precision_at_{scorer.k}", "pair_vol")}
            continue
        rows = {d: [j for j, t in enumerate(emb[d][0]) if t in equities] for d in dates}  # each date's equities
        names = {d: [emb[d][0][j] for j in rows[d]] for d in dates}
        ours = scorer.score(dates, _cosines(emb, dates, rows, names))
        scores[f"dynmix_{view}"] |= {f"{key}{suffix}": v for key, v in ours.items()}
        ref_key = ("regime_pearson", run.rd.read_views_record().get("store_snapshot"), str(run.train_start),
                   str(run.train_end), str(run.test_start), str(run.test_end), scorer.k, tuple(run.equities),
                   tuple(sectors), tuple((d, tuple(names[d])) for d in dates))
        if shared is None or ref_key not in shared:
            ref_scores = scorer.score(dates, _submatrices(pearson, column, dates, names))
            if shared is not None:
                shared[ref_key] = dict(ref_scores)
        else:
            ref_scores = dict(shared[ref_key])
        scores["pearson"] |= {f"{key}{suffix}": v for key, v in ref_scores.items()}
    return {"thresholds": {"calm_max": thresholds[0], "mid_max": thresholds[1]},
            "n_dates": {name: len(by_regime[name]) for name in REGIMES}, "scores": scores}
