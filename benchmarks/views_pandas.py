"""Reference: the views of dynmix/views (explicit features, implicit returns, market) in plain pandas.

A straightforward implementation, kept to check the polars pipeline and to time it against: each ticker is
reindexed on the date grid in a Python loop, every trailing window is a `groupby("ticker").rolling(...)`.
It reproduces dynmix.views.build.build_views (same grid, market, features, standardisation, file layout),
using only the names and window constants of dynmix.views.explicit (and the numpy factor fit of
dynmix.views.factors, which is no polars code: only its input and output go through pandas). Polars' biased
rolling skew and kurtosis are recovered from pandas' bias-corrected ones with the sample count n of each window.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dynmix.config import ViewsConfig
from dynmix.data.store import Store
from dynmix.views import explicit as ex
from dynmix.views.factors import factor_channels, statistical_factors
from dynmix.views.implicit import CLIP, MIN_SCALE_OBS
from dynmix.views.market import TRADING_DAYS, choose_market


def _finite(s: pd.Series) -> pd.Series:
    return s.where(np.isfinite(s))


def _roll(s: pd.Series, by: pd.Series, window: int, min_periods: int) -> pd.core.window.RollingGroupby:
    return s.groupby(by, sort=False).rolling(window, min_periods=min_periods)


def _flat(s: pd.Series) -> pd.Series:
    return s.reset_index(level=0, drop=True)  # drop the ticker level of a groupby-rolling result


def _scaled(ret: pd.Series, by: pd.Series, window: int) -> pd.Series:
    sd = _flat(_roll(ret, by, window, min(MIN_SCALE_OBS, window)).std())
    return _finite(ret / sd.where(sd > 0)).clip(-CLIP, CLIP)


def on_grid(prices: pd.DataFrame, grid: pd.DatetimeIndex) -> pd.DataFrame:
    """One row per (ticker, grid day) from each ticker's first to last stored grid day, with ret and lp_ff."""
    prices = prices[prices["date"].isin(grid)]
    frames = []
    for ticker, rows in prices.groupby("ticker", sort=True):
        days = grid[(grid >= rows["date"].min()) & (grid <= rows["date"].max())]
        frame = rows.drop(columns="ticker").set_index("date").reindex(days)
        frames.append(frame.rename_axis("date").reset_index().assign(ticker=ticker))
    panel = pd.concat(frames, ignore_index=True)
    lp = np.log(panel["adj_close"])
    panel["ret"] = lp.groupby(panel["ticker"], sort=False).diff()
    panel["lp_ff"] = lp.groupby(panel["ticker"], sort=False).ffill()
    panel["dollar"] = (panel["close"] * panel["volume"]).where(panel["volume"].notna())
    return panel


