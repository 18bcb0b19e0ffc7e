"""The explicit (constructed) view x_E[i, t] of every equity (docs/DESIGN.md §4).

Stateless polars steps, `LazyFrame -> LazyFrame`, each feature from data up to t only:

    factor_returns   the market's and each factor ETF's daily return per grid day
    raw_features     per company trailing windows over the grid days up to t:
                     momentum 5/21/63/252 d (log price change), realised and downside volatility 21/63 d,
                     beta / correlation / idiosyncratic volatility against the market (252 d, pairwise-complete
                     rolling moments), drawdown from the 252-d high, 63-d skew and excess kurtosis,
                     liquidity (log mean dollar volume, 21 d), 252-d beta to each factor ETF
    partial_sums, cross_section_stats, standardise
                     cross-sectional z-score per date, winsorised at +-WINSOR; optional features -> 0 when null
                     (dynmix/views/crosssection.py, re-exported here)
    sector_onehot    one 0/1 column per sector ("Unknown" is a sector like any other)

A core feature without enough history is null, which masks the sample (tensors.py); optional features
(liquidity, ETF betas) never do, nor (with `[views] partial_history`) the year-long LONG_FEATURES: a young
company's row gets their cross-sectional mean and the SHORT_HISTORY flag. The cross-sectional statistics
come from the companies that have the feature, so theirs are the same numbers with or without young ones.

The build computes these features with `raw_feature_arrays` (dynmix/views/kernels.py: one compiled pass per
ticker over its rows, every window's running sums at once, the windows reset at each ticker); `raw_features`,
in polars, is its reference (tests/views/test_explicit.py: the same values to float32 rounding). Where all
returns of a window are equal the kernel's spread is exactly 0 (polars' running sums can leave a residue).
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

from dynmix.views import kernels
from dynmix.views.crosssection import WINSOR as WINSOR
from dynmix.views.crosssection import cross_section_stats as cross_section_stats
from dynmix.views.crosssection import day_scales as day_scales
from dynmix.views.crosssection import partial_sums as partial_sums
from dynmix.views.crosssection import standardise as standardise
from dynmix.views.implicit import MIN_SCALE_OBS, finite

MOMENTUM = (5, 21, 63, 252)  # days of log price change
VOLATILITY = (21, 63)  # days of realised and downside volatility
BETA_WINDOW, BETA_MIN = 252, 126  # rolling moments against the market and the factor ETFs
DRAWDOWN_WINDOW = 252
MOMENT_WINDOW = 63  # skew and kurtosis
LIQUIDITY_WINDOW, LIQUIDITY_MIN = 21, 5
LONGEST_WINDOW = max(*MOMENTUM, BETA_WINDOW, DRAWDOWN_WINDOW, MOMENT_WINDOW, LIQUIDITY_WINDOW)

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
# Core features whose window is longer than MOMENT_WINDOW: a company needs about a year for them. With
# `[views] partial_history` (the default) a row where one of them is still null is not masked: they take the
# cross-sectional mean (0 after standardising) and SHORT_HISTORY is 1 on it. The other core features need at
# most MOMENT_WINDOW days (two thirds of them observed), less than the implicit window's default 60 days.
LONG_FEATURES = ("mom_252", "beta_mkt", "corr_mkt", "ivol_mkt", "drawdown")
SHORT_HISTORY = "short_history"


def required_history(partial_history: bool) -> int:
    """Days of history a company needs before its explicit features stop masking its samples."""
    return MOMENT_WINDOW if partial_history else LONGEST_WINDOW


def short_history_flag() -> pl.Expr:
    """Float32 1 where a LONG_FEATURES value is null (its window not yet full), else 0 (of the raw features)."""
    return pl.any_horizontal([pl.col(f).is_null() for f in LONG_FEATURES]).cast(pl.Float32).alias(SHORT_HISTORY)


def etf_feature(ticker: str) -> str:
    return f"beta_etf_{ticker}"


def sector_feature(sector: str) -> str:
    return "sector_" + (re.sub(r"[^0-9a-z]+", "_", sector.lower()).strip("_") or "x")


def _min_obs(window: int) -> int:
    return max(2, (2 * window) // 3)


def factor_returns(market: pl.LazyFrame, returns: pl.LazyFrame, etfs: list[str]) -> pl.LazyFrame:
    """gidx, `_m` (market return) and `_e_<ETF>` (each factor ETF's return) per grid day (T rows)."""
    factors = market.select("gidx", pl.col("mkt_ret").alias("_m"))
    for etf in etfs:
        own = returns.filter(pl.col("live") & (pl.col("ticker") == etf))
        ret = own.select("gidx", pl.col("ret").alias(f"_e_{etf}"))
        factors = factors.join(ret, on="gidx", how="left")
    return factors


def factor_columns(factors: pl.DataFrame) -> list[pl.Expr]:
    """`_m`, `_e_<ETF>` of each row's grid day, by a gather on gidx (T-row tables: no join of the panel).

    A guard row (gidx < 0) reads day 0: never used, its return is null.
    """
    n_days = int(factors["gidx"].max() or 0) + 1  # type: ignore[arg-type]
    dense = pl.DataFrame({"gidx": range(n_days)}, schema={"gidx": pl.Int64}).join(
        factors, on="gidx", how="left", maintain_order="left")
    at = pl.col("gidx").clip(lower_bound=0)
    return [pl.lit(dense[c]).gather(at).alias(c) for c in dense.columns if c != "gidx"]


def _pair_means(r: pl.Expr, f: pl.Expr, tag: str) -> list[pl.Expr]:
    """Rolling means of r, f, r*f, f*f (and r*r) over the days where both are observed."""
    both = r.is_not_null() & f.is_not_null()
    rr, ff = pl.when(both).then(r), pl.when(both).then(f)
    terms = {"r": rr, "f": ff, "rf": rr * ff, "ff": ff * ff, **({"rr": rr * rr} if tag == "m" else {})}
    return [e.rolling_mean(BETA_WINDOW, min_samples=BETA_MIN).alias(f"_{tag}_{k}") for k, e in terms.items()]


def _cov_var(tag: str) -> list[pl.Expr]:
    """`_<tag>_cov` = cov(r, f), `_<tag>_var` = var(f) from the rolling means of `_pair_means`."""
    c = pl.col
    return [(c(f"_{tag}_rf") - c(f"_{tag}_r") * c(f"_{tag}_f")).alias(f"_{tag}_cov"),
            (c(f"_{tag}_ff") - c(f"_{tag}_f") * c(f"_{tag}_f")).alias(f"_{tag}_var")]


def dollar_volume() -> pl.Expr:
    """Dollar volume (close x volume) where the volume is known (for the liquidity feature)."""
    return pl.when(pl.col("volume").is_not_null()).then(pl.col("close") * pl.col("volume")).alias("dollar")


def _rolling(etfs: list[str]) -> list[pl.Expr]:
    """Stage 1: every trailing-window column the features read (each rolling kernel evaluated once)."""
    r, lp, k = pl.col("ret"), pl.col("lp_ff"), MOMENT_WINDOW
    out = _pair_means(r, pl.col("_m"), "m")
    for etf in etfs:
        out += _pair_means(r, pl.col(f"_e_{etf}"), f"e_{etf}")
    down = r.clip(upper_bound=0.0)  # downside deviation: negative returns, 0 on the other observed days
    out += [
        pl.col("dollar").rolling_mean(LIQUIDITY_WINDOW, min_samples=LIQUIDITY_MIN).alias("_dollar"),
        *(r.rolling_std(w, min_samples=_min_obs(w)).alias(f"vol_{w}") for w in VOLATILITY),
        *((down * down).rolling_mean(w, min_samples=_min_obs(w)).clip(lower_bound=0.0).sqrt().alias(f"dvol_{w}")
          for w in VOLATILITY),  # clip: the running sum can leave -1e-20 where the window is all 0 (NaN otherwise)
        r.rolling_skew(k, min_samples=_min_obs(k)).alias("_skew"),  # polars' kernels: a ticker's own bits
        r.rolling_kurtosis(k, min_samples=_min_obs(k)).alias("_kurt"),
        (lp - lp.rolling_max(DRAWDOWN_WINDOW, min_samples=BETA_MIN)).alias("drawdown"),
        *((lp - lp.shift(w)).alias(f"mom_{w}") for w in MOMENTUM),
    ]
    return out


def _moments(etfs: list[str]) -> list[pl.Expr]:
    """Stage 2: covariances and variances of the pairs (from the rolling means of `_pair_means`)."""
    c = pl.col
    out = [*_cov_var("m"), (c("_m_rr") - c("_m_r") * c("_m_r")).alias("_m_varr")]
    for etf in etfs:
        out += _cov_var(f"e_{etf}")
    return out


def _derived(etfs: list[str]) -> list[pl.Expr]:
    """Stage 3: the features from the stage-2 columns (a few element-wise steps each)."""
    c = pl.col
    cov, var_m, var_r = c("_m_cov"), c("_m_var"), c("_m_varr")
    out = [
        finite(cov / var_m).alias("beta_mkt"),
        finite(c("_corr")).alias("corr_mkt"),
        finite((var_r * (1.0 - c("_corr") * c("_corr"))).clip(lower_bound=0.0).sqrt()).alias("ivol_mkt"),
        finite(c("_skew")).alias("skew"),
        finite(c("_kurt")).alias("kurt"),
        finite(c("_dollar").log()).alias(LIQUIDITY),
    ]
    for etf in etfs:
        out.append(finite(c(f"_e_{etf}_cov") / c(f"_e_{etf}_var")).alias(etf_feature(etf)))
    return out


def feature_names(etfs: list[str]) -> list[str]:
    return [*CORE_FEATURES, LIQUIDITY, *(etf_feature(etf) for etf in etfs)]


def raw_features(panel: pl.LazyFrame, factors: pl.LazyFrame | pl.DataFrame, etfs: list[str],
                 keep: tuple[str, ...] = ("ticker", "date", "gidx", "live"),
                 extra: tuple[pl.Expr, ...] = ()) -> pl.LazyFrame:
    """`keep` columns, the unstandardised features (Float32; null = not enough history), then `extra`.

    `panel`: gidx, ret, lp_ff, dollar (and `keep`) laid out by `implicit.on_grid` (a ticker's rows are preceded
    by null guard rows, so these trailing windows never reach another ticker); `factors`: `factor_returns`.
    `extra`: more expressions of the panel's columns, evaluated beside the rolling windows.
    """
    factors = factors.collect() if isinstance(factors, pl.LazyFrame) else factors
    return (
        panel.with_columns(factor_columns(factors))
        .with_columns(*_rolling(etfs), *extra)
        .with_columns(_moments(etfs))
        .with_columns((pl.col("_m_cov") / (pl.col("_m_varr") * pl.col("_m_var")).sqrt()).alias("_corr"))
        .with_columns(_derived(etfs))
        .select(*keep, *(pl.col(n).cast(pl.Float32) for n in feature_names(etfs)),
                *(pl.col(e.meta.output_name()) for e in extra))
    )


def raw_feature_arrays(tid: np.ndarray, ret: np.ndarray, lp: np.ndarray, dollar: np.ndarray, fac: np.ndarray,
                       keep: np.ndarray, vol_scale_window: int) -> tuple[np.ndarray, np.ndarray]:
    """`raw_features` compiled (kernels.rolling_features), on a chunk's panel rows as float64 arrays (NaN = null).

    tid: (R,) ticker rank (each ticker's rows one block in the `on_grid` layout); ret, lp (lp_ff), dollar: (R,);
    fac: (1 + E, R) the market's and each ETF's return on the row's day. Returns, for the K rows where `keep`:
    (len(feature_names(etfs)), K) float32 features (NaN = null) and (K,) float64 the trailing std of ret over
    `vol_scale_window` days (`implicit.trailing_std`).
    """
    vol = np.array(VOLATILITY, dtype=np.int64)
    return kernels.rolling_features(  # type: ignore[no-any-return]
        tid, ret, lp, dollar, fac, keep, np.array(MOMENTUM, dtype=np.int64), vol,
        np.array([_min_obs(w) for w in VOLATILITY], dtype=np.int64), BETA_WINDOW, BETA_MIN, DRAWDOWN_WINDOW,
        BETA_MIN, MOMENT_WINDOW, _min_obs(MOMENT_WINDOW), LIQUIDITY_WINDOW, LIQUIDITY_MIN, vol_scale_window,
        min(MIN_SCALE_OBS, vol_scale_window))


def sector_columns(sectors: list[str]) -> dict[str, str]:
    """Sector name -> its one-hot column, for the distinct sectors, sorted (names stay distinct after slugging)."""
    cols: dict[str, str] = {}
    for s in sorted(set(sectors)):
        col = sector_feature(s)
        cols[s] = col if col not in cols.values() else f"{col}_{len(cols)}"
    return cols


def sector_codes(tickers: pl.Series, sectors: pl.DataFrame, columns: dict[str, str]) -> pl.Series:
    """(n,) Int32 position in `columns` of each ticker's sector (from `sectors`: ticker, sector), -1 for none."""
    code = dict(zip(columns, range(len(columns)), strict=True))
    of_ticker = {t: code[s] for t, s in sectors.select("ticker", "sector").iter_rows()}
    return tickers.replace_strict(of_ticker, default=-1, return_dtype=pl.Int32)


def sector_exprs(code: pl.Expr, columns: dict[str, str]) -> list[pl.Expr]:
    """One Float32 0/1 column per sector of `columns`, from each row's sector `code` (see `sector_codes`)."""
    return [(code == k).cast(pl.Float32).alias(col) for k, col in enumerate(columns.values())]


def sector_onehot(lf: pl.LazyFrame, sectors: pl.DataFrame, columns: dict[str, str]) -> pl.LazyFrame:
    """Add one Float32 0/1 column per sector of `columns`, from `sectors` (ticker, sector)."""
    code = dict(zip(columns, range(len(columns)), strict=True))
    of_ticker = {t: code[s] for t, s in sectors.select("ticker", "sector").iter_rows()}
    sector = pl.col("ticker").replace_strict(of_ticker, default=-1, return_dtype=pl.Int32)
    return lf.with_columns(sector_exprs(sector, columns))
