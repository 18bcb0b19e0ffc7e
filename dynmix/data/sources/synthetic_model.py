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
    """(T,) true annualised market-factor volatility."""
    return np.where(regime == 1, p.turbulent_vol, p.calm_vol)


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


def stressed_groups(k: int) -> np.ndarray:
    """(K,) the sector whose factor each sector follows when turbulent in the regime market: pairs (0, 1), (2, 3), …
    follow their first member; an odd last sector stays alone.
    """
    return np.arange(k) - (np.arange(k) % 2)


def merge_in_stress(f: np.ndarray, regime: np.ndarray) -> np.ndarray:
    """(K, T) sector factors where, on turbulent dates, each sector takes its stressed group's factor."""
    out = f.copy()
    turbulent = regime == 1
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
                 p: SynthParams) -> tuple[np.ndarray, np.ndarray]:
    """Scattered missing rows: unique (company, date) index pairs strictly after each company's listing day."""
    pos = np.unique(rng.integers(0, n * t, int(round(p.missing_share * n * t))))
    i, d = pos // t, pos % t
    ok = d > first[i]
    return i[ok], d[ok]


def business_days(start: dt.date, years: float) -> np.ndarray:
    """(T,) datetime64[D] Monday-to-Friday dates in [start, start + years)."""
    end = start + dt.timedelta(days=round(years * 365.25))
    days = np.arange(np.datetime64(start, "D"), np.datetime64(end, "D"), dtype="datetime64[D]")
    return days[np.is_busday(days)]
