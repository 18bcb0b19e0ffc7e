"""Training the world model of a run on its training period only, with the engine, into RUN/forecast/world.pt.

Letters: B dates in a batch, N companies, H rollout horizon.

Loss of a batch of origin dates t (TD-MPC2's multi-step objective, step h weighted by ρ^{h−1}):
    Σ_h ρ^{h−1} [ NLL(r_{t+h} | heads(z_{t+h−1})) + c · ‖z_{t+h} − sg(encode(t+h))‖² ],   z_{t+h} = next(z_{t+h−1}),
the NLL per company of the cross-section under N(μ̂, B̂B̂ᵀ + diag σ̂²), the consistency on company and market
latents. Origins satisfy t + H <= the last training date, so no target reaches the test period.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from dynmix.config import DynMIXConfig, WorldConfig, config_from_dict
from dynmix.errors import DynMIXError
from dynmix.models.world import WorldModel, gaussian_nll
from dynmix.runs.checkpoint import load_checkpoint, save_checkpoint
from dynmix.runs.device import DistContext, resolve_device
from dynmix.runs.models import derived_stamp, load_run, train_last_index
from dynmix.runs.panel import WorldPanel, build_panel, origin_dates
from dynmix.runs.rundir import RunDir, stale_keys
from dynmix.train.loop import Objective
from dynmix.train.session import Session, run_session
from dynmix.workspace import Workspace


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


class OriginSampler:
    """Batches of origin dates, shuffled per epoch by a generator seeded once: epoch e draws the (e+1)-th
    permutation, so a resume replays the same order.
    """

    def __init__(self, dates: Tensor, dates_per_batch: int, seed: int) -> None:
        self.dates, self.size, self.seed = dates, dates_per_batch, seed

    def __len__(self) -> int:
        return math.ceil(self.dates.numel() / self.size)

    def epoch(self, epoch: int) -> Iterator[Tensor]:
        g = torch.Generator().manual_seed(self.seed)
        for _ in range(epoch):
            torch.randperm(self.dates.numel(), generator=g)
        order = self.dates[torch.randperm(self.dates.numel(), generator=g).to(self.dates.device)]
        for s in range(0, order.numel(), self.size):
            yield order[s : s + self.size]


class WorldObjective(Objective):
    """TD-MPC2's multi-step loss of the world model on a batch of origin dates; gradients clipped at norm 1."""

    grad_clip = 1.0

    def __init__(self, world: WorldModel, panel: WorldPanel, cfg: WorldConfig) -> None:
        self.model: WorldModel = world
        self.panel, self.cfg = panel, cfg

    def step(self, batch: Any, step: int, stats: bool) -> tuple[Tensor, dict[str, Any]]:
        loss, parts = world_loss(self.model, self.panel, batch, self.cfg)
        parts.pop("loss")
        return loss, parts

    def bar_text(self, line: dict[str, Any]) -> str:
        return f"epoch {line['epoch']}  loss {line['loss']:.4f}  nll_h1 {line['nll_h1']:.4f}"


def world_optimizer(world: WorldModel, cfg: WorldConfig, steps_per_epoch: int
                    ) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.CosineAnnealingLR]:
    """AdamW (weight decay on every parameter) with cosine decay to 5% of the peak rate."""
    optimizer = torch.optim.AdamW(world.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = max(1, cfg.epochs * steps_per_epoch)
    return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total, eta_min=cfg.lr * 0.05)


