"""DynMIX's objectives: the explicit and implicit views of a company-day are the two sides of a self-supervised
pair loss, with the variance target gamma of the batch's dates.

Shapes: B global batch, B_r this rank's share, K projector output size.

`PairObjective` does what every pair loss shares: the variance target, the shard of this rank, the forward pass
under autocast, the `gather_cat` of both projections (so the loss sees the global batch and is the same number
on every rank: DDP's gradient average is then the single-process gradient) and the collapse diagnostics. A new
objective is one subclass implementing `pair_loss`, registered in PAIR_OBJECTIVES under its `[loss] objective`
name: `vicreg` (the variance target acts here only), `sigreg`, `barlow`, `infonce`, `byol` (the engine's EMA as
the target network). The other objectives log gamma but do not use it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from dynmix.config import LossConfig
from dynmix.errors import DynMIXError
from dynmix.losses.barlow import BarlowTwinsLoss
from dynmix.losses.byol import byol_loss
from dynmix.losses.distributed import gather_cat
from dynmix.losses.infonce import InfoNCELoss
from dynmix.losses.sigreg import SIGReg
from dynmix.losses.variance_target import VarianceTarget
from dynmix.losses.vicreg import VICRegLoss, invariance_loss
from dynmix.runs.device import DistContext
from dynmix.train.ema import EMA
from dynmix.train.loop import Objective, autocast
from dynmix.train.monitor import collapse_message, rep_stats
from dynmix.views.tensors import ViewTensors


class PairObjective(Objective):
    """One step of a two-view pair loss on date-blocked batches (i, t) of the views."""

    name: ClassVar[str] = ""

    def __init__(self, model: nn.Module, cfg: LossConfig, views: ViewTensors, variance_target: VarianceTarget,
                 ctx: DistContext, *, amp: bool = True, ema: EMA | None = None) -> None:
        self.model = model
        self.cfg = cfg
        self.views = views
        self.variance_target = variance_target
        self.ctx = ctx
        self.amp = amp
        self.ema = ema

    def pair_loss(self, z_explicit: Tensor, z_implicit: Tensor, gamma: Tensor, step: int,
                  out: dict[str, Tensor], shard: tuple[Tensor, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """(loss, detached parts) of the global batch's projections (B, K) each, under the variance target.

        `out` is this rank's model output and `shard` its samples (i_r, t_r), for objectives that need more.
        """
        raise NotImplementedError

    def batch(self, i: Tensor, t: Tensor) -> dict[str, Tensor]:
        """The two views of samples (i, t): explicit (B, F), implicit (B, L, C)."""
        return {"explicit": self.views.explicit_features(i, t), "implicit": self.views.implicit_windows(i, t)}

    def step(self, batch: Any, step: int, stats: bool) -> tuple[Tensor, dict[str, Any]]:
        i, t = batch
        gamma = self.variance_target(t)  # 0-d, from the global batch's dates: the same on every rank
        i_r, t_r = self.ctx.shard(i, t)  # (B_r,)
        with autocast(self.views.device, self.amp):
            out = self.net(self.batch(i_r, t_r))
        z_e = gather_cat(out["z_explicit"].float())  # (B, K)
        z_i = gather_cat(out["z_implicit"].float())  # (B, K)
        loss, parts = self.pair_loss(z_e, z_i, gamma, step, out, (i_r, t_r))
        logs: dict[str, Any] = {**parts, "gamma": gamma.detach()}
        if stats:
            logs |= rep_stats(out["explicit"].detach(), "explicit") | rep_stats(out["implicit"].detach(), "implicit")
        return loss, logs

    def bar_text(self, line: dict[str, Any]) -> str:
        return f"epoch {line['epoch']}  loss {line['loss']:.4f}  gamma {line['gamma']:.3f}"

    def collapse(self, line: dict[str, Any]) -> str | None:
        return pair_collapse(line)


def pair_collapse(line: dict[str, Any]) -> str | None:
    """A warning when a logged line's explicit or implicit representations collapse (relative to gamma)."""
    return collapse_message(line, line["gamma"]) if "implicit_erank" in line else None


