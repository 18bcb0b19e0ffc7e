"""The dynamic variance target changes training at the default loss weights (LossConfig).

With VICReg's lambda = 25 the projections of DynMIX's two (different) views settle below every gamma, the hinge
relu(gamma - std) is active on every dimension and gamma changes no gradient (tests/losses/test_variance_hinge.py):
a static and a market-vol run end with the same weights. At the default lambda = 5 the spread reaches gamma, so
the market-vol run's weights leave the static run's.
"""

from __future__ import annotations

import json
from dataclasses import replace

import torch

from dynmix.config import LossConfig
from dynmix.runs.models import load_run
from dynmix.train import train


def _run(home, cfg, **loss):  # type: ignore[no-untyped-def]
    """(flat weights, mean of variance / gamma over the last epoch's logged steps)."""
    run = train(home, replace(cfg, loss=replace(LossConfig(), **loss)), run_name=loss["variance_target"],
                progress=False)
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    last = [m for m in lines if m["epoch"] == lines[-1]["epoch"] and "variance" in m]
    shortfall = sum(m["variance"] / m["gamma"] for m in last) / len(last)
    _, model, _ = load_run(run)
    return torch.cat([p.detach().flatten() for p in model.parameters()]), shortfall


def _gap(home, cfg, **loss) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Largest weight difference between a market-vol and a static run; the market-vol run's shortfall."""
    dyn_w, shortfall = _run(home, cfg, variance_target="market-vol", **loss)
    static_w, _ = _run(home, cfg, variance_target="static", **loss)
    return float((dyn_w - static_w).abs().max()), shortfall


def test_variance_target_reaches_the_gradients_at_the_default_weights(views_home, tiny_cfg) -> None:  # type: ignore[no-untyped-def]
    cfg = tiny_cfg(epochs=8, log_every=1, checkpoint_every=10**6)
    gap, shortfall = _gap(views_home, cfg)
    vicreg_gap, vicreg_shortfall = _gap(views_home, cfg, sim_coeff=25.0)
    print(f"lambda 5: weight gap {gap:.2e}, shortfall {shortfall:.3f}; "
          f"lambda 25: weight gap {vicreg_gap:.2e}, shortfall {vicreg_shortfall:.3f}")
    assert vicreg_gap == 0.0  # every std under every gamma: gamma is invisible to training
    assert gap > 1e-3  # at the default weights gamma moves the weights
    assert shortfall < 0.5 * vicreg_shortfall  # mean relu(gamma - std) / gamma: the spread comes close to gamma
