"""The pair objectives on the same views and encoders: each trains, `train` selects them by `[loss] objective`, and
the batch's variance target gamma_b reaches VICReg's loss and its gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from itertools import islice

import pytest
import torch

from dynmix.config import OBJECTIVES, DynMIXConfig
from dynmix.errors import DynMIXError
from dynmix.losses import vicreg_loss
from dynmix.losses.variance_target import VarianceTarget
from dynmix.models.dynmix import DynMIX
from dynmix.runs.device import DistContext
from dynmix.runs.models import load_run
from dynmix.runs.split import time_split
from dynmix.train import train
from dynmix.train.ema import EMA
from dynmix.train.loop import Engine
from dynmix.train.pair import PAIR_OBJECTIVES, VICRegObjective, pair_objective
from dynmix.train.schedule import make_optimizer
from dynmix.views.tensors import DateBlockSampler, ViewTensors


def _engine(vt: ViewTensors, cfg: DynMIXConfig, objective: str) -> Engine:
    cfg = replace(cfg, loss=replace(cfg.loss, objective=objective))
    split = time_split(vt, cfg.train)
    sampler = DateBlockSampler(vt.valid(), split.train_mask, cfg.train.dates_per_batch, seed=0)
    torch.manual_seed(0)
    model = DynMIX(cfg.model, len(vt.feature_names), len(vt.channels), vt.window, predictor=objective == "byol")
    total = cfg.train.epochs * len(sampler)
    opt, sched = make_optimizer(model, cfg.train, total)
    ema = EMA(model, cfg.train.ema_momentum, total)
    target = VarianceTarget.from_config(cfg.loss, vt.market_vol, vt.dispersion, split.train_mask)
    obj = pair_objective(objective)(model, cfg.loss, vt, target, DistContext(0, 1, vt.device), ema=ema)
    return Engine(obj, sampler, opt, sched, ema=ema)


def test_every_configurable_objective_is_registered() -> None:
    assert tuple(PAIR_OBJECTIVES) == OBJECTIVES
    with pytest.raises(DynMIXError, match="unknown objective 'simclr'"):
        pair_objective("simclr")


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_each_objective_trains_its_encoders(objective: str, views: ViewTensors,
                                           tiny_cfg: Callable[..., DynMIXConfig]) -> None:
    eng = _engine(views, tiny_cfg(), objective)
    before = [p.detach().clone() for p in eng.objective.model.parameters()]
    losses = []
    for i, t in islice(eng.sampler.epoch(0), 3):
        out = eng.train_step((i, t), stats=True)
        losses.append(float(out["loss"]))
        assert not out["loss"].requires_grad and out["gamma"].ndim == 0
    assert all(torch.isfinite(torch.tensor(losses)))
    moved = [not torch.equal(a, b) for a, b in zip(before, eng.objective.model.parameters(), strict=True)]
    assert sum(moved) >= len(moved) - 2  # every encoder and projector (and predictor) layer learns


def test_byol_needs_the_ema_and_a_predictor(views: ViewTensors, tiny_cfg: Callable[..., DynMIXConfig]) -> None:
    cfg = tiny_cfg()
    model = DynMIX(cfg.model, len(views.feature_names), len(views.channels), views.window)
    split = time_split(views, cfg.train)
    target = VarianceTarget.from_config(cfg.loss, views.market_vol, views.dispersion, split.train_mask)
    cls = pair_objective("byol")
    with pytest.raises(DynMIXError, match="EMA"):
        cls(model, cfg.loss, views, target, DistContext(0, 1, views.device))
    with pytest.raises(DynMIXError, match="predictor=True"):
        cls(model, cfg.loss, views, target, DistContext(0, 1, views.device), ema=EMA(model))


def test_gamma_of_the_batch_dates_reaches_the_loss_and_the_gradients(
        views: ViewTensors, tiny_cfg: Callable[..., DynMIXConfig]) -> None:
    """gamma_b = gamma0 * clip(mean market vol of the batch's dates / training median): the VICReg objective's loss
    is vicreg_loss at that gamma, and a static target at gamma0 gives other gradients once some projected
    dimensions' std lies between gamma0 and gamma_b.
    """
    cfg = tiny_cfg()
    split = time_split(views, cfg.train)
    sampler = DateBlockSampler(views.valid(), split.train_mask, cfg.train.dates_per_batch, seed=0)
    i, t = next(sampler.epoch(0))
    torch.manual_seed(0)
    model = DynMIX(cfg.model, len(views.feature_names), len(views.channels), views.window)
    with torch.no_grad():
        out = model({"explicit": views.explicit_features(i, t), "implicit": views.implicit_windows(i, t)})
    gamma0 = float(torch.sqrt(out["z_implicit"].var(0) + 1e-4).median())  # the spread sits around gamma0

    vol = views.market_vol.clone()
    vol[t] *= 1.5  # the batch's dates are stressed: gamma_b = 1.5 gamma0 (inside the clip [0.5, 2])
    grads, gammas = {}, {}
    for strategy in ("static", "market-vol"):
        loss_cfg = replace(cfg.loss, variance_target=strategy, gamma0=gamma0)
        target = VarianceTarget.from_config(loss_cfg, vol, views.dispersion, split.train_mask)
        obj = VICRegObjective(model, loss_cfg, views, target, DistContext(0, 1, views.device))
        obj.net = model
        model.zero_grad()
        loss, logs = obj.step((i, t), 0, False)
        loss.backward()  # type: ignore[no-untyped-call]
        gammas[strategy] = float(logs["gamma"])
        out = model({"explicit": views.explicit_features(i, t), "implicit": views.implicit_windows(i, t)})
        expect, _ = vicreg_loss(out["z_explicit"], out["z_implicit"], gamma=gammas[strategy], sim_coeff=5.0)
        assert float(loss.detach()) == pytest.approx(float(expect.detach()), rel=1e-5)
        grads[strategy] = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    ref = float(torch.quantile(vol[split.train_mask].double(), 0.5))
    expect_gamma = gamma0 * min(2.0, max(0.5, float(vol[t.unique()].mean()) / ref))
    assert gammas["static"] == pytest.approx(gamma0)
    assert gammas["market-vol"] == pytest.approx(expect_gamma, rel=1e-5)
    assert gammas["market-vol"] > 1.2 * gamma0
    assert (grads["static"] - grads["market-vol"]).abs().max() > 1e-4 * grads["static"].abs().max()


def test_train_selects_the_objective_and_the_run_loads_back(views_home,  # type: ignore[no-untyped-def]
                                                            tiny_cfg: Callable[..., DynMIXConfig]) -> None:
    objective = "byol"  # the one with extra weights (the predictors) in its checkpoint
    cfg = tiny_cfg(epochs=1, checkpoint_every=10**6)
    cfg = replace(cfg, loss=replace(cfg.loss, objective=objective))
    run = train(views_home, cfg, progress=False)
    assert run.name.endswith(objective)
    loaded_cfg, model, _ = load_run(run)
    assert loaded_cfg.loss.objective == objective
    assert (model.q_e is not None) == (objective == "byol")
    assert (run / "embeddings" / "embeddings.json").exists()
