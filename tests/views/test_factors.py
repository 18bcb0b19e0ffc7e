"""Statistical factors of the implicit view (dynmix.views.factors): planted groups, no look-ahead, continuity."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from dynmix.views.factors import statistical_factors

FIT, REFIT = 200, 50


def _grouped(n: int = 60, groups: int = 3, t: int = 700, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T, N) returns of `groups` planted groups (a group factor each plus noise), the labels (N,), the factors."""
    rng = np.random.default_rng(seed)
    label = np.arange(n) % groups
    f = rng.standard_normal((t, groups))  # (T, G)
    x = f[:, label] + 1.5 * rng.standard_normal((t, n))  # (T, N)
    x[rng.random((t, n)) < 0.02] = np.nan  # scattered missing days
    x[: t // 2, 0] = np.nan  # a late listing
    return x.astype(np.float32), label, f


def test_company_covariances_with_the_factors_recover_planted_groups() -> None:
    x, label, _ = _grouped()
    f = statistical_factors(x, k=3, fit_window=FIT, refit=REFIT)
    assert f.shape == (700, 3) and np.isnan(f[:FIT]).all() and np.isfinite(f[FIT:]).all()
    cov = np.nan_to_num(x[FIT:]).T @ f[FIT:] / (700 - FIT)  # (N, K) each company's covariance with each factor
    groups = KMeans(3, n_init=10, random_state=0).fit_predict(cov)
    assert adjusted_rand_score(label, groups) == 1.0
    own = np.abs([np.corrcoef(np.nan_to_num(x[FIT:, label == g].mean(axis=1)), f[FIT:, j])[0, 1]
                  for g in range(3) for j in range(3)])
    assert own.reshape(3, 3).max(axis=1).min() > 0.5  # each group's mean return is carried by some factor


def test_the_past_does_not_depend_on_the_future() -> None:
    x, _, _ = _grouped()
    cut = 430  # inside a refit period
    y = x.copy()
    y[cut:] = np.random.default_rng(1).standard_normal(y[cut:].shape)
    a = statistical_factors(x, k=3, fit_window=FIT, refit=REFIT)
    b = statistical_factors(y, k=3, fit_window=FIT, refit=REFIT)
    assert np.array_equal(a[:cut], b[:cut], equal_nan=True)
    assert not np.allclose(a[cut:], b[cut:])


def test_a_factor_keeps_its_meaning_across_refits() -> None:
    """Without the Procrustes alignment a refit may swap or flip the components; with it, the factor that carries
    a planted group in the first fit period carries it, with the same sign, in every later period."""
    x, _, f_true = _grouped(t=1200, seed=3)
    f = statistical_factors(x, k=3, fit_window=FIT, refit=REFIT)
    periods = range(FIT, 1200, REFIT)
    corr = np.array([[[np.corrcoef(f[s:s + REFIT, j], f_true[s:s + REFIT, g])[0, 1] for g in range(3)]
                      for j in range(3)] for s in periods])  # (periods, K, G)
    first = corr[0]
    # the same signed loading pattern in every period as in the first (up to estimation noise)
    assert min(float(np.corrcoef(c.ravel(), first.ravel())[0, 1]) for c in corr) > 0.8


def test_only_the_components_that_stand_out_of_noise_are_kept() -> None:
    x, _, _ = _grouped(n=4, groups=2)
    f = statistical_factors(x, k=5, fit_window=FIT, refit=REFIT)
    assert f.shape == (700, 5)
    # 5 asked, 4 companies in 2 planted groups: the 2 group components are kept (both the half-the-companies cap and
    # the noise edge allow 2 here), the other columns carry no return (a rotation may mix zeros in, not out)
    assert np.linalg.matrix_rank(np.nan_to_num(f[FIT:]), tol=1e-6) == 2


@pytest.mark.parametrize(("shape", "kwargs"), [((10,), {"k": 2}), ((300, 5), {"k": 0}),
                                                ((300, 5), {"k": 2, "min_share": 0.0})])
def test_bad_arguments_raise(shape: tuple[int, ...], kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="statistical_factors"):
        statistical_factors(np.zeros(shape, dtype=np.float32), **kwargs)  # type: ignore[arg-type]
