from __future__ import annotations

import pytest
import torch

from dynmix.config import LossConfig
from dynmix.errors import DynMIXError
from dynmix.losses import STRATEGIES, VarianceTarget

T = 100


@pytest.fixture
def series() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    vol = 0.1 + 0.3 * torch.rand(T, generator=g)  # (T,)
    disp = 0.01 + 0.02 * torch.rand(T, generator=g)
    train = torch.arange(T) < 70
    return vol, disp, train


def test_strategies_exported() -> None:
    assert STRATEGIES == ("static", "market-vol", "dispersion")


def test_static_is_constant_gamma0(series: tuple[torch.Tensor, ...]) -> None:
    vol, disp, train = series
    vt = VarianceTarget("static", vol, disp, train)
    for t in (torch.tensor([0, 1, 2]), torch.tensor([99]), torch.arange(T)):
        out = vt(t)
        assert out.ndim == 0 and out.dtype == torch.float32 and out.item() == 1.0
    assert torch.equal(vt.schedule(), torch.ones(T))


def test_market_vol_moves_with_vol_and_is_clipped(series: tuple[torch.Tensor, ...]) -> None:
    vol, disp, train = series
    vol = vol.clone()
    vol[80], vol[81], vol[82] = 10.0, 0.001, 0.0  # extremes: clipped to hi and lo
    vt = VarianceTarget("market-vol", vol, disp, train, gamma0=1.5, lo=0.5, hi=2.0)
    ref = float(torch.quantile(vol[:70].double(), 0.5))
    assert vt.sigma_ref == pytest.approx(ref)
    assert vt(torch.tensor([80, 80])).item() == pytest.approx(1.5 * 2.0)
    assert vt(torch.tensor([81])).item() == pytest.approx(1.5 * 0.5)
    assert vt(torch.tensor([82])).item() == pytest.approx(1.5 * 0.5)
    lo_day, hi_day = int(vol[:70].argmin()), int(vol[:70].argmax())
    assert vt(torch.tensor([lo_day])).item() < vt(torch.tensor([hi_day])).item()
    # gamma of a batch uses the mean over its *unique* dates, not weighted by companies per date.
    t = torch.tensor([3, 3, 3, 3, 5])
    expect = 1.5 * min(max(((vol[3] + vol[5]) / 2).item() / ref, 0.5), 2.0)
    assert vt(t).item() == pytest.approx(expect, rel=1e-6)
    sched = vt.schedule()
    assert sched.shape == (T,) and sched.min().item() == pytest.approx(0.75) and sched.max().item() == 3.0
    torch.testing.assert_close(sched[10], vt(torch.tensor([10])))


def test_dispersion_uses_the_dispersion_series(series: tuple[torch.Tensor, ...]) -> None:
    vol, disp, train = series
    vt = VarianceTarget("dispersion", vol, disp, train)
    assert vt.sigma_ref == pytest.approx(float(torch.quantile(disp[:70].double(), 0.5)))
    day = int(disp[:70].argmax())
    assert vt(torch.tensor([day])).item() == pytest.approx(min(disp[day].item() / vt.sigma_ref, 2.0), rel=1e-6)


def test_reference_uses_training_dates_only(series: tuple[torch.Tensor, ...]) -> None:
    vol, disp, train = series
    before = VarianceTarget("market-vol", vol, disp, train)
    vol2 = vol.clone()
    vol2[~train] = 50.0  # the test period changes completely
    after = VarianceTarget("market-vol", vol2, disp, train)
    assert after.sigma_ref == before.sigma_ref
    assert after(torch.tensor([5, 6])).item() == before(torch.tensor([5, 6])).item()
    vol3 = vol.clone()
    vol3[train] *= 2.0
    assert VarianceTarget("market-vol", vol3, disp, train).sigma_ref == pytest.approx(2 * before.sigma_ref)


def test_missing_values_leave_gamma0(series: tuple[torch.Tensor, ...]) -> None:
    vol, disp, train = series
    vol = vol.clone()
    vol[:20] = float("nan")  # trailing window not yet filled
    vt = VarianceTarget("market-vol", vol, disp, train, gamma0=1.2)
    assert vt.sigma_ref == pytest.approx(float(torch.quantile(vol[20:70].double(), 0.5)))
    assert vt(torch.tensor([0, 1])).item() == pytest.approx(1.2)
    assert torch.isfinite(vt.schedule()).all()
    assert vt(torch.tensor([0, 30])).item() == vt(torch.tensor([30])).item()


def test_bad_arguments(series: tuple[torch.Tensor, ...]) -> None:
    vol, disp, train = series
    with pytest.raises(ValueError, match="static, market-vol, dispersion"):
        VarianceTarget("garch", vol, disp, train)
    with pytest.raises(ValueError, match="market_vol"):
        VarianceTarget("market-vol", vol[:50], disp, train)
    with pytest.raises(ValueError, match="bool"):
        VarianceTarget("market-vol", vol, disp, train.float())
    with pytest.raises(DynMIXError, match="no finite"):
        VarianceTarget("market-vol", torch.full((T,), float("nan")), disp, train)
    with pytest.raises(ValueError, match="date indices"):
        VarianceTarget("market-vol", vol, disp, train)(torch.tensor([], dtype=torch.long))


def test_from_config(series: tuple[torch.Tensor, ...]) -> None:
    vol, disp, train = series
    cfg = LossConfig(variance_target="dispersion", gamma0=2.0, gamma_lo=0.8, gamma_hi=1.1)
    vt = VarianceTarget.from_config(cfg, vol, disp, train)
    assert (vt.strategy, vt.gamma0, vt.lo, vt.hi) == ("dispersion", 2.0, 0.8, 1.1)
    assert VarianceTarget.from_config(cfg, vol, disp, train, strategy="static")(torch.tensor([1])).item() == 2.0
