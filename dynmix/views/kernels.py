"""Compiled (numba) kernels of the views build: one pass over a chunk's rows, no temporary columns.

    cross_sums        count, sum and sum of squares per grid day of each feature (the cross-sectional sums)
    standardise_rows  z-score of each feature against its day's mean and 1 / std, clipped, as float32

Rows are a chunk's company-days in (ticker, date) order; a feature is a float32 row of an (F, R) array, NaN where
null (the raw features are finite or null: prices are finite and > 0). Sums run in row order, as `np.bincount`
did (dynmix/views/crosssection.py), so a chunk's sums have the same bits. The kernels release the GIL (`nogil`):
the build's worker thread computes the next chunk beside them. They are compiled on first use and cached beside
this file (`cache=True`), so a later process loads them instead of compiling.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def cross_sums(x: np.ndarray, g: np.ndarray, n_days: int) -> np.ndarray:
    """(F, 3, n_days) float64 count, sum and sum of squares of each non-NaN x[f, r] on day g[r] (x (F, R))."""
    n_f, n_r = x.shape
    out = np.zeros((n_f, 3, n_days))
    for f in range(n_f):
        for r in range(n_r):
            v = x[f, r]
            if v == v:  # not NaN (null)
                d = g[r]
                w = np.float64(v)
                out[f, 0, d] += 1.0
                out[f, 1, d] += w
                out[f, 2, d] += w * w
    return out


@numba.njit(cache=True, nogil=True)
def standardise_rows(x: np.ndarray, g: np.ndarray, mu: np.ndarray, inv: np.ndarray, fill: np.ndarray,
                     winsor: float, out: np.ndarray) -> np.ndarray:
    """Writes (F, R) float32 clip((x - mu[f, g]) * inv[f, g], +-winsor) into `out` and returns it; NaN (null)
    stays NaN, or 0 where fill[f].

    `out` may be `x` itself (each value is read before it is written): the build standardises in place, as fresh
    memory costs page faults. The arithmetic is float64, as polars' `standardise` (dynmix/views/crosssection.py):
    the same bits.
    """
    n_f, n_r = x.shape
    for f in range(n_f):
        for r in range(n_r):
            d = g[r]
            z = (np.float64(x[f, r]) - mu[f, d]) * inv[f, d]
            if z != z:
                out[f, r] = 0.0 if fill[f] else np.nan
            else:
                out[f, r] = np.float32(min(max(z, -winsor), winsor))
    return out


@numba.njit(nogil=True, inline="always")
def _put(out: np.ndarray, k: int, i: int, v: float) -> None:
    """out[k, i] = float32(v) where v is finite, else NaN (null)."""
    out[k, i] = np.float32(v) if v - v == 0.0 else np.float32(np.nan)


@numba.njit(nogil=True, inline="always")
def _std(s1: float, s2: float, n: float, flat: bool) -> float:
    """Sample std from the count, sum and sum of squares; exactly 0 when every value is equal (`flat`)."""
    if flat:
        return 0.0
    return np.sqrt(max((s2 - s1 * s1 / n) / (n - 1.0), 0.0))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def rolling_features(tid: np.ndarray, ret: np.ndarray, lp: np.ndarray, dollar: np.ndarray, fac: np.ndarray,
                     keep: np.ndarray, momentum: np.ndarray, vol: np.ndarray, vol_min: np.ndarray, beta_w: int,
                     beta_min: int, dd_w: int, dd_min: int, moment_w: int, moment_min: int, liq_w: int,
                     liq_min: int, sd_w: int, sd_min: int) -> tuple[np.ndarray, np.ndarray]:
    """Trailing-window features of a chunk's rows, in one pass per ticker: ((15 + E, K) float32, (K,) float64)
    for the K rows where `keep` (NaN = null; non-finite results are null).

    Rows: a chunk's panel (dynmix/views/implicit.py `on_grid` layout: each ticker's rows one block, by date, `tid`
    its rank); ret, lp (forward-filled log price), dollar: (R,) float64, NaN = null; fac: (1 + E, R) the market's
    and each factor ETF's return on the row's day. A window is the `w` rows up to t of the row's own ticker; a
    value needs at least the given count of observations in it (polars' `rolling_*(w, min_samples)`). Output
    rows, in the order of `explicit.feature_names`:
        mom_k (len(momentum))         lp[t] - lp[t - k]
        vol_w (len(vol))              sample std of ret
        dvol_w (len(vol))             root mean square of min(ret, 0)
        beta_mkt, corr_mkt, ivol_mkt  from the means of r, f, rf, ff, rr over the days both are observed
        drawdown                      lp - its trailing max (dd_w rows)
        skew, kurt                    biased sample skewness and excess kurtosis over moment_w rows
        liquidity                     log of the mean dollar volume over liq_w rows
        beta_etf (E rows)             cov(r, f) / var(f), as beta_mkt
    and, apart, the sample std of ret over sd_w rows (the implicit view's return scale; float64).
    Running sums, added and removed as the window moves (within a ticker only, so a row sees its ticker's past
    alone); a window whose observed returns are all equal has exactly 0 spread (no skew, kurtosis: null), and
    a mean over only zeros is exactly 0 (no running-sum residue).
    """
    n_rows = ret.shape[0]
    n_fac = fac.shape[0]
    n_mom, n_vol = momentum.shape[0], vol.shape[0]
    o_vol, o_dvol = n_mom, n_mom + n_vol
    o_beta = o_dvol + n_vol
    o_dd, o_skew, o_kurt, o_liq, o_etf = o_beta + 3, o_beta + 4, o_beta + 5, o_beta + 6, o_beta + 7
    n_keep = 0
    for t in range(n_rows):
        n_keep += 1 if keep[t] else 0
    out = np.empty((o_etf + n_fac - 1, n_keep), dtype=np.float32)
    sd_out = np.empty(n_keep)
    wins = np.empty(n_vol + 1, dtype=np.int64)  # return windows: vol..., sd
    wins[:n_vol] = vol
    wins[n_vol] = sd_w
    wmin = np.empty(n_vol + 1, dtype=np.int64)
    wmin[:n_vol] = vol_min
    wmin[n_vol] = sd_min
    rs = np.zeros((n_vol + 1, 3))  # count, sum, sum of squares of ret
    down = np.zeros((n_vol, 3))  # count, sum of squares of min(ret, 0), count of non-zero
    pairs = np.zeros((n_fac, 6))  # count, sum r, f, rf, ff, rr
    pw = np.zeros(5)  # count, sum of ret, ret^2, ret^3, ret^4 over moment_w
    liq = np.zeros(3)  # count, sum, count of non-zero dollar volume
    dq = np.empty(dd_w + 1, dtype=np.int64)  # drawdown: ring deque of row indices, lp decreasing
    i = 0  # output column
    start = 0
    while start < n_rows:
        end = start + 1
        while end < n_rows and tid[end] == tid[start]:
            end += 1
        rs[:] = 0.0
        down[:] = 0.0
        pairs[:] = 0.0
        pw[:] = 0.0
        liq[:] = 0.0
        head, size, lp_n = 0, 0, 0
        same, prev = 0, np.nan  # observed returns equal to the latest one, in a row
        for t in range(start, end):
            r = ret[t]
            obs = r == r
            if obs:
                same = same + 1 if r == prev else 1
                prev = r
                r2 = r * r
                d2 = r2 if r < 0.0 else 0.0
                for k in range(n_vol + 1):
                    rs[k, 0] += 1.0
                    rs[k, 1] += r
                    rs[k, 2] += r2
                for k in range(n_vol):
                    down[k, 0] += 1.0
                    down[k, 1] += d2
                    down[k, 2] += 1.0 if d2 != 0.0 else 0.0
                pw[0] += 1.0
                pw[1] += r
                pw[2] += r2
                pw[3] += r2 * r
                pw[4] += r2 * r2
                for j in range(n_fac):
                    f = fac[j, t]
                    if f == f:
                        pairs[j, 0] += 1.0
                        pairs[j, 1] += r
                        pairs[j, 2] += f
                        pairs[j, 3] += r * f
                        pairs[j, 4] += f * f
                        pairs[j, 5] += r2
            for k in range(n_vol + 1):  # the return leaving each window
                u = t - wins[k]
                if u >= start:
                    x = ret[u]
                    if x == x:
                        rs[k, 0] -= 1.0
                        rs[k, 1] -= x
                        rs[k, 2] -= x * x
                        if k < n_vol:
                            x2 = x * x if x < 0.0 else 0.0
                            down[k, 0] -= 1.0
                            down[k, 1] -= x2
                            down[k, 2] -= 1.0 if x2 != 0.0 else 0.0
            u = t - moment_w
            if u >= start:
                x = ret[u]
                if x == x:
                    x2 = x * x
                    pw[0] -= 1.0
                    pw[1] -= x
                    pw[2] -= x2
                    pw[3] -= x2 * x
                    pw[4] -= x2 * x2
            u = t - beta_w
            if u >= start:
                x = ret[u]
                if x == x:
                    for j in range(n_fac):
                        y = fac[j, u]
                        if y == y:
                            pairs[j, 0] -= 1.0
                            pairs[j, 1] -= x
                            pairs[j, 2] -= y
                            pairs[j, 3] -= x * y
                            pairs[j, 4] -= y * y
                            pairs[j, 5] -= x * x
            p = lp[t]  # drawdown: the deque of the trailing max
            u = t - dd_w
            if u >= start and lp[u] == lp[u]:
                lp_n -= 1
            while size > 0 and dq[head] <= u:
                head = (head + 1) % (dd_w + 1)
                size -= 1
            if p == p:
                lp_n += 1
                while size > 0 and lp[dq[(head + size - 1) % (dd_w + 1)]] <= p:
                    size -= 1
                dq[(head + size) % (dd_w + 1)] = t
                size += 1
            dv = dollar[t]  # liquidity
            if dv == dv:
                liq[0] += 1.0
                liq[1] += dv
                liq[2] += 1.0 if dv != 0.0 else 0.0
            u = t - liq_w
            if u >= start:
                x = dollar[u]
                if x == x:
                    liq[0] -= 1.0
                    liq[1] -= x
                    liq[2] -= 1.0 if x != 0.0 else 0.0
            if not keep[t]:
                continue
            nan = np.nan
            for k in range(n_mom):
                u = t - momentum[k]
                _put(out, k, i, p - lp[u] if u >= start else nan)
            for k in range(n_vol + 1):
                n = rs[k, 0]
                v = _std(rs[k, 1], rs[k, 2], n, same >= n) if n >= wmin[k] and n >= 2.0 else nan
                if k < n_vol:
                    _put(out, o_vol + k, i, v)
                    n = down[k, 0]
                    dv2 = down[k, 1] / n if down[k, 2] > 0.0 else 0.0
                    _put(out, o_dvol + k, i, np.sqrt(max(dv2, 0.0)) if n >= vol_min[k] else nan)
                else:
                    sd_out[i] = v
            for j in range(n_fac):
                n = pairs[j, 0]
                beta, corr, ivol = nan, nan, nan
                if n >= beta_min:
                    a = 1.0 / n
                    mr, mf = pairs[j, 1] * a, pairs[j, 2] * a
                    cov = pairs[j, 3] * a - mr * mf
                    var = pairs[j, 4] * a - mf * mf
                    beta = cov / var
                    if j == 0:
                        varr = pairs[j, 5] * a - mr * mr
                        corr = cov / np.sqrt(varr * var)
                        ivol = np.sqrt(max(varr * (1.0 - corr * corr), 0.0)) if corr == corr else nan
                if j == 0:
                    _put(out, o_beta, i, beta)
                    _put(out, o_beta + 1, i, corr)
                    _put(out, o_beta + 2, i, ivol)
                else:
                    _put(out, o_etf + j - 1, i, beta)
            _put(out, o_dd, i, p - lp[dq[head]] if p == p and lp_n >= dd_min else nan)
            n = pw[0]
            skew, kurt = nan, nan
            if n >= moment_min and same < n:  # equal values: no spread, no skew (null)
                a = 1.0 / n
                m, e2, e3 = pw[1] * a, pw[2] * a, pw[3] * a
                mm = m * m
                m2 = e2 - mm
                m3 = e3 - 3.0 * m * e2 + 2.0 * mm * m
                m4 = pw[4] * a - 4.0 * m * e3 + 6.0 * mm * e2 - 3.0 * mm * mm
                skew = m3 / (m2 * np.sqrt(m2))
                kurt = m4 / (m2 * m2) - 3.0
            _put(out, o_skew, i, skew)
            _put(out, o_kurt, i, kurt)
            mean_dv = liq[1] / liq[0] if liq[2] > 0.0 else 0.0
            _put(out, o_liq, i, np.log(mean_dv) if liq[0] >= liq_min else nan)
            i += 1
        start = end
    return out, sd_out


@numba.njit(nogil=True, inline="always")
def _run_end(tid: np.ndarray, s: int) -> int:
    """One past the last row of the ticker whose rows start at s (rows sorted by ticker)."""
    e = s + 1
    while e < tid.shape[0] and tid[e] == tid[s]:
        e += 1
    return e


@numba.njit(cache=True, nogil=True)
def grid_rows(tid: np.ndarray, g: np.ndarray, close: np.ndarray, adj: np.ndarray,
              volume: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A chunk's stored rows on the grid: (tid, gidx, ret, lp_ff, dollar) with one row per (ticker, grid day) from
    each ticker's first stored day to its last (dynmix/views/implicit.py `on_grid` + `add_returns`, without the
    guard rows: the compiled windows restart at each ticker).

    Input: the stored rows sorted by ticker then grid day, unique (`implicit.stored_rows`): tid (ticker rank), g
    (grid day), close, adj_close, volume (NaN = null). Output, (R,) each: tid, gidx (int32), ret = log adj_close
    minus the previous grid day's (NaN around a missing day), lp_ff = the last log adj_close known at t, dollar =
    close x volume where the volume is known.
    """
    n = tid.shape[0]
    total = 0
    s = 0
    while s < n:
        e = _run_end(tid, s)
        total += g[e - 1] - g[s] + 1
        s = e
    out_tid = np.empty(total, dtype=np.int32)
    out_g = np.empty(total, dtype=np.int32)
    ret = np.full(total, np.nan)
    lp_ff = np.empty(total)
    dollar = np.full(total, np.nan)
    k = 0
    s = 0
    while s < n:
        e = _run_end(tid, s)
        prev, last = np.nan, np.nan
        r = s
        for d in range(g[s], g[e - 1] + 1):
            out_tid[k] = tid[s]
            out_g[k] = d
            if g[r] == d:
                lp = np.log(adj[r])
                ret[k] = lp - prev
                prev = lp
                last = lp
                v = volume[r]
                if v == v:
                    dollar[k] = close[r] * v
                r += 1
            else:
                prev = np.nan
            lp_ff[k] = last
            k += 1
        s = e
    return out_tid, out_g, ret, lp_ff, dollar