class VICRegObjective(PairObjective):
    """VICReg with the variance target: invariance + variance hinge at gamma + covariance."""

    name = "vicreg"

    def __init__(self, model: nn.Module, cfg: LossConfig, views: ViewTensors, variance_target: VarianceTarget,
                 ctx: DistContext, *, amp: bool = True, ema: EMA | None = None) -> None:
        super().__init__(model, cfg, views, variance_target, ctx, amp=amp, ema=ema)
        self.loss_fn = VICRegLoss.from_config(cfg)

    def pair_loss(self, z_explicit: Tensor, z_implicit: Tensor, gamma: Tensor, step: int,
                  out: dict[str, Tensor], shard: tuple[Tensor, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        return self.loss_fn(z_explicit, z_implicit, gamma)


class SIGRegObjective(PairObjective):
    """LeJEPA's loss on the two views: lambda * (SIGReg(z_e) + SIGReg(z_i)) / 2 + (1 - lambda) * invariance."""

    name = "sigreg"

    def __init__(self, model: nn.Module, cfg: LossConfig, views: ViewTensors, variance_target: VarianceTarget,
                 ctx: DistContext, *, amp: bool = True, ema: EMA | None = None) -> None:
        super().__init__(model, cfg, views, variance_target, ctx, amp=amp, ema=ema)
        self.sigreg = SIGReg(num_slices=cfg.sigreg_slices)

    def pair_loss(self, z_explicit: Tensor, z_implicit: Tensor, gamma: Tensor, step: int,
                  out: dict[str, Tensor], shard: tuple[Tensor, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        # the global batch is gathered already: the plain statistic, same directions for both views at this step
        reg = (self.sigreg(z_explicit, step=step) + self.sigreg(z_implicit, step=step)) / 2
        inv = invariance_loss(z_explicit, z_implicit)
        lam = self.cfg.sigreg_lambda
        return lam * reg + (1 - lam) * inv, {"sigreg": reg.detach(), "invariance": inv.detach()}


class BarlowObjective(PairObjective):
    """Barlow Twins: the cross-correlation of the two views' projections pushed to the identity."""

    name = "barlow"

    def __init__(self, model: nn.Module, cfg: LossConfig, views: ViewTensors, variance_target: VarianceTarget,
                 ctx: DistContext, *, amp: bool = True, ema: EMA | None = None) -> None:
        super().__init__(model, cfg, views, variance_target, ctx, amp=amp, ema=ema)
        self.loss_fn = BarlowTwinsLoss(cfg.barlow_lambda)

    def pair_loss(self, z_explicit: Tensor, z_implicit: Tensor, gamma: Tensor, step: int,
                  out: dict[str, Tensor], shard: tuple[Tensor, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        return self.loss_fn(z_explicit, z_implicit)


class InfoNCEObjective(PairObjective):
    """Symmetric cross-view InfoNCE: a company-day's explicit view picks its own implicit view among the batch's."""

    name = "infonce"

    def __init__(self, model: nn.Module, cfg: LossConfig, views: ViewTensors, variance_target: VarianceTarget,
                 ctx: DistContext, *, amp: bool = True, ema: EMA | None = None) -> None:
        super().__init__(model, cfg, views, variance_target, ctx, amp=amp, ema=ema)
        self.loss_fn = InfoNCELoss(cfg.temperature)

    def pair_loss(self, z_explicit: Tensor, z_implicit: Tensor, gamma: Tensor, step: int,
                  out: dict[str, Tensor], shard: tuple[Tensor, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        return self.loss_fn(z_explicit, z_implicit)


class BYOLObjective(PairObjective):
    """BYOL across the views: each view's online prediction regresses the EMA target's projection of the other."""

    name = "byol"

    def __init__(self, model: nn.Module, cfg: LossConfig, views: ViewTensors, variance_target: VarianceTarget,
                 ctx: DistContext, *, amp: bool = True, ema: EMA | None = None) -> None:
        if ema is None:
            raise DynMIXError("the byol objective needs the engine's EMA as its target network; got none")
        if getattr(model, "q_e", None) is None:
            raise DynMIXError("the byol objective needs a DynMIX model built with predictor=True")
        super().__init__(model, cfg, views, variance_target, ctx, amp=amp, ema=ema)

    def pair_loss(self, z_explicit: Tensor, z_implicit: Tensor, gamma: Tensor, step: int,
                  out: dict[str, Tensor], shard: tuple[Tensor, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        assert self.ema is not None
        target = self.ema.module
        with torch.no_grad(), autocast(self.views.device, self.amp):
            target.train()  # batch statistics in the projector, as the online network (running stats are re-copied)
            t_out = target(self.batch(*shard))
            target.eval()
        p_e = gather_cat(out["p_explicit"].float())  # (B, K)
        p_i = gather_cat(out["p_implicit"].float())  # (B, K)
        t_e = gather_cat(t_out["z_explicit"].float())  # (B, K)
        t_i = gather_cat(t_out["z_implicit"].float())  # (B, K)
        return byol_loss(p_e, p_i, t_e, t_i)


PAIR_OBJECTIVES: dict[str, type[PairObjective]] = {
    o.name: o for o in (VICRegObjective, SIGRegObjective, BarlowObjective, InfoNCEObjective, BYOLObjective)
}


def pair_objective(name: str) -> type[PairObjective]:
    """The objective class of `[loss] objective`."""
    try:
        return PAIR_OBJECTIVES[name]
    except KeyError:
        raise DynMIXError(f"unknown objective {name!r}; expected one of {', '.join(PAIR_OBJECTIVES)}") from None
