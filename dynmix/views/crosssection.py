"""Cross-sectional standardisation of the explicit features: z-score per date, winsorised at +-WINSOR.

    partial_sums         count, sum and sum of squares of each feature per date, of one chunk of companies
    cross_section_stats  mean and sample std per date from the partial sums of every chunk
    standardise          (x - mean) / std of the row's date, clipped; optional features -> 0 when null

Sums are `np.bincount` over the grid day, in row order: no sort, and the same bits on any thread count.
The build runs the same arithmetic compiled (dynmix/views/kernels.py: cross_sums, day_scales, standardise_rows),
bit for bit (tests/views/test_layout.py); these polars steps are its reference.
"""

from __future__ import annotations

import numpy as np
import polars as pl

WINSOR = 5.0  # z-scores are clipped to [-WINSOR, WINSOR]


def partial_sums(raw: pl.LazyFrame | pl.DataFrame, names: list[str]) -> pl.LazyFrame:
    """gidx, `_n_<f>`, `_s_<f>`, `_q_<f>`: count, sum and sum of squares (f64) of each feature per date.

    One row per grid day 0..max gidx (zeros where `raw` has none). Sums of disjoint sets of companies add up,
    so a build can sum chunk by chunk.
    """
    frame = raw.collect() if isinstance(raw, pl.LazyFrame) else raw
    g = frame["gidx"].to_numpy()  # (R,) grid day of each row, >= 0
    n_days = int(g.max()) + 1 if len(g) else 0
    cols: dict[str, np.ndarray] = {"gidx": np.arange(n_days, dtype=np.int64)}
    for n in names:
        s = frame[n]
        x = s.cast(pl.Float64).fill_null(0.0).to_numpy()  # (R,) a null adds 0
        cols[f"_n_{n}"] = np.bincount(g, weights=s.is_not_null().to_numpy(), minlength=n_days).astype(np.int64)
        cols[f"_s_{n}"] = np.bincount(g, weights=x, minlength=n_days).astype(np.float64)
        cols[f"_q_{n}"] = np.bincount(g, weights=x * x, minlength=n_days).astype(np.float64)
    return pl.DataFrame(cols).lazy()


def cross_section_stats(sums: pl.LazyFrame, names: list[str]) -> pl.LazyFrame:
    """gidx, `_mu_<f>`, `_sd_<f>` (mean, sample std) per date from `partial_sums` rows (of one or more chunks)."""
    total = sums.sort("gidx", maintain_order=True).group_by("gidx", maintain_order=True).agg(
        pl.exclude("gidx").sum())
    out = []
    for n in names:
        cnt, tot, sq = pl.col(f"_n_{n}").cast(pl.Float64), pl.col(f"_s_{n}"), pl.col(f"_q_{n}")
        mu = tot / cnt
        var = ((sq - tot * mu) / (cnt - 1)).clip(lower_bound=0.0)
        out += [pl.when(cnt > 0).then(mu).alias(f"_mu_{n}"), pl.when(cnt > 1).then(var.sqrt()).alias(f"_sd_{n}")]
    return total.select("gidx", *out)


def standardise(raw: pl.LazyFrame, stats: pl.DataFrame, core: list[str], optional: list[str]) -> pl.LazyFrame:
    """z-score each feature against its date's `cross_section_stats`, clipped to +-WINSOR, as Float32.

    A feature present on a date where it has no spread (one company, or all equal) is 0; a null optional
    feature is 0 (the cross-sectional mean), a null core feature stays null (the sample is masked).
    """
    n_days = stats.height and int(stats["gidx"].to_numpy().max()) + 1  # rows of the dense table
    names = [*core, *optional]
    inv = [  # 1 / std, or 0 where the date has no spread: then every present value is at the mean
        pl.when(pl.col(f"_sd_{n}") > 1e-7 * pl.col(f"_mu_{n}").abs()).then(1.0 / pl.col(f"_sd_{n}"))
        .otherwise(0.0).alias(f"_inv_{n}") for n in names
    ]
    dense = (  # row k = grid day k, so a gather by gidx finds each row's date
        pl.DataFrame({"gidx": range(n_days)}, schema={"gidx": pl.Int64})
        .join(stats, on="gidx", how="left", maintain_order="left")
        .with_columns(inv)
    )
    exprs = []
    for n in names:
        mu = pl.lit(dense[f"_mu_{n}"]).gather(pl.col("gidx"))  # (rows,) the date's mean
        z = ((pl.col(n).cast(pl.Float64) - mu) * pl.lit(dense[f"_inv_{n}"]).gather(pl.col("gidx")))
        z = z.clip(-WINSOR, WINSOR)
        if n in optional:
            z = z.fill_null(0.0)
        exprs.append(z.cast(pl.Float32).alias(n))
    return raw.with_columns(exprs)


def day_scales(sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mu, inv), each (F, T) float64, from (F, 3, T) count, sum and sum of squares per day (`kernels.cross_sums`
    of every chunk, added in chunk order): the date's mean (NaN with no value) and 1 / sample std (0 where the
    date has no spread or fewer than two values). The same arithmetic as `cross_section_stats` and `standardise`.
    """
    cnt, tot, sq = sums[:, 0], sums[:, 1], sums[:, 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = np.where(cnt > 0, tot / cnt, np.nan)
        sd = np.where(cnt > 1, np.sqrt(np.maximum((sq - tot * mu) / (cnt - 1), 0.0)), np.nan)
        inv = np.where(sd > 1e-7 * np.abs(mu), 1.0 / sd, 0.0)
    return mu, inv
