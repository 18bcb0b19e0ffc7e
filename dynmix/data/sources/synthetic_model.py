"""The generative maths of the synthetic market: sector profiles, the regime path and the factor paths.

Letters: N companies, K sectors, T dates. The daily log return of company i (sector k) on date t is

    r[i, t] = beta_i m[t] + load_i f[k, t] + idio_i (1 + c R[t]) z[i, t] / sqrt(252)

- R[t] in {0 calm, 1 turbulent}: a two-state Markov chain (the ground truth);
- m[t]: the market factor, a small positive drift plus Gaussian noise whose volatility depends on R[t];
- f[k, t]: sector factor k, an AR(1) with its own coefficient phi_k (momentum or mean reversion), whose
  volatility vol_k (1 + sens_k R[t]) scales with the regime by the sector's own sensitivity sens_k;
- z[i, t]: Student-t noise (df 4) scaled to unit variance.

The regime market (`SynthParams.regime_sectors`) changes the sector structure with the regime: when turbulent,
sector pairs (0, 1), (2, 3), … share one factor and the market betas rise by (1 + stress_beta).

Markets built like a held-out one (off by default): `corr_pairs` sector pairs (0, 1), (2, 3), … are correlated at
all times (sector 2j+1's factor mixes in sector 2j's with correlation `pair_corr`); a volatility crash
(`crash_at`: fraction of the history where it starts) sets R[t] = 2 for `crash_days` days, where the market factor's
volatility is `crash_vol` and every regime-scaled volatility takes twice its turbulent step; `delist_share` of the
companies stop trading at a random day in the second half of the history (listings: `late_share`).

Every sector draws its own point of a shuffled grid over (beta, load, vol, idio, phi, sens), so any two
sectors differ in every dimension by at least one grid step; companies jitter a little around their sector.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

DAYS_PER_YEAR = 252


@dataclass(frozen=True)
class SynthParams:
    """Constants of the generative model (volatilities are annualised)."""

    calm_vol: float = 0.12  # market-factor volatility in the calm regime
    turbulent_vol: float = 0.34  # market-factor volatility in the turbulent regime
    p_enter: float = 0.008  # daily P(calm -> turbulent): calm spells last ~125 days
    p_leave: float = 0.04  # daily P(turbulent -> calm): turbulent spells last ~25 days
    drift: float = 0.06  # yearly log drift of the market factor
    beta: tuple[float, float] = (0.4, 1.6)  # sector grid of market betas
    load: tuple[float, float] = (0.6, 1.4)  # sector grid of sector-factor loadings
    vol: tuple[float, float] = (0.06, 0.30)  # sector grid of sector-factor volatilities
    idio: tuple[float, float] = (0.08, 0.26)  # sector grid of idiosyncratic volatilities
    phi: tuple[float, float] = (-0.35, 0.45)  # sector grid of sector-factor AR(1) coefficients
    sens: tuple[float, float] = (0.0, 2.0)  # sector grid: sector vol is x(1 + sens) when turbulent
    idio_turbulent: float = 0.4  # idiosyncratic vol is x(1 + this) when turbulent
    jitter: float = 0.12  # within-sector jitter, as a fraction of one grid step (uniform +-)
    t_df: float = 4.0  # degrees of freedom of the idiosyncratic Student-t noise
    late_share: float = 0.10  # share of tickers listed at a random later date
    missing_share: float = 0.001  # share of rows dropped at random (scattered missing days)
    # The regime market (off by default): when turbulent, sectors 2j and 2j+1 share sector 2j's factor (they move
    # together) and every market beta is x(1 + stress_beta) (correlations rise). Truth: meta's `stressed_sector`.
    regime_sectors: bool = False
    stress_beta: float = 0.5
    # Markets built like a held-out one (all off by default): correlated sector pairs, a crash, delistings.
    corr_pairs: int = 0  # sector pairs (0, 1), (2, 3), … whose factors are correlated at all times
    pair_corr: float = 0.6  # the correlation of a pair's factors (calm regime)
    crash_at: float | None = None  # start of the volatility crash, as a fraction of the history (None: no crash)
    crash_days: int = 40  # length of the crash in business days (regime 2)
    crash_vol: float = 0.80  # market-factor volatility during the crash
    delist_share: float = 0.0  # share of companies delisted at a random day in the second half of the history


@dataclass(frozen=True)
class Profiles:
    """Planted per-company parameters, each (N,), and the per-sector dynamics, each (K,)."""

    sector: np.ndarray  # (N,) int sector of each company
    beta: np.ndarray  # (N,)
    load: np.ndarray  # (N,)
    idio: np.ndarray  # (N,) annualised idiosyncratic volatility (calm regime)
    sector_vol: np.ndarray  # (K,) annualised sector-factor volatility (calm regime)
    phi: np.ndarray  # (K,)
    sens: np.ndarray  # (K,)


def _grid(lo_hi: tuple[float, float], k: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A shuffled grid of k values over [lo, hi] and its step (the midpoint and the full width when k = 1)."""
    lo, hi = lo_hi
    if k == 1:
        return np.array([(lo + hi) / 2]), hi - lo
    return rng.permutation(np.linspace(lo, hi, k)), (hi - lo) / (k - 1)


