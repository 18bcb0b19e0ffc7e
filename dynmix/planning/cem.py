"""Generic CEM/MPPI planner over action sequences (TD-MPC2's `_plan`, time-major).

Letters: H horizon, S samples, E elites, R raw (search-space) action size, A action size.

The planner sees only a cost function. It searches a Gaussian over raw sequences (H, R); `project`
decodes raw samples into feasible actions (H, S, A) (a clamp, a softmax onto the simplex, ...), which
the cost function scores. Each iteration: sample, decode, score, keep the E cheapest, refit mean/std
from them (MPPI: softmax weights; CEM: equal weights), clamp std, smooth with momentum.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import torch

from dynmix.config import PlanConfig
from dynmix.errors import DynMIXError

Trajectories = torch.Tensor | dict[str, torch.Tensor]  # each (H, S, ...)
CostFn = Callable[[torch.Tensor], torch.Tensor | tuple[torch.Tensor, Trajectories]]
Project = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class PlanResult:
    actions: torch.Tensor  # (H, A) decoded final mean: the plan
    mean: torch.Tensor  # (H, R) final raw mean (warm-start it with `shift`)
    std: torch.Tensor  # (H, R) final raw std
    costs: torch.Tensor  # (I,) lowest sampled cost at each iteration
    elite_costs: torch.Tensor  # (E,) costs of the last iteration's elites, ascending
    elite_actions: torch.Tensor  # (H, E, A) decoded elites of the last iteration
    trajectories: Trajectories | None  # the cost function's trajectories for those elites, (H, E, ...)


def shift(mean: torch.Tensor) -> torch.Tensor:
    """Warm start: move a (H, R) plan one step ahead, repeating the last step."""
    return torch.cat([mean[1:], mean[-1:]], dim=0)


def ar1_mix(horizon: int, phi: float, like: torch.Tensor) -> torch.Tensor:
    """(H, H) lower-triangular M with M @ e = n for e iid N(0, 1) along H: n_0 = e_0 and
    n_h = φ n_{h−1} + sqrt(1 − φ²) e_h, so every n_h stays N(0, 1) with corr(n_h, n_{h−1}) = φ.
    """
    h = torch.arange(horizon, dtype=torch.float64)
    lag = h.unsqueeze(1) - h.unsqueeze(0)  # h − j
    mix = torch.where(lag >= 0, phi ** lag.clamp_min(0), 0.0) * (1.0 - phi**2) ** 0.5
    mix[:, 0] = phi**h  # e_0 enters undamped
    return mix.to(device=like.device, dtype=like.dtype)


def _copied(x: Trajectories | None) -> Trajectories | None:
    """Trajectories (a tensor or a dict of them) or None, copied (out of a CUDA graph's reused memory)."""
    if isinstance(x, dict):
        return {k: v.clone() for k, v in x.items()}
    return None if x is None else x.clone()


def _take(traj: Trajectories, idx: torch.Tensor) -> Trajectories:
    if isinstance(traj, dict):
        return {k: v.index_select(1, idx) for k, v in traj.items()}
    return traj.index_select(1, idx)


class Planner:
    """Sampling-based planner: `plan(cost_fn, action_dim)` -> `PlanResult`."""

    def __init__(self, cfg: PlanConfig) -> None:
        if cfg.method not in ("mppi", "cem"):
            raise DynMIXError(f"plan.method must be 'mppi' or 'cem', got {cfg.method!r}")
        if not 0 < cfg.elites <= cfg.samples:
            raise DynMIXError(f"plan.elites must be in 1..samples ({cfg.samples}), got {cfg.elites}")
        if not 0.0 <= cfg.noise_corr < 1.0:
            raise DynMIXError(f"plan.noise_corr must be in [0, 1), got {cfg.noise_corr}")
        if cfg.horizon < 1 or cfg.iterations < 1:
            raise DynMIXError("plan.horizon and plan.iterations must be >= 1")
        self.cfg = cfg
        self._compiled: dict[str, Callable[..., PlanResult]] = {}  # per device type: CUDA graphs only on CUDA

    def _compiled_search(self, cost_fn: CostFn, mean: torch.Tensor, noise: torch.Tensor, project: Project
                         ) -> PlanResult:
        """`search` through torch.compile (`plan.compile`); on CUDA as CUDA graphs, whose outputs the next replay
        overwrites, so they are copied out.
        """
        cuda = mean.device.type == "cuda"
        if mean.device.type not in self._compiled:
            mode = "reduce-overhead" if cuda else None
            self._compiled[mean.device.type] = torch.compile(self.search, mode=mode, dynamic=False)
        compiled = self._compiled[mean.device.type]
        if not cuda:
            return compiled(cost_fn, mean, noise, project)
        torch.compiler.cudagraph_mark_step_begin()
        res = compiled(cost_fn, mean, noise, project)
        tensors = {f.name: getattr(res, f.name).clone() for f in fields(res) if f.name != "trajectories"}
        return PlanResult(**tensors, trajectories=_copied(res.trajectories))

    def _weights(self, elite_costs: torch.Tensor) -> torch.Tensor:
        """(E,) elite weights summing to 1, none on infeasible (infinite-cost) elites.

        CEM: equal. MPPI: softmax(−(c − c_min) / (temperature · std(c))), invariant to the scale of the costs.
        """
        finite = torch.isfinite(elite_costs)
        if self.cfg.method == "cem":
            w = finite.to(elite_costs.dtype)
        else:
            worst = elite_costs.masked_fill(~finite, -torch.inf).amax()  # no boolean index: no host sync
            c = torch.where(finite, elite_costs, worst)  # infeasible elites: as the worst
            spread = c.std() if c.numel() > 1 else c.new_tensor(0.0)
            scale = self.cfg.temperature * spread.clamp_min(1e-12)
            w = torch.where(finite, torch.softmax(-(c - c[0]) / scale, dim=0), 0.0)
        return w / w.sum()

    def _noise(self, shape: tuple[int, int, int, int], generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
        """(I, H, S, R) standard normal noise of every iteration, drawn at once (one launch; on a CPU the same
        numbers as one draw per iteration), AR(1)-correlated along H (smooth sequences, less spurious turnover).
        """
        noise = torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)
        if self.cfg.noise_corr > 0:
            mix = ar1_mix(shape[1], self.cfg.noise_corr, like)
            noise = (mix @ noise.view(shape[0], shape[1], -1)).view(shape)  # one matmul, not 2 (H - 1) launches
        noise[:, :, 0] = 0.0  # sample 0 is the current mean, so the plan itself is always scored
        return noise

    @torch.no_grad()
    def plan(
        self,
        cost_fn: CostFn,
        action_dim: int,
        *,
        mean: torch.Tensor | None = None,
        project: Project | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> PlanResult:
        """Minimise `cost_fn` over (H, action_dim) raw sequences; `mean` warm-starts (e.g. `shift(prev.mean)`)."""
        cfg = self.cfg
        H, S = cfg.horizon, cfg.samples
        if mean is None:
            dev = torch.device(device) if device is not None else (generator.device if generator is not None else None)
            mean = torch.zeros(H, action_dim, device=dev, dtype=dtype)
        elif mean.shape != (H, action_dim):
            raise DynMIXError(f"warm-start mean must have shape (H, R) = {(H, action_dim)}, got {tuple(mean.shape)}")
        mean = mean.clone()
        if generator is None:
            generator = torch.Generator(device=mean.device).manual_seed(cfg.seed)
        noise = self._noise((cfg.iterations, H, S, action_dim), generator, mean)
        project = project if project is not None else (lambda x: x)
        if cfg.compile:
            res = self._compiled_search(cost_fn, mean, noise, project)
        else:
            res = self.search(cost_fn, mean, noise, project)
        if not bool(torch.isfinite(res.costs).all()):  # the one host sync of a plan
            raise DynMIXError("cost_fn gave no finite cost to any sample; check the cost and the projection")
        return res

    def search(self, cost_fn: CostFn, mean: torch.Tensor, noise: torch.Tensor, project: Project) -> PlanResult:
        """The iterations of `plan` from the raw mean (H, R) with the drawn noise (I, H, S, R): no generator and
        no host sync, so torch.compile takes it whole (one CUDA graph under mode="reduce-overhead").
        """
        cfg = self.cfg
        S, E = noise.shape[2], cfg.elites
        std = torch.full_like(mean, cfg.init_std)
        history = []
        for it in range(noise.shape[0]):
            raw = torch.addcmul(mean.unsqueeze(1), std.unsqueeze(1), noise[it])  # (H, S, R)
            actions = project(raw)  # (H, S, A)
            out = cost_fn(actions)
            costs, traj = out if isinstance(out, tuple) else (out, None)
            if costs.shape != (S,):
                raise DynMIXError(f"cost_fn must return (S,) = ({S},) costs, got {tuple(costs.shape)}")
            costs = torch.nan_to_num(costs.to(mean.dtype), nan=float("inf"))
            elite_costs, idx = torch.topk(costs, E, largest=False, sorted=True)  # (E,)
            history.append(elite_costs[0])
            w = self._weights(elite_costs).view(1, E, 1)
            elites = raw.index_select(1, idx)  # (H, E, R)
            new_mean = (w * elites).sum(1)  # (H, R)
            new_std = ((w * (elites - new_mean.unsqueeze(1)) ** 2).sum(1)).sqrt()
            mean = cfg.momentum * mean + (1.0 - cfg.momentum) * new_mean
            std = (cfg.momentum * std + (1.0 - cfg.momentum) * new_std).clamp(cfg.min_std, cfg.max_std)
        return PlanResult(
            actions=project(mean.unsqueeze(1)).squeeze(1),
            mean=mean,
            std=std,
            costs=torch.stack(history),
            elite_costs=elite_costs,
            elite_actions=actions.index_select(1, idx),
            trajectories=_take(traj, idx) if traj is not None else None,
        )
