"""The explicit (constructed) view x_E[i, t] of every equity (DESIGN §4).

Stateless polars steps, `LazyFrame -> LazyFrame`, each feature from data up to t only:

    factor_returns   the market's and each factor ETF's daily return per grid day
    raw_features     per company trailing windows over the grid days up to t:
                     momentum 5/21/63/252 d (log price change), realised and downside volatility 21/63 d,
                     beta / correlation / idiosyncratic volatility against the market (252 d, pairwise-complete
                     rolling moments), drawdown from the 252-d high, 63-d skew and excess kurtosis,
                     liquidity (log mean dollar volume, 21 d), 252-d beta to each factor ETF
    partial_sums, cross_section_stats, standardise
                     cross-sectional z-score per date, winsorised at +-WINSOR; optional features -> 0 when null
    sector_onehot    one 0/1 column per sector ("Unknown" is a sector like any other)

A core feature without enough history is null, which masks the sample (tensors.py); optional features
(liquidity, ETF betas) never do.
"""

from __future__ import annotations

import re

import polars as pl

from dynmix.views.implicit import finite

MOMENTUM = (5, 21, 63, 252)  # days of log price change
VOLATILITY = (21, 63)  # days of realised and downside volatility
BETA_WINDOW, BETA_MIN = 252, 126  # rolling moments against the market and the factor ETFs
DRAWDOWN_WINDOW = 252
MOMENT_WINDOW = 63  # skew and kurtosis
LIQUIDITY_WINDOW, LIQUIDITY_MIN = 21, 5
LONGEST_WINDOW = max(*MOMENTUM, BETA_WINDOW, DRAWDOWN_WINDOW, MOMENT_WINDOW, LIQUIDITY_WINDOW)
WINSOR = 5.0  # z-scores are clipped to [-WINSOR, WINSOR]

CORE_FEATURES = (
    *(f"mom_{k}" for k in MOMENTUM),
    *(f"vol_{k}" for k in VOLATILITY),
    *(f"dvol_{k}" for k in VOLATILITY),
    "beta_mkt",
    "corr_mkt",
    "ivol_mkt",
    "drawdown",
    "skew",
    "kurt",
)
LIQUIDITY = "liquidity"


def etf_feature(ticker: str) -> str:
    return f"beta_etf_{ticker}"


def sector_feature(sector: str) -> str:
    return "sector_" + (re.sub(r"[^0-9a-z]+", "_", sector.lower()).strip("_") or "x")