def market_frame(panel: pd.DataFrame, grid: pd.DatetimeIndex, equities: list[str], ticker: str | None,
                 cfg: ViewsConfig) -> pd.DataFrame:
    """date, mkt_ret, mkt_scaled, market_vol, dispersion per grid day."""
    eq = panel[panel["ticker"].isin(equities)]
    by_date = eq.groupby("date")["ret"]
    out = pd.DataFrame({"date": grid})
    out["_ew"] = by_date.mean().reindex(grid).to_numpy()
    out["_disp"] = by_date.std().reindex(grid).to_numpy()
    if ticker is not None:
        own = panel[panel["ticker"] == ticker].set_index("date")["ret"]
        out["mkt_ret"] = own.reindex(grid).to_numpy()
    else:
        out["mkt_ret"] = out["_ew"]
    w, one = cfg.market_vol_window, pd.Series(0, index=out.index)
    out["mkt_scaled"] = _scaled(out["mkt_ret"], one, cfg.vol_scale_window).to_numpy()
    vol = out["mkt_ret"].rolling(w, min_periods=max(2, w // 2)).std() * np.sqrt(TRADING_DAYS)
    out["market_vol"] = _finite(vol)
    out["dispersion"] = out["_disp"].rolling(w, min_periods=1).mean()
    return out[["date", "mkt_ret", "mkt_scaled", "market_vol", "dispersion"]]


def with_factors(market: pd.DataFrame, returns: pd.DataFrame, grid: pd.DatetimeIndex, equities: list[str],
                 cfg: ViewsConfig) -> pd.DataFrame:
    """`market` plus the statistical-factor channels of the equities' scaled returns (same numpy fit as dynmix)."""
    if cfg.factors == 0:
        return market
    wide = returns.pivot(index="date", columns="ticker", values="ret_scaled").reindex(index=grid, columns=equities)
    f = statistical_factors(wide.to_numpy(np.float32), cfg.factors, cfg.factor_window, cfg.factor_refit)
    one = pd.Series(0, index=market.index)
    scaled = {name: _scaled(pd.Series(f[:, j], index=market.index), one, cfg.vol_scale_window).to_numpy()
              for j, name in enumerate(factor_channels(cfg.factors))}
    return market.assign(**scaled)


def _pair(r: pd.Series, f: pd.Series, by: pd.Series, with_rr: bool) -> dict[str, pd.Series]:
    both = r.notna() & f.notna()
    rr, ff = r.where(both), f.where(both)
    terms = {"r": rr, "f": ff, "rf": rr * ff, "ff": ff * ff, **({"rr": rr * rr} if with_rr else {})}
    return {k: _flat(_roll(v, by, ex.BETA_WINDOW, ex.BETA_MIN).mean()) for k, v in terms.items()}


def raw_features(df: pd.DataFrame, etfs: list[str]) -> pd.DataFrame:
    """The unstandardised features (float32, NaN = not enough history) of equity rows joined with `_m`, `_e_*`."""
    by, r, lp = df["ticker"], df["ret"], df["lp_ff"]
    out = pd.DataFrame(index=df.index)
    for k in ex.MOMENTUM:
        out[f"mom_{k}"] = lp - lp.groupby(by, sort=False).shift(k)
    down = r.where(r < 0, 0.0).where(r.notna())
    for k in ex.VOLATILITY:
        m = ex._min_obs(k)
        out[f"vol_{k}"] = _flat(_roll(r, by, k, m).std())
        out[f"dvol_{k}"] = np.sqrt(_flat(_roll(down * down, by, k, m).mean()))
    p = _pair(r, df["_m"], by, with_rr=True)
    cov, var_m, var_r = p["rf"] - p["r"] * p["f"], p["ff"] - p["f"] ** 2, p["rr"] - p["r"] ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.sqrt(var_r * var_m)
        out["beta_mkt"] = _finite(cov / var_m)
        out["corr_mkt"] = _finite(corr)
        out["ivol_mkt"] = _finite(np.sqrt((var_r * (1.0 - corr**2)).clip(lower=0.0)))
        out["drawdown"] = lp - _flat(_roll(lp, by, ex.DRAWDOWN_WINDOW, ex.BETA_MIN).max())
        m = ex._min_obs(ex.MOMENT_WINDOW)
        n = _flat(_roll(r, by, ex.MOMENT_WINDOW, m).count())
        skew = _flat(_roll(r, by, ex.MOMENT_WINDOW, m).skew())  # bias-corrected G1 -> biased g1
        kurt = _flat(_roll(r, by, ex.MOMENT_WINDOW, m).kurt())  # bias-corrected G2 -> biased excess g2
        out["skew"] = _finite(skew * (n - 2) / np.sqrt(n * (n - 1)))
        out["kurt"] = _finite((kurt * (n - 2) * (n - 3) / (n - 1) - 6.0) / (n + 1))
        dollar = _flat(_roll(df["dollar"], by, ex.LIQUIDITY_WINDOW, ex.LIQUIDITY_MIN).mean())
        out[ex.LIQUIDITY] = _finite(np.log(dollar))
        for etf in etfs:
            q = _pair(r, df[f"_e_{etf}"], by, with_rr=False)
            out[ex.etf_feature(etf)] = _finite((q["rf"] - q["r"] * q["f"]) / (q["ff"] - q["f"] ** 2))
    return out.astype(np.float32)


def standardise(raw: pd.DataFrame, dates: pd.Series, core: list[str], optional: list[str]) -> pd.DataFrame:
    """Cross-sectional z-score per date (sample std), clipped to +-WINSOR; optional NaN -> 0."""
    out = pd.DataFrame(index=raw.index)
    for name in [*core, *optional]:
        x = raw[name].astype(np.float64)
        by = x.groupby(dates)
        mu, sd = by.transform("mean"), by.transform("std")
        inv = (1.0 / sd).where(sd > 1e-7 * mu.abs(), 0.0)
        z = ((x - mu) * inv).clip(-ex.WINSOR, ex.WINSOR)
        out[name] = (z.fillna(0.0) if name in optional else z).astype(np.float32)
    return out


def build_views_pandas(store: Store, out_dir: Path, cfg: ViewsConfig, max_tickers: int | None = None) -> int:
    """Write explicit.parquet, returns.parquet and market.parquet under `out_dir`; returns the equities count.

    `max_tickers`: keep only the first that many equities (by ticker) to time a subset.
    """
    meta = store.meta_for_prices()
    equities = sorted(meta.filter(meta["asset_type"] == "equity")["ticker"].to_list())[:max_tickers]
    etfs = sorted(meta.filter(meta["asset_type"] == "etf")["ticker"].to_list())
    source = choose_market(meta, set(meta["ticker"].to_list()), cfg.market_ticker)
    sectors = dict(zip(meta["ticker"].to_list(), meta["sector"].to_list(), strict=True))
    wanted = sorted({*equities, *etfs, *([source.ticker] if source.ticker else [])})
    prices = pd.read_parquet(store.prices_path, columns=["ticker", "date", "close", "adj_close", "volume"],
                             filters=[("ticker", "in", wanted)])
    prices["date"] = pd.to_datetime(prices["date"])
    grid = pd.DatetimeIndex(np.sort(prices.loc[prices["ticker"].isin(equities), "date"].unique()))
    panel = on_grid(prices, grid)
    market = market_frame(panel, grid, equities, source.ticker, cfg)
    factors = market[["date"]].assign(_m=market["mkt_ret"])
    for etf in etfs:
        own = panel[panel["ticker"] == etf].set_index("date")["ret"]
        factors[f"_e_{etf}"] = own.reindex(grid).to_numpy()
    eq = panel[panel["ticker"].isin(equities)].merge(factors, on="date", how="left")
    start = pd.Timestamp(cfg.start) if cfg.start else grid[0]
    keep = (eq["date"] >= start).to_numpy()
    raw = raw_features(eq, etfs)[keep]
    rows = eq.loc[keep, ["date", "ticker", "ret"]]
    core, optional = list(ex.CORE_FEATURES), [ex.LIQUIDITY, *(ex.etf_feature(e) for e in etfs)]
    explicit = pd.concat([rows[["date", "ticker"]], standardise(raw, rows["date"], core, optional)], axis=1)
    columns = ex.sector_columns([sectors[t] for t in equities])
    sector = rows["ticker"].map(sectors)
    for name, col in columns.items():
        explicit[col] = (sector == name).astype(np.float32)
    returns = rows.assign(ret_scaled=_scaled(eq["ret"], eq["ticker"], cfg.vol_scale_window)[keep])
    market = with_factors(market, returns, grid, equities, cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in (("explicit", explicit), ("returns", returns), ("market", market[market["date"] >= start])):
        frame = frame.assign(date=frame["date"].dt.date)
        frame.to_parquet(out_dir / f"{name}.parquet", index=False)
    return len(equities)

