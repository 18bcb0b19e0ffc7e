"""The synthetic market: a seeded price table with planted sectors and volatility regimes (docs/DESIGN.md §3).

`generate_market` draws the market in blocks of companies (vectorised over dates, Python loops only over
blocks and over T for the recursions) and builds the long price table from flat numpy arrays; the model
itself lives in `synthetic_model`. `write_market` replaces a whole store with it: prices, metadata,
manifest and the ground truth (`truth`: date, regime, market_vol, market_return; `true_variance`: date, ticker,
variance = E[r²] of each company's daily log return given the day before and the day's regime, where the market
has at most TRUE_VARIANCE_CELLS rows; `true_factors`: the factor model of those log returns, see
`synthetic_model.FactorMoments`).

Letters: N companies, K sectors, T dates, b companies in one block.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from dynmix import host
from dynmix.data.schema import PRICE_SCHEMA, validate_meta
from dynmix.data.sources import synthetic_model as sm
from dynmix.data.store import MANIFEST_SCHEMA, Store, utcnow
from dynmix.errors import DynMIXError
from dynmix.io import write_parquet

SOURCE = "synthetic"
INDEX_TICKER = "^MKT"
DEFAULT_START = dt.date(2000, 1, 3)
MAX_CELLS = 150_000_000  # rows a market may have (20,000 x 25 years is 130 M), if the memory allows (BYTES_PER_ROW)
BYTES_PER_ROW = 100  # peak memory per row while generating and writing (5,000 x 25 years: ~3.5 GB for ~32 M rows)
TRUE_VARIANCE_CELLS = 10_000_000  # larger markets store no per-company true variance (it would double the store)
BLOCK_CELLS = 500_000  # (ticker, date) cells per block: temporaries of ~4 MB stay in cache (2 M cells: +40 % CPU)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SyntheticMarket:
    """A generated market: canonical prices, metadata with the planted profiles, and the regime truth."""

    prices: pl.DataFrame  # canonical long table, companies then the "^MKT" index, sorted by (ticker, date)
    meta: pl.DataFrame  # ticker, name, sector, industry, asset_type + planted beta, loads, vols, listed
    truth: pl.DataFrame  # date, regime (0 calm / 1 turbulent), market_vol (true annualised vol), market_return
    true_variance: pl.DataFrame | None  # date, ticker, variance: E[r²] given day t−1 and day t's regime
    true_factors: pl.DataFrame  # date, sector, factor, mean, loading: the factor model of the day's log returns
    description: str  # the arguments that reproduce it, e.g. "seed=1 tickers=40 sectors=4 years=2 start=…"


def check_arguments(n_tickers: int, n_sectors: int, years: float) -> None:
    if n_sectors < 1:
        raise DynMIXError(f"--sectors {n_sectors}: expected at least 1 sector")
    if n_tickers < 2 * n_sectors:
        raise DynMIXError(
            f"--tickers {n_tickers} with --sectors {n_sectors}: expected at least 2 tickers per sector "
            f"(tickers >= {2 * n_sectors})"
        )
    if n_tickers > 99_999:
        raise DynMIXError(f"--tickers {n_tickers}: expected at most 99,999 tickers")
    if not years > 0:
        raise DynMIXError(f"--years {years}: expected a positive number of years")


def generate_market(
    n_tickers: int,
    n_sectors: int,
    years: float,
    seed: int,
    start: dt.date = DEFAULT_START,
    *,
    params: sm.SynthParams | None = None,
    on_progress: Progress | None = None,
) -> SyntheticMarket:
    """Draw a seeded market: same arguments, same market, to the bit."""
    check_arguments(n_tickers, n_sectors, years)
    if seed < 0:
        raise DynMIXError(f"--seed {seed}: expected a seed >= 0")
    p = params or sm.SynthParams()
    days = sm.business_days(start, years)
    n, t = n_tickers, days.shape[0]
    if t < 2:
        raise DynMIXError(f"--years {years} from {start}: expected at least 2 business days")
    need, free = n * t * BYTES_PER_ROW, host.available_bytes()
    if n * t > MAX_CELLS or need > free:
        raise DynMIXError(f"--tickers {n} x --years {years:g} is {n * t:,} rows: expected at most {MAX_CELLS:,} and "
                          f"about {BYTES_PER_ROW} bytes of memory per row while writing ({need / 2**30:.1f} GiB; "
                          f"{free / 2**30:.1f} GiB available); use fewer tickers or years")
    rng = np.random.default_rng(seed)
    prof = sm.draw_profiles(n, n_sectors, rng, p)
    regime = sm.add_crash(sm.regime_path(t, rng, p), p)  # (T,) 0 calm, 1 turbulent, 2 the crash
    m = sm.market_factor(regime, rng, p)  # (T,)
    f = sm.sector_factors(prof, regime, rng)  # (K, T)
    f_mean, f_var = sm.sector_moments(prof, regime, f)  # (K, T) each
    innov_mean, innov_var = f_mean, f_var  # (K, T) of the independent sector innovations, before any mixing
    mix = np.eye(n_sectors)
    if p.corr_pairs > 0:  # correlated sector pairs at all times; the moments mix the same way
        f, mix = sm.correlate_pairs(f, prof, p)
        f_mean, f_var = mix @ f_mean, (mix**2) @ f_var  # independent innovations: variances add with a²
    beta_scale = np.ones(t)  # (T,)
    if p.regime_sectors:  # the regime market: paired sectors move together and betas rise when turbulent
        f, f_mean, f_var = (sm.merge_in_stress(x, regime) for x in (f, f_mean, f_var))
        beta_scale = 1.0 + p.stress_beta * regime
    m_var = (sm.market_vol(regime, p) * beta_scale) ** 2 / sm.DAYS_PER_YEAR  # (T,) of beta_scale·m, per unit beta
    true_var = np.empty(0, dtype=np.float32)
    first = sm.listing_days(n, t, rng, p)  # (N,)
    last = sm.delisting_days(n, t, first, rng, p) if p.delist_share > 0 else np.full(n, t, dtype=np.int64)  # (N,)
    drop_i, drop_d = sm.missing_rows(n, t, first, rng, p, last)
    base_volume = np.exp(rng.normal(np.log(1e6), 1.0, n))  # (N,) typical daily volume

    counts = last - first - np.bincount(drop_i, minlength=n)  # (N,) rows kept per company
    offsets = np.concatenate([[0], np.cumsum(counts)])
    rows = int(offsets[-1]) + t  # companies, then the index
    cols = {c: np.empty(rows) for c in ("open", "high", "low", "close", "volume")}
    date_idx = np.empty(rows, dtype=np.int32)
    with_true_var = n * t <= TRUE_VARIANCE_CELLS
    if with_true_var:
        true_var = np.empty(int(offsets[-1]), dtype=np.float32)
    ret_sum, alive_n, vol_sum = np.zeros(t), np.zeros(t), np.zeros(t)  # (T,) for the index

    idio_scale = 1.0 + p.idio_turbulent * regime  # (T,)
    factors = sm.factor_moments(regime, beta_scale, innov_mean, innov_var, mix, p)
    volume_scale = 1.0 + 0.8 * regime  # (T,) more trading when turbulent
    tt = np.arange(t)
    block = max(1, BLOCK_CELLS // t)
    for i0 in range(0, n, block):
        i1 = min(n, i0 + block)
        b = i1 - i0
        alive = (tt[None, :] >= first[i0:i1, None]) & (tt[None, :] < last[i0:i1, None])  # (b, T) listed
        keep = alive.copy()
        sel = (drop_i >= i0) & (drop_i < i1)
        keep[drop_i[sel] - i0, drop_d[sel]] = False
        sd = (prof.idio[i0:i1, None] / np.sqrt(sm.DAYS_PER_YEAR)) * idio_scale[None, :]  # (b, T) idio daily sd
        r = prof.beta[i0:i1, None] * (m * beta_scale)[None, :] + prof.load[i0:i1, None] * f[prof.sector[i0:i1]]
        r += sd * sm.student_t((b, t), p.t_df, rng)
        if with_true_var:  # E[r²] = E[r]² + Var r given the day before and the day's regime
            beta, load, sec = prof.beta[i0:i1, None], prof.load[i0:i1, None], prof.sector[i0:i1]
            cond_mean = beta * beta_scale[None, :] * p.drift / sm.DAYS_PER_YEAR + load * f_mean[sec]
            second = cond_mean**2 + beta**2 * m_var[None, :] + load**2 * f_var[sec] + sd**2
            true_var[int(offsets[i0]):int(offsets[i1])] = second[keep]
        r[~alive] = 0.0
        log_close = np.cumsum(r, axis=1)
        close = 100.0 * np.exp(log_close)
        prev = np.empty_like(close)  # yesterday's close: 100 up to the listing day (r = 0 before it)
        prev[:, 0] = 100.0
        prev[:, 1:] = close[:, :-1]
        opn = prev * np.exp(0.3 * sd * rng.standard_normal((b, t), dtype=np.float32))
        high = np.maximum(opn, close) * np.exp(0.5 * sd * np.abs(rng.standard_normal((b, t), dtype=np.float32)))
        low = np.minimum(opn, close) * np.exp(-0.5 * sd * np.abs(rng.standard_normal((b, t), dtype=np.float32)))
        noise = np.exp(0.5 * rng.standard_normal((b, t), dtype=np.float32))
        volume = np.round(base_volume[i0:i1, None] * volume_scale[None, :] * noise) + 1.0
        ret_sum += np.expm1(r).sum(axis=0)  # r = 0 before listing
        alive_n += alive.sum(axis=0)
        vol_sum += (volume * alive).sum(axis=0)
        out = slice(int(offsets[i0]), int(offsets[i1]))
        for name, arr in (("open", opn), ("high", high), ("low", low), ("close", close), ("volume", volume)):
            cols[name][out] = arr[keep]
        date_idx[out] = np.broadcast_to(tt, (b, t))[keep]
        if on_progress is not None:
            on_progress(i1, n)

    _index_rows(cols, date_idx, int(offsets[-1]), ret_sum / alive_n, vol_sum, regime, rng, p)
    names = ticker_names(n)
    codes = pl.Series("codes", np.repeat(np.arange(n + 1, dtype=np.int32), np.append(counts, t)), dtype=pl.UInt32)
    epoch_days = days.astype(np.int64).astype(np.int32)  # days since 1970-01-01
    prices = pl.DataFrame({
        "date": pl.Series("date", epoch_days[date_idx]).cast(pl.Date),
        "ticker": pl.Series("ticker", [*names, INDEX_TICKER], dtype=pl.String).gather(codes),
        "open": cols["open"], "high": cols["high"], "low": cols["low"], "close": cols["close"],
        "adj_close": cols["close"], "volume": cols["volume"],
    }).select([pl.col(c).cast(dt_) for c, dt_ in PRICE_SCHEMA.items()])
    description = f"seed={seed} tickers={n} sectors={n_sectors} years={years:g} start={start.isoformat()}" + (
        " regime-sectors" if p.regime_sectors else "") + (
        f" corr-pairs={p.corr_pairs}" if p.corr_pairs else "") + (
        f" crash-at={p.crash_at:g}" if p.crash_at is not None else "") + (
        f" delist-share={p.delist_share:g}" if p.delist_share else "")
    return SyntheticMarket(
        prices=prices,
        meta=_meta(names, prof, days[first], n_sectors, stressed=p.regime_sectors),
        truth=pl.DataFrame({
            "date": pl.Series("date", epoch_days).cast(pl.Date),
            "regime": pl.Series("regime", regime, dtype=pl.Int32),
            "market_vol": sm.market_vol(regime, p),
            "market_return": m,  # the market factor's daily log return (company betas are planted on it)
        }),
        true_variance=pl.DataFrame({
            "date": pl.Series("date", epoch_days[date_idx[: int(offsets[-1])]]).cast(pl.Date),
            "ticker": pl.Series("ticker", names, dtype=pl.String).gather(codes[: int(offsets[-1])]),
            "variance": true_var,
        }) if with_true_var else None,
        true_factors=_factor_table(factors, epoch_days, sector_names(n_sectors)),
        description=description,
    )


def _factor_table(fm: sm.FactorMoments, epoch_days: np.ndarray, sectors: list[str]) -> pl.DataFrame:
    """The long `true_factors` table of `fm`: rows (date, sector, factor) with a non-zero loading or mean."""
    t, k = fm.sector_mean.shape[:2]
    factor_names = ["market", *sectors, "idio"]
    mean = np.zeros((t, k, k + 2))  # (T, K sectors, market + K innovations + idio)
    loading = np.zeros((t, k, k + 2))
    mean[:, :, 0], loading[:, :, 0] = fm.market_mean[:, None], fm.market_sd[:, None]
    mean[:, :, 1:-1], loading[:, :, 1:-1] = fm.sector_mean, fm.sector_sd
    loading[:, :, -1] = fm.idio_sd[:, None]
    ti, si, fi = np.nonzero((loading != 0) | (mean != 0))
    return pl.DataFrame({
        "date": pl.Series("date", epoch_days[ti]).cast(pl.Date),
        "sector": pl.Series("sector", np.array(sectors, dtype=object)[si].tolist(), dtype=pl.String),
        "factor": pl.Series("factor", np.array(factor_names, dtype=object)[fi].tolist(), dtype=pl.String),
        "mean": mean[ti, si, fi],
        "loading": loading[ti, si, fi],
    })


def _index_rows(cols: dict[str, np.ndarray], date_idx: np.ndarray, at: int, ret: np.ndarray, volume: np.ndarray,
                regime: np.ndarray, rng: np.random.Generator, p: sm.SynthParams) -> None:
    """Fill rows [at, at + T) with the equal-weighted (daily rebalanced) index of the listed companies."""
    t = ret.shape[0]
    close = 100.0 * np.cumprod(1.0 + ret)  # (T,)
    prev = np.concatenate([[100.0], close[:-1]])
    sd = sm.market_vol(regime, p) / np.sqrt(sm.DAYS_PER_YEAR)  # (T,)
    opn = prev * np.exp(0.2 * sd * rng.standard_normal(t))
    cols["open"][at:] = opn
    cols["close"][at:] = close
    cols["high"][at:] = np.maximum(opn, close) * np.exp(0.4 * sd * np.abs(rng.standard_normal(t)))
    cols["low"][at:] = np.minimum(opn, close) * np.exp(-0.4 * sd * np.abs(rng.standard_normal(t)))
    cols["volume"][at:] = volume
    date_idx[at:] = np.arange(t)


def ticker_names(n: int) -> list[str]:
    width = max(4, len(str(n)))
    return [f"S{i:0{width}d}" for i in range(1, n + 1)]


def sector_names(k: int) -> list[str]:
    width = max(2, len(str(k - 1)))
    return [f"Sector {i:0{width}d}" for i in range(k)]


def _meta(names: list[str], prof: sm.Profiles, listed: np.ndarray, k: int, *, stressed: bool = False
          ) -> pl.DataFrame:
    """One row per company with its planted profile (and, in the regime market, `stressed_sector`: the sector
    whose factor it follows when turbulent), then the index.
    """
    sec = prof.sector
    companies = pl.DataFrame({
        "ticker": names,
        "name": [f"Synthetic company {tk[1:]}" for tk in names],
        "sector": np.array(sector_names(k), dtype=object)[sec].tolist(),
        "industry": "Synthetic",
        "asset_type": "equity",
        "beta": prof.beta,
        "sector_loading": prof.load,
        "sector_vol": prof.sector_vol[sec],
        "sector_phi": prof.phi[sec],
        "turbulent_sensitivity": prof.sens[sec],
        "idio_vol": prof.idio,
        "listed": pl.Series("listed", listed.astype(np.int64).astype(np.int32)).cast(pl.Date),
    })
    if stressed:
        names_k = np.array(sector_names(k), dtype=object)
        companies = companies.with_columns(pl.Series("stressed_sector", names_k[sm.stressed_groups(k)[sec]].tolist()))
    index = pl.DataFrame({"ticker": [INDEX_TICKER], "name": ["Synthetic equal-weighted index"],
                          "sector": ["Unknown"], "industry": ["Index"], "asset_type": ["index"]})
    return pl.concat([companies, index], how="diagonal")


def foreign_sources(store: Store) -> list[str]:
    """Sources other than 'synthetic' in the store ('unknown' for prices without a manifest)."""
    manifest = store.read_manifest()
    found = sorted(set(manifest["source"].drop_nulls().to_list()) - {SOURCE})
    if not found and store.exists() and manifest.height == 0:
        found = ["unknown"]
    return found


def check_writable(store: Store, replace: bool = False) -> None:
    """Raise DynMIXError if the store holds non-synthetic data and `replace` is False."""
    foreign = foreign_sources(store)
    if foreign and not replace:
        raise DynMIXError(
            f"{store.root} holds data from {', '.join(foreign)}: a synthetic market replaces the whole store. "
            "Expected an empty or synthetic store; pass --replace to overwrite it, or use another --home."
        )


def manifest_for(market: SyntheticMarket) -> pl.DataFrame:
    cov = market.prices.group_by("ticker").agg(
        pl.col("date").min().alias("first_date"), pl.col("date").max().alias("last_date"),
        pl.len().cast(pl.Int64).alias("rows"),
    )
    return cov.with_columns(
        pl.lit(SOURCE).alias("source"), pl.lit(utcnow()).alias("last_refresh"),
        pl.lit("ok").alias("status"), pl.lit(market.description).alias("message"),
    ).select([pl.col(c).cast(d) for c, d in MANIFEST_SCHEMA.items()]).sort("ticker")


def write_market(store: Store, market: SyntheticMarket, replace: bool = False,
                 on_step: Callable[[str], None] | None = None) -> None:
    """Replace the whole store (prices, meta, manifest, truth) with `market`.

    A store holding other sources' data is kept unless `replace` is True (raises DynMIXError).
    """
    check_writable(store, replace)
    step = on_step or (lambda _msg: None)
    step("validating and writing prices")
    with store.writing_prices(sorted(market.prices["ticker"].unique().to_list())):  # marked until the manifest
        store.write_prices(market.prices)
    step("writing metadata, manifest and truth")
    write_parquet(validate_meta(market.meta), store.meta_path)
    write_parquet(manifest_for(market), store.manifest_path)
    store.write_extra("truth", market.truth)
    store.write_extra("true_factors", market.true_factors)
    if market.true_variance is not None:
        store.write_extra("true_variance", market.true_variance)
    elif store.extra_path("true_variance").exists():  # a previous market's: it would not describe this one
        store.extra_path("true_variance").unlink()