def _min_obs(window: int) -> int:
    return max(2, (2 * window) // 3)


def _mean(e: pl.Expr, window: int, min_samples: int) -> pl.Expr:
    return e.rolling_mean(window, min_samples=min_samples)


def factor_returns(market: pl.LazyFrame, returns: pl.LazyFrame, etfs: list[str]) -> pl.LazyFrame:
    """gidx, `_m` (market return) and `_e_<ETF>` (each factor ETF's return) per grid day (T rows)."""
    factors = market.select("gidx", pl.col("mkt_ret").alias("_m"))
    for etf in etfs:
        own = returns.filter(pl.col("live") & (pl.col("ticker") == etf))
        ret = own.select("gidx", pl.col("ret").alias(f"_e_{etf}"))
        factors = factors.join(ret, on="gidx", how="left")
    return factors


def _pair_moments(r: pl.Expr, f: pl.Expr, tag: str) -> list[pl.Expr]:
    """Rolling means of r, f, r*f, f*f (and r*r) over the days where both are observed."""
    both = r.is_not_null() & f.is_not_null()
    rr, ff = pl.when(both).then(r), pl.when(both).then(f)
    terms = {"r": rr, "f": ff, "rf": rr * ff, "ff": ff * ff, **({"rr": rr * rr} if tag == "m" else {})}
    return [_mean(e, BETA_WINDOW, BETA_MIN).alias(f"_{tag}_{k}") for k, e in terms.items()]


def _beta(tag: str) -> tuple[pl.Expr, pl.Expr]:
    """(cov(r, f), var(f)) from the rolling means of `_pair_moments`."""
    c = pl.col
    cov = c(f"_{tag}_rf") - c(f"_{tag}_r") * c(f"_{tag}_f")
    var_f = c(f"_{tag}_ff") - c(f"_{tag}_f") ** 2
    return cov, var_f


def dollar_volume() -> pl.Expr:
    """Dollar volume (close x volume) where the volume is known (for the liquidity feature)."""
    return pl.when(pl.col("volume").is_not_null()).then(pl.col("close") * pl.col("volume")).alias("dollar")


def raw_features(panel: pl.LazyFrame, factors: pl.LazyFrame, etfs: list[str]) -> pl.LazyFrame:
    """ticker, date, gidx, live and the unstandardised features (Float32; null = not enough history).

    `panel`: ticker, gidx, date, live, ret, lp_ff, dollar laid out by `implicit.on_grid` (a ticker's rows are
    preceded by null guard rows, so these trailing windows never reach another ticker); `factors`:
    `factor_returns`.
    """
    panel = panel.join(factors, on="gidx", how="left", maintain_order="left")
    r, lp = pl.col("ret"), pl.col("lp_ff")
    down = pl.when(r < 0).then(r).otherwise(pl.when(r.is_not_null()).then(0.0))
    stage1 = [*_pair_moments(r, pl.col("_m"), "m")]
    for etf in etfs:
        stage1 += _pair_moments(r, pl.col(f"_e_{etf}"), f"e_{etf}")
    stage1.append(_mean(pl.col("dollar"), LIQUIDITY_WINDOW, LIQUIDITY_MIN).alias("_dollar"))
    feats = [(lp - lp.shift(k)).alias(f"mom_{k}") for k in MOMENTUM]
    feats += [r.rolling_std(k, min_samples=_min_obs(k)).alias(f"vol_{k}") for k in VOLATILITY]
    feats += [_mean(down * down, k, _min_obs(k)).sqrt().alias(f"dvol_{k}") for k in VOLATILITY]
    cov, var_m = _beta("m")
    var_r = pl.col("_m_rr") - pl.col("_m_r") ** 2
    corr = cov / (var_r * var_m).sqrt()
    feats += [
        finite(cov / var_m).alias("beta_mkt"),
        finite(corr).alias("corr_mkt"),
        finite((var_r * (1.0 - corr**2)).clip(lower_bound=0.0).sqrt()).alias("ivol_mkt"),
        (lp - lp.rolling_max(DRAWDOWN_WINDOW, min_samples=BETA_MIN)).alias("drawdown"),
        finite(r.rolling_skew(MOMENT_WINDOW, min_samples=_min_obs(MOMENT_WINDOW))).alias("skew"),
        finite(r.rolling_kurtosis(MOMENT_WINDOW, min_samples=_min_obs(MOMENT_WINDOW))).alias("kurt"),
        finite(pl.col("_dollar").log()).alias(LIQUIDITY),
    ]
    for etf in etfs:
        cov_e, var_e = _beta(f"e_{etf}")
        feats.append(finite(cov_e / var_e).alias(etf_feature(etf)))
    names = [*CORE_FEATURES, LIQUIDITY, *(etf_feature(etf) for etf in etfs)]
    return (
        panel.with_columns(stage1)
        .with_columns(feats)
        .select("ticker", "date", "gidx", "live", *(pl.col(n).cast(pl.Float32) for n in names))
    )


def partial_sums(raw: pl.LazyFrame, names: list[str]) -> pl.LazyFrame:
    """gidx, `_n_<f>`, `_s_<f>`, `_q_<f>`: count, sum and sum of squares (f64) of each feature per date.

    Sums of disjoint sets of companies add up, so a build can sum chunk by chunk. A stable sort by date first
    makes the sums contiguous (fast) and their order fixed: reproducible to the bit on any thread count.
    """
    aggs = []
    for n in names:
        x = pl.col(n).cast(pl.Float64)
        aggs += [x.count().alias(f"_n_{n}"), x.sum().alias(f"_s_{n}"), (x * x).sum().alias(f"_q_{n}")]
    by_date = raw.select("gidx", *names).sort("gidx", maintain_order=True)
    return by_date.group_by("gidx", maintain_order=True).agg(aggs)


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


def sector_columns(sectors: list[str]) -> dict[str, str]:
    """Sector name -> its one-hot column, for the distinct sectors, sorted (names stay distinct after slugging)."""
    cols: dict[str, str] = {}
    for s in sorted(set(sectors)):
        col = sector_feature(s)
        cols[s] = col if col not in cols.values() else f"{col}_{len(cols)}"
    return cols


def sector_onehot(lf: pl.LazyFrame, sectors: pl.DataFrame, columns: dict[str, str]) -> pl.LazyFrame:
    """Add one Float32 0/1 column per sector of `columns`, from `sectors` (ticker, sector)."""
    code = dict(zip(columns, range(len(columns)), strict=True))
    of_ticker = {t: code[s] for t, s in sectors.select("ticker", "sector").iter_rows()}
    sector = pl.col("ticker").replace_strict(of_ticker, default=-1, return_dtype=pl.Int32)
    return lf.with_columns((sector == k).cast(pl.Float32).alias(col) for k, col in enumerate(columns.values()))