def draw_profiles(n: int, k: int, rng: np.random.Generator, p: SynthParams) -> Profiles:
    """Balanced random sector assignment, one shuffled grid point per sector, small jitter per company."""
    sector = rng.permutation(np.arange(n) % k)
    per_company = {}
    for name in ("beta", "load", "idio"):
        values, step = _grid(getattr(p, name), k, rng)
        jitter = rng.uniform(-1.0, 1.0, n) * p.jitter * step
        per_company[name] = values[sector] + jitter
    sector_vol, _ = _grid(p.vol, k, rng)
    phi, _ = _grid(p.phi, k, rng)
    sens, _ = _grid(p.sens, k, rng)
    return Profiles(sector=sector, sector_vol=sector_vol, phi=phi, sens=sens, **per_company)


def regime_path(t: int, rng: np.random.Generator, p: SynthParams) -> np.ndarray:
    """(T,) int8 Markov-switching path, 0 calm / 1 turbulent, starting calm."""
    u = rng.random(t)
    out = np.zeros(t, dtype=np.int8)
    state = 0
    for i in range(t):
        if state == 0 and u[i] < p.p_enter:
            state = 1
        elif state == 1 and u[i] < p.p_leave:
            state = 0
        out[i] = state
    return out


def market_vol(regime: np.ndarray, p: SynthParams) -> np.ndarray:
    """(T,) true annualised market-factor volatility (regime 2: the crash)."""
    return np.where(regime == 2, p.crash_vol, np.where(regime == 1, p.turbulent_vol, p.calm_vol))


def add_crash(regime: np.ndarray, p: SynthParams) -> np.ndarray:
    """(T,) the regime path with days [crash_at·T, crash_at·T + crash_days) set to 2 (the crash); unchanged when
    `crash_at` is None.
    """
    if p.crash_at is None:
        return regime
    if not 0.0 <= p.crash_at < 1.0 or p.crash_days < 1:
        raise ValueError(f"crash_at {p.crash_at}, crash_days {p.crash_days}: expected 0 <= crash_at < 1 and "
                         "crash_days >= 1")
    out = regime.copy()
    at = int(p.crash_at * regime.shape[0])
    out[at:at + p.crash_days] = 2
    return out