def fit_world(ws: Workspace, run_dir: str | Path | RunDir, *, epochs: int | None = None, resume: bool = False,
              progress: bool = True, max_steps: int | None = None) -> Path:
    """Train the run's world model into RUN/forecast/world.pt on origins whose targets all lie on or before the
    run's last training date, then (`[world] stack_share` > 0) the same model on the first 1 − stack_share of those
    origins into world_stack.pt, whose forecasts on the held-out rest are out of sample: `dynmix_har`'s correction
    is fitted on them. Returns world.pt's path.

    A complete, current checkpoint is reused; `resume` continues an unfinished one exactly; otherwise an unfinished
    or stale one (views, split, DynMIX checkpoint or return scale changed) is trained again from the start.
    """
    rd = RunDir.of(run_dir)
    device = resolve_device(rd.read_config().train.device)
    cfg, model, vt = load_run(rd, device, views_dir=ws.views)
    if epochs is not None:
        cfg = replace(cfg, world=replace(cfg.world, epochs=epochs))
    last = train_last_index(rd, cfg, vt)
    panels: list[WorldPanel] = []

    def panel() -> WorldPanel:  # built once, only when something is trained
        if not panels:
            panels.append(build_panel(model, vt, cfg.world.return_scale, embeddings=rd.embeddings_path))
        return panels[0]

    jobs = [(rd.world_path, rd.world_metrics_path, "world model")]
    if cfg.world.stack_share > 0:
        jobs.append((rd.world_stack_path, rd.world_stack_metrics_path, "world model (stacking)"))
    for path, metrics, label in jobs:
        end = last if path == rd.world_path else stack_cut(panel(), last, cfg.world.stack_share)
        stamp = {**derived_stamp(rd, vt, ws.views, end), "return_scale": cfg.world.return_scale}
        ckpt = load_checkpoint(path, device) if path.exists() else None
        run_cfg = cfg
        if ckpt is not None:
            saved = config_from_dict(ckpt["config"])
            if stale := stale_keys(ckpt["views"], stamp):
                if resume:
                    raise DynMIXError(f"{path}: {', '.join(stale)} changed since it was trained; cannot resume")
                ckpt = None
            elif ckpt["meta"].get("complete"):
                continue
            elif resume:
                run_cfg = replace(cfg, world=saved.world)
            else:
                ckpt = None
        if not _train(rd, run_cfg, panel(), end, stamp, ckpt, progress, max_steps, path, metrics, label):
            break  # stopped by max_steps: the next model waits for the resume
    return rd.world_path


def stack_cut(panel: WorldPanel, last: int, share: float) -> int:
    """The date index ending the stacking model's training: the first 1 − share of the next-day training origins."""
    origins = origin_dates(panel, 0, last, 1).cpu().numpy()
    if len(origins) < 4:
        raise DynMIXError(f"[world] stack_share = {share}: only {len(origins)} training origins to split; set it to 0")
    return int(origins[min(len(origins) - 2, max(1, int(len(origins) * (1 - share))))])


def _train(rd: RunDir, cfg: DynMIXConfig, panel: WorldPanel, last: int, stamp: dict[str, Any],
           ckpt: dict[str, Any] | None, progress: bool, max_steps: int | None, path: Path, metrics: Path,
           label: str) -> bool:
    """Train one world model on origins up to `last` into `path`; True when it finished."""
    w = cfg.world
    dates = origin_dates(panel, 0, last, w.rollout)
    if dates.numel() == 0:
        raise DynMIXError(f"no training dates for the {label}: it needs origins with {w.rollout} later "
                          "training days and at least two valid companies")
    torch.manual_seed(w.seed)
    world = WorldModel(w, panel.rep_dim, panel.market_dim).to(panel.reps.device)
    sampler = OriginSampler(dates, w.dates_per_batch, w.seed)
    optimizer, scheduler = world_optimizer(world, w, len(sampler))
    meta: dict[str, Any] = {"rep_dim": panel.rep_dim, "market_dim": panel.market_dim,
                            "train_origins": int(dates.numel()), "complete": False}
    session = Session(path, metrics, cfg.to_dict(), stamp, w.epochs, w.log_every,
                      w.checkpoint_every, label=label, one_thread=True, meta=meta,
                      resume_hint=f"dynmix train --stage world --resume {rd.name}")
    ctx = DistContext(0, 1, panel.reps.device)  # the world model trains in one process
    info = (f"{label} of run {rd.name}: {dates.numel()} training origins (to {stamp['train_end']}), "
            f"{len(sampler)} steps/epoch x {w.epochs} epochs, device {ctx.device}")
    engine = run_session(session, WorldObjective(world, panel, w), sampler, optimizer, scheduler, ctx, ckpt=ckpt,
                         progress=progress, max_steps=max_steps, info=info)
    if engine.done:
        world.eval()
        meta |= {"complete": True, "train_nll": mean_nll(world, panel, origin_dates(panel, 0, last, 1))}
        save_checkpoint(path, step=engine.step, epoch=w.epochs - 1, model=world, ema=None,
                        optimizer=optimizer, scheduler=scheduler, config=cfg.to_dict(), views=stamp, meta=meta)
    return bool(engine.done)


__all__ = ["OriginSampler", "WorldObjective", "fit_world", "mean_nll", "stack_cut", "world_loss", "world_optimizer"]
