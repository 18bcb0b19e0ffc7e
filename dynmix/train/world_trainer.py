"""Training the world model on the training period only (DESIGN §6), and RUN/forecast/world.pt.

Letters: B dates in a batch, N companies, H rollout horizon.

Loss of a batch of origin dates t (TD-MPC2's multi-step objective, step h weighted by ρ^{h−1}):
    Σ_h ρ^{h−1} [ NLL(r_{t+h} | heads(z_{t+h−1})) + c · ‖z_{t+h} − sg(encode(t+h))‖² ],   z_{t+h} = next(z_{t+h−1}),
the NLL per company of the cross-section under N(μ̂, B̂B̂ᵀ + diag σ̂²), the consistency on company and market
latents. Origins satisfy t + H <= the last training date, so no target reaches the test period.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import Tensor

from dynmix.config import WorldConfig
from dynmix.errors import DynMIXError
from dynmix.io import atomic_write
from dynmix.models.world import WorldModel, gaussian_nll
from dynmix.train.threads import single_thread
from dynmix.train.world_data import WorldPanel


def origin_dates(panel: WorldPanel, first: int, last: int, horizon: int) -> Tensor:
    """(B,) date indices t in [first, last − horizon] with at least two valid companies at t."""
    t = torch.arange(max(first, 0), max(last - horizon + 1, 0), device=panel.valid.device)
    return t[panel.valid[t].sum(1) >= 2]


def _consistency(z_company: Tensor, z_market: Tensor, target_company: Tensor, target_market: Tensor,
                 mask: Tensor) -> Tensor:
    w = mask.to(z_company.dtype).unsqueeze(-1)  # (B, N, 1)
    comp = ((z_company - target_company).pow(2) * w).sum() / (w.sum() * z_company.shape[-1]).clamp_min(1.0)
    return comp + (z_market - target_market).pow(2).mean()


def world_loss(world: WorldModel, panel: WorldPanel, t: Tensor, cfg: WorldConfig) -> tuple[Tensor, dict[str, Tensor]]:
    """(loss, detached parts) of the origins t (B,): weighted NLL per company and latent consistency over H steps."""
    z = world.encode(*panel.inputs(t))
    loss = t.new_zeros((), dtype=torch.float32)
    parts: dict[str, Tensor] = {}
    for h in range(1, cfg.rollout + 1):
        weight = cfg.rho ** (h - 1)
        nll, count = gaussian_nll(world.heads(z), panel.returns[t + h], z.mask)
        nll = nll / count.clamp_min(1.0)
        loss = loss + weight * nll
        parts[f"nll_h{h}"] = nll.detach()
        if h < cfg.rollout:
            z = world.next(z)
            with torch.no_grad():
                target = world.encode(*panel.inputs(t + h))
            cons = _consistency(z.company, z.market, target.company, target.market, z.mask & target.mask)
            loss = loss + cfg.consistency_coeff * weight * cons
            parts[f"consistency_h{h}"] = cons.detach()
    parts["loss"] = loss.detach()
    return loss, parts


@torch.no_grad()
def mean_nll(world: WorldModel, panel: WorldPanel, dates: Tensor, batch: int = 256) -> float:
    """Per-company NLL of the next day's cross-section (h = 1) over origins `dates`."""
    was = world.training
    world.eval()
    total, count = 0.0, 0.0
    for start in range(0, dates.numel(), batch):
        t = dates[start : start + batch]
        nll, n = gaussian_nll(world.heads(world.encode(*panel.inputs(t))), panel.returns[t + 1], panel.valid[t])
        total, count = total + float(nll), count + float(n)
    world.train(was)
    return total / count if count else float("nan")


class WorldTrainer:
    """AdamW with cosine decay on date-shuffled batches of origins; `train_step` returns detached scalars."""

    def __init__(self, world: WorldModel, panel: WorldPanel, cfg: WorldConfig, dates: Tensor) -> None:
        if dates.numel() == 0:
            raise DynMIXError(f"no training dates for the world model: it needs origins with {cfg.rollout} later "
                              "training days and at least two valid companies")
        self.world, self.panel, self.cfg, self.dates = world, panel, cfg, dates
        self.steps_per_epoch = math.ceil(dates.numel() / cfg.dates_per_batch)
        self.optimizer = torch.optim.AdamW(world.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        total = max(1, cfg.epochs * self.steps_per_epoch)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, total, eta_min=cfg.lr * 0.05)

    def train_step(self, t: Tensor) -> dict[str, float]:
        self.world.train()
        loss, parts = world_loss(self.world, self.panel, t, self.cfg)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        grad = torch.nn.utils.clip_grad_norm_(self.world.parameters(), 1.0)
        self.optimizer.step()
        self.scheduler.step()
        return {k: float(v) for k, v in parts.items()} | {"grad_norm": float(grad)}

    def fit(self, progress: bool = True) -> list[dict[str, float]]:
        """Train `cfg.epochs` epochs; returns one line per epoch (mean loss and h = 1 NLL)."""
        g = torch.Generator().manual_seed(self.cfg.seed)
        history = []
        cols = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*cols, disable=not progress) as bar, single_thread(self.dates.device.type == "cpu"):
            task = bar.add_task("world model epochs", total=self.cfg.epochs)
            for epoch in range(self.cfg.epochs):
                order = self.dates[torch.randperm(self.dates.numel(), generator=g).to(self.dates.device)]
                lines = [self.train_step(order[s : s + self.cfg.dates_per_batch])
                         for s in range(0, order.numel(), self.cfg.dates_per_batch)]
                history.append({"epoch": float(epoch), "loss": sum(x["loss"] for x in lines) / len(lines),
                                "nll_h1": sum(x["nll_h1"] for x in lines) / len(lines)})
                bar.update(task, advance=1, description=f"world model: loss {history[-1]['loss']:.3f}")
        self.world.eval()
        return history


def save_world(path: Path, world: WorldModel, meta: dict[str, Any]) -> Path:
    """world.pt: {model, config, rep_dim, market_dim, meta}; readable with weights_only=True."""
    obj = {"model": world.state_dict(), "config": asdict(world.cfg), "rep_dim": world.rep_dim,
           "market_dim": world.market_dim, "meta": meta}
    return atomic_write(path, lambda p: torch.save(obj, p))


def load_world(path: Path, device: str | torch.device = "cpu") -> tuple[WorldModel, dict[str, Any]]:
    try:
        obj = torch.load(path, map_location=device, weights_only=True)
        world = WorldModel(WorldConfig(**obj["config"]), int(obj["rep_dim"]), int(obj["market_dim"])).to(device)
        world.load_state_dict(obj["model"])
    except FileNotFoundError as e:
        raise DynMIXError(f"no world model at {path}: run `dynmix forecast RUN` first") from e
    except Exception as e:  # a torn, foreign or outdated file
        raise DynMIXError(f"world model {path} could not be read ({type(e).__name__}: {e}); "
                          "retrain it with `dynmix forecast RUN --retrain`") from e
    world.eval()
    return world, dict(obj.get("meta", {}))