def correlate_pairs(f: np.ndarray, prof: Profiles, p: SynthParams) -> tuple[np.ndarray, np.ndarray]:
    """(K, T) factors where, for the first `corr_pairs` pairs (2j, 2j+1), sector 2j+1's factor becomes
    rho·(vol_2j+1 / vol_2j)·f_2j + sqrt(1 − rho²)·f_2j+1 (correlation rho, its own volatility kept in the calm
    regime), and the (K, K) mixing matrix A (new = A @ old) that maps the factors' moments the same way.
    """
    k = f.shape[0]
    a = np.eye(k)
    rho = p.pair_corr
    if not -1.0 <= rho <= 1.0:
        raise ValueError(f"pair_corr {rho}: expected a correlation in [-1, 1]")
    for j in range(min(p.corr_pairs, k // 2)):
        lead, follow = 2 * j, 2 * j + 1
        a[follow, follow] = np.sqrt(1.0 - rho**2)
        a[follow, lead] = rho * prof.sector_vol[follow] / prof.sector_vol[lead]
    return a @ f, a


def delisting_days(n: int, t: int, first: np.ndarray, rng: np.random.Generator, p: SynthParams) -> np.ndarray:
    """(N,) index one past each company's last trading day: T, or a random day in the second half of the history
    (after its listing day) for ~delist_share of them.
    """
    last = np.full(n, t, dtype=np.int64)
    n_out = min(int(round(p.delist_share * n)), n - 1)
    if n_out > 0 and t > 10:
        out = rng.choice(n, n_out, replace=False)
        last[out] = np.maximum(first[out] + 2, rng.integers(t // 2, t - 1, n_out))
    return np.minimum(last, t)


def market_factor(regime: np.ndarray, rng: np.random.Generator, p: SynthParams) -> np.ndarray:
    """(T,) daily log returns of the market factor."""
    sd = market_vol(regime, p) / np.sqrt(DAYS_PER_YEAR)
    return p.drift / DAYS_PER_YEAR + sd * rng.standard_normal(regime.shape[0])


def sector_factors(prof: Profiles, regime: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(K, T) sector-factor returns: AR(1) with coefficient phi_k, volatility scaled by the regime."""
    k, t = prof.phi.shape[0], regime.shape[0]
    sd = prof.sector_vol[:, None] * (1.0 + prof.sens[:, None] * regime[None, :]) / np.sqrt(DAYS_PER_YEAR)  # (K, T)
    shocks = sd * np.sqrt(1.0 - prof.phi[:, None] ** 2) * rng.standard_normal((k, t))  # (K, T)
    f = np.empty((k, t))
    f[:, 0] = sd[:, 0] * rng.standard_normal(k)
    for i in range(1, t):
        f[:, i] = prof.phi * f[:, i - 1] + shocks[:, i]
    return f


def sector_moments(prof: Profiles, regime: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K, T) conditional mean and variance of each sector factor's return on day t given the factors up to t−1
    and the regime of day t (the AR(1) of `sector_factors`).
    """
    sd = prof.sector_vol[:, None] * (1.0 + prof.sens[:, None] * regime[None, :]) / np.sqrt(DAYS_PER_YEAR)  # (K, T)
    mean = np.zeros_like(f)
    mean[:, 1:] = prof.phi[:, None] * f[:, :-1]
    var = sd**2 * (1.0 - prof.phi[:, None] ** 2)
    var[:, 0] = sd[:, 0] ** 2
    return mean, var


@dataclass(frozen=True)
class FactorMoments:
    """The factor model of day t's log returns given the factors up to t−1 and day t's regime (the oracle's truth).

    A company of sector s with planted (beta, load, idio) has, on day t,
        E r = beta·market_mean[t] + load·Σ_j sector_mean[t, s, j],
        r − E r = beta·market_sd[t]·z_m + load·Σ_j sector_sd[t, s, j]·z_j + idio·idio_sd[t]·z_i,
    with z_m, z_1..z_K (the sector factors' innovations) and z_i (its own, Student-t) independent, unit variance.
    """

    market_mean: np.ndarray  # (T,) per unit beta
    market_sd: np.ndarray  # (T,) per unit beta
    sector_mean: np.ndarray  # (T, K sectors, K innovations) per unit sector loading
    sector_sd: np.ndarray  # (T, K, K) per unit sector loading
    idio_sd: np.ndarray  # (T,) daily, per unit of annualised idiosyncratic volatility


def factor_moments(regime: np.ndarray, beta_scale: np.ndarray, innov_mean: np.ndarray, innov_var: np.ndarray,
                   mix: np.ndarray, p: SynthParams) -> FactorMoments:
    """The FactorMoments of a market from its (T,) regime path and beta scale, the (K, T) conditional mean and
    variance of the independent sector innovations (`sector_moments` before any mixing) and the (K, K) mixing of
    `correlate_pairs` (the identity without correlated pairs). In the regime market a turbulent day's sector s
    follows its stressed group's factor.
    """
    k, t = innov_mean.shape
    rows = np.broadcast_to(np.arange(k), (t, k)).copy()  # (T, K) the factor each sector follows
    if p.regime_sectors:
        rows[regime >= 1] = stressed_groups(k)
    coef = mix[rows]  # (T, K, K): sector s on day t = Σ_j coef[t, s, j] · innovation j
    return FactorMoments(
        market_mean=beta_scale * p.drift / DAYS_PER_YEAR,
        market_sd=beta_scale * market_vol(regime, p) / np.sqrt(DAYS_PER_YEAR),
        sector_mean=coef * innov_mean.T[:, None, :],
        sector_sd=coef * np.sqrt(innov_var).T[:, None, :],
        idio_sd=(1.0 + p.idio_turbulent * regime) / np.sqrt(DAYS_PER_YEAR),
    )


def stressed_groups(k: int) -> np.ndarray:
    """(K,) the sector whose factor each sector follows when turbulent in the regime market: pairs (0, 1), (2, 3), …
    follow their first member; an odd last sector stays alone.
    """
    return np.arange(k) - (np.arange(k) % 2)


def merge_in_stress(f: np.ndarray, regime: np.ndarray) -> np.ndarray:
    """(K, T) sector factors where, on turbulent dates, each sector takes its stressed group's factor."""
    out = f.copy()
    turbulent = regime >= 1  # turbulent or the crash
    out[:, turbulent] = f[stressed_groups(f.shape[0])][:, turbulent]
    return out


def student_t(shape: tuple[int, int], df: float, rng: np.random.Generator) -> np.ndarray:
    """Student-t draws scaled to unit variance (float32: a normal over sqrt(chi2/df))."""
    z = rng.standard_normal(shape, dtype=np.float32)
    g = rng.standard_gamma(df / 2.0, shape, dtype=np.float32)  # chi2_df / 2
    return z * np.sqrt(np.float32((df - 2.0) / 2.0) / g)  # t * sqrt((df - 2) / df)


def listing_days(n: int, t: int, rng: np.random.Generator, p: SynthParams) -> np.ndarray:
    """(N,) index of each company's first trading day: 0, or a random later day for ~late_share of them."""
    start = np.zeros(n, dtype=np.int64)
    n_late = min(int(round(p.late_share * n)), n - 1)
    if n_late > 0 and t > 10:
        late = rng.choice(n, n_late, replace=False)
        start[late] = rng.integers(max(1, t // 10), max(2, (t * 7) // 10), n_late)
    return start


def missing_rows(n: int, t: int, first: np.ndarray, rng: np.random.Generator,
                 p: SynthParams, last: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Scattered missing rows: unique (company, date) index pairs strictly after each company's listing day (and
    before its last trading day `last` − 1, when given).
    """
    pos = np.unique(rng.integers(0, n * t, int(round(p.missing_share * n * t))))
    i, d = pos // t, pos % t
    ok = d > first[i]
    if last is not None:
        ok &= d < last[i] - 1
    return i[ok], d[ok]


def business_days(start: dt.date, years: float) -> np.ndarray:
    """(T,) datetime64[D] Monday-to-Friday dates in [start, start + years)."""
    end = start + dt.timedelta(days=round(years * 365.25))
    days = np.arange(np.datetime64(start, "D"), np.datetime64(end, "D"), dtype="datetime64[D]")
    return days[np.is_busday(days)]
