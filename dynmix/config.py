"""Configuration: one dataclass per concern, each default commented (nanoGPT's GPTConfig style).

Load at the entry point only (`load_config`); the resolved config is saved beside every checkpoint
(`save_config`). TOML sections carry the dataclass field names: [views], [model], [loss], [train], ...
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import tomli_w

from dynmix.errors import DynMIXError
from dynmix.io import write_text

VARIANCE_TARGETS: tuple[str, ...] = ("static", "market-vol", "dispersion")  # strategies for gamma
OBJECTIVES: tuple[str, ...] = ("vicreg", "sigreg", "barlow", "infonce", "byol")  # pair losses of the two views
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")


@dataclass
class ViewsConfig:
    window: int = 60  # L: days of returns in the implicit view
    min_window_obs: int = 45  # a window with fewer observed returns is masked out
    market_ticker: str = "^GSPC"  # market series; equal-weighted mean of equities when absent
    start: str | None = None  # first date used for views (None: all data; the sample source starts in 2005)
    vol_scale_window: int = 252  # trailing window (days) of the per-company return scale (implicit view)
    market_vol_window: int = 21  # trailing window of market realised volatility (for the variance target)
    factors: int = 12  # statistical factors of the cross-section, one implicit channel each (0: none; views/factors.py)
    factor_window: int = 252  # trailing days each factor fit uses
    factor_refit: int = 63  # days between factor fits
    # young companies / short panels: a long-window explicit feature (252 d) not yet full is filled with the
    # cross-sectional mean and flagged (`short_history` feature) instead of masking the sample, and the factor
    # fits start on an expanding window once `factor_min_days` days exist. False: whole windows only (the
    # README's demo figures were measured so).
    partial_history: bool = True
    factor_min_days: int = 63  # first factor fit (expanding window up to factor_window) when partial_history


@dataclass
class ModelConfig:
    dim: int = 64  # D: representation size of both branches
    explicit_hidden: int = 256  # width of the explicit MLP
    implicit_width: int = 64  # width (conv channels) of the temporal conv encoder, not the view's channel count
    implicit_layers: int = 4  # temporal conv blocks (dilations 1, 2, 4, ...)
    projector_dim: int = 256  # expander output size, fed to the loss
    projector_hidden: int = 256  # expander hidden width
    dropout: float = 0.0


@dataclass
class LossConfig:
    objective: str = "vicreg"  # vicreg | sigreg | barlow | infonce | byol (dynmix.train.pair; gamma: vicreg only)
    # lambda: invariance weight; below VICReg's 25 so the projections' spread can reach gamma (README, variance target)
    sim_coeff: float = 5.0
    std_coeff: float = 25.0  # mu: variance weight
    cov_coeff: float = 1.0  # nu: covariance weight
    variance_target: str = "market-vol"  # static | market-vol | dispersion
    gamma0: float = 1.0  # base variance target
    gamma_lo: float = 0.5  # clip of sigma_b / sigma_ref from below
    gamma_hi: float = 2.0  # clip of sigma_b / sigma_ref from above
    sigreg_lambda: float = 0.05  # sigreg: weight of SIGReg against invariance (LeJEPA's 0.02-0.05)
    sigreg_slices: int = 256  # sigreg: random directions per step
    barlow_lambda: float = 5e-3  # barlow: off-diagonal weight (the paper's)
    temperature: float = 0.1  # infonce: softmax temperature tau


@dataclass
class TrainConfig:
    epochs: int = 20  # passes over the training dates
    dates_per_batch: int = 16  # a batch is these many dates x the companies alive on them
    # at most this many samples per batch: larger date blocks keep a share of each date's companies (every date
    # stays in); None: chosen from the device's free memory (dynmix.runs.memory)
    max_batch_samples: int | None = None
    lr: float = 1e-3  # peak AdamW learning rate
    weight_decay: float = 1e-4
    warmup_frac: float = 0.05  # share of steps of linear warm-up before cosine decay
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    train_end: str | None = None  # last training date (YYYY-MM-DD); None: the first `train_frac` of dates
    train_frac: float = 0.75
    log_every: int = 10  # steps between metrics.jsonl lines
    checkpoint_every: int = 200  # steps between checkpoints (and one at the end)
    ema_momentum: tuple[float, float] = (0.996, 1.0)  # EMA momentum, linear from first to second over training
    compile: bool = False  # torch.compile the model (CUDA or CPU; slow first steps while it compiles)


@dataclass
class EvalConfig:
    knn_k: int = 5  # neighbours of the kNN probe
    precision_k: int = 5  # k of precision@k for same-sector neighbours
    seed: int = 0


@dataclass
class PlanConfig:
    horizon: int = 5  # H: steps planned ahead (days)
    samples: int = 512  # S: action sequences sampled per iteration
    iterations: int = 6  # sample -> evaluate -> refit rounds per plan
    elites: int = 64  # lowest-cost samples kept to refit the sampling distribution
    temperature: float = 0.5  # MPPI: elite weights ~ exp(-(cost - min) / (temperature * elite cost std)); scale-free
    min_std: float = 0.05  # floor of the sampling std (keeps exploring)
    max_std: float = 2.0  # cap of the sampling std
    init_std: float = 1.0  # sampling std at the start of every plan (also after a warm start)
    momentum: float = 0.1  # share of the previous mean/std kept at each refit (0: plain refit)
    noise_corr: float = 0.8  # AR(1) correlation of the sampling noise along H (0: independent steps, as TD-MPC2)
    method: str = "mppi"  # mppi (softmax-weighted elites) | cem (equal-weighted elites)
    risk_aversion: float = 5.0  # rho: weight of the predicted variance w' Sigma w (daily units)
    cost: float = 1e-3  # kappa: cost per unit of turnover (1e-3 = 10 bps, as BacktestConfig.cost_bps)
    long_only: bool = True  # weights on the simplex; False: long-short with net exposure 1
    gross_limit: float = 1.0  # long-short only: sum |w| <= gross_limit (>= 1)
    target_vol: float | None = None  # annualised volatility goal; None: no target-vol penalty
    target_vol_coeff: float = 1.0  # weight of (annualised predicted vol - target_vol)^2 per step
    objective: str = "mean_variance"  # mean_variance: -w.mu + rho w'Sw | min_risk: rho w'Sw (mu unused) |
    # target_vol: -w.mu + target_vol_coeff (vol - target_vol)^2; every objective adds kappa |dw| and the penalties
    turnover_budget: float | None = None  # most sum |w_h - w_{h-1}| per step; excess costs budget_coeff per unit
    budget_coeff: float = 1.0  # weight of the turnover over the budget (large against daily returns: nearly hard)
    max_weight: float | None = None  # long-only: cap of every weight (>= 1 / assets); None: the plain simplex
    warm_start: bool = True  # start each plan from the previous plan shifted one step (same asset set)
    hold_check: bool = True  # keep the current weights when the sampled plan does not beat holding by its own cost
    shrink_mu: bool = True  # mu -> max(IC, 0) * dispersion / sqrt(H) * z-score, IC measured on the training period
    groups: int = 5  # hierarchical planner: groups of companies (k-means clusters of their embeddings)
    strategic_days: int = 21  # hierarchical planner: days per strategic step (a month); it re-plans monthly
    strategic_horizon: int = 3  # hierarchical planner: strategic steps planned ahead
    track_coeff: float = 20.0  # hierarchical planner: weight of the tactical plan's tracking variance to the target
    seed: int = 0  # seed of the sampling noise (each plan restarts from it: same inputs, same plan)
    compile: bool = False  # torch.compile the planner's iterations (CUDA graphs on a GPU); the first plan compiles
    impact: float = 1.0  # c of the square-root impact c·sigma·sqrt(|dw|·nav/ADV) per unit traded, charged by the
    # backtest and planned for where the store has volume (0: off; no volume: off)
    nav: float = 1e6  # portfolio value in the prices' currency, for the impact term


@dataclass
class BacktestConfig:
    rebalance: str = "W"  # rebalance calendar: D | W | M | Q | Y (first trading day of each period)
    cost_bps: float = 10.0  # cost per unit of turnover, in basis points
    lookback: int = 252  # trading days of trailing returns a strategy sees (strictly before the rebalance)


@dataclass
class WorldConfig:
    latent: int = 32  # Z: company latent size (projected from the frozen DynMIX representations)
    market_latent: int = 16  # M: pooled market latent size
    hidden: int = 64  # width of the encoder, transition and head MLPs
    loadings: int = 3  # k: factor loadings per company, so Sigma = B B' + diag(sigma_idio^2) (was `factors`)
    rollout: int = 5  # H: training rollout steps (return NLL at every h <= H, latent consistency at h < H)
    rho: float = 0.7  # weight of rollout step h is rho^(h-1) (TD-MPC2's temporal discount of the losses)
    consistency_coeff: float = 1.0  # weight of || next(z_t) - stopgrad(encode(t+1)) ||^2
    return_scale: float = 100.0  # returns are modelled in percent (log return x 100)
    epochs: int = 15  # passes over the training dates
    dates_per_batch: int = 64  # a batch is these many dates x every company
    lr: float = 2e-3  # peak AdamW learning rate (cosine decay)
    weight_decay: float = 1e-4
    seed: int = 0
    stack_share: float = 0.3  # last share of training origins held out of a second world model (world_stack.pt),
    # on whose out-of-sample forecasts dynmix_har's correction is fitted; 0: fitted on world.pt's in-sample ones
    log_every: int = 10  # steps between world_metrics.jsonl lines
    checkpoint_every: int = 200  # steps between checkpoints (and one at the end)


@dataclass
class JEPAConfig:
    horizon: int = 5  # H: the predictor maps the context at t to the target representations at t+1 .. t+H
    predictor_hidden: int = 128  # width of the predictor MLP
    horizon_dim: int = 16  # size of the learned horizon embedding fed to the predictor
    loss: str = "smooth_l1"  # smooth_l1 | mse: prediction error against the layer-normed targets
    reg: str = "sigreg"  # sigreg | vicreg: anti-collapse regulariser on the context representations
    reg_coeff: float = 0.05  # lambda: loss = (1 - lambda) * prediction + lambda * regulariser
    sigreg_slices: int = 256  # random directions of SIGReg
    epochs: int = 4  # passes over the training dates (small: the encoder starts from the trained f_I)
    date_stride: int = 8  # train on every k-th training date (neighbouring windows overlap by L - 1 days)
    dates_per_batch: int = 8  # a batch is these many dates x the companies alive on them
    lr: float = 2e-3  # peak AdamW learning rate (warm-up + cosine)
    weight_decay: float = 1e-4
    warmup_frac: float = 0.05  # share of steps of linear warm-up
    ema_momentum: tuple[float, float] = (0.996, 1.0)  # target-encoder EMA momentum, linear over training (I-JEPA)
    seed: int = 0
    log_every: int = 10  # steps between jepa_metrics.jsonl lines
    checkpoint_every: int = 200  # steps between checkpoints (and one at the end)


@dataclass
class DynMIXConfig:
    """The whole configuration of a run."""

    views: ViewsConfig = field(default_factory=ViewsConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    plan: PlanConfig = field(default_factory=PlanConfig)
    backtest: BacktestConfig = field(default_factory=BacktestConfig)
    world: WorldConfig = field(default_factory=WorldConfig)
    jepa: JEPAConfig = field(default_factory=JEPAConfig)

    def to_dict(self) -> dict[str, Any]:
        return _drop_none(asdict(self))


def _drop_none(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _drop_none(v) for k, v in d.items() if v is not None}
    if isinstance(d, tuple):
        return list(d)
    return d


# Keys renamed since runs were saved: (section, old) -> new. An old config.toml still loads.
RENAMED = {("model", "implicit_channels"): "implicit_width", ("world", "factors"): "loadings"}


def _renamed(data: dict[str, Any], where: str) -> dict[str, Any]:
    out = dict(data)
    for (section, old), new in RENAMED.items():
        if section == where and old in out:
            if new in out:
                raise DynMIXError(f"config [{where}]: {old!r} is the old name of {new!r}; give only {new!r}")
            out[new] = out.pop(old)
    return out


# Allowed values beyond the type, checked on load: (section, key) -> (low, high, low inclusive, high inclusive) or
# the choices of a string. Integers not listed must be >= 1 (sizes, counts, windows); seeds and checkpoint_every >= 0.
CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("loss", "objective"): OBJECTIVES, ("loss", "variance_target"): VARIANCE_TARGETS, ("train", "device"): DEVICES,
    ("plan", "method"): ("mppi", "cem"), ("backtest", "rebalance"): ("D", "W", "M", "Q", "Y"),
    ("jepa", "loss"): ("smooth_l1", "mse"), ("jepa", "reg"): ("sigreg", "vicreg"),
}
INF = float("inf")
RANGES: dict[tuple[str, str], tuple[float, float, bool, bool]] = {
    ("views", "factors"): (0, INF, True, True), ("world", "loadings"): (0, INF, True, True),
    ("model", "dropout"): (0, 1, True, False), ("loss", "gamma0"): (0, INF, False, True),
    ("loss", "gamma_lo"): (0, INF, False, True), ("loss", "gamma_hi"): (0, INF, False, True),
    ("loss", "temperature"): (0, INF, False, True), ("train", "train_frac"): (0, 1, False, True),
    ("plan", "temperature"): (0, INF, False, True), ("plan", "momentum"): (0, 1, True, False),
    ("plan", "noise_corr"): (0, 1, True, False), ("plan", "gross_limit"): (1, INF, True, True),
    ("plan", "target_vol"): (0, INF, False, True), ("world", "rho"): (0, 1, False, True),
    ("world", "return_scale"): (0, INF, False, True), ("jepa", "reg_coeff"): (0, 1, True, True),
    ("world", "stack_share"): (0, 1, True, False),
}
TRUE_FALSE = "true or false"
NON_NEGATIVE = ("coeff", "cost", "weight_decay", "lambda", "min_std", "max_std", "init_std", "risk_aversion")


def _type_name(annotation: str) -> str:
    return {"int": "an integer", "float": "a number", "str": "a string", "bool": TRUE_FALSE,
            "tuple[float, float]": "two numbers, e.g. [0.996, 1.0]"}.get(annotation.replace(" | None", ""),
                                                                           annotation)





def _range(section: str, name: str, annotation: str) -> tuple[float, float, bool, bool] | None:
    if (section, name) in RANGES:
        return RANGES[(section, name)]
    if name in ("seed", "checkpoint_every"):  # checkpoint_every = 0: no periodic checkpoints, only the last
        return (0, INF, True, True)
    if annotation.startswith("int"):
        return (1, INF, True, True)
    if name == "lr":
        return (0, INF, False, True)
    if name.endswith("_frac"):
        return (0, 1, True, False)
    if any(part in name for part in NON_NEGATIVE):
        return (0, INF, True, True)
    return None


def _checked(section: str, name: str, annotation: str, value: Any) -> Any:
    """`value` of [section] name, converted to the field's type; a DynMIXError naming the key and what is expected."""
    key = f"config [{section}] {name} = {value!r}"
    base = annotation.replace(" | None", "")
    if value is None and annotation.endswith("| None"):
        return None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if base == "int":
        if not (isinstance(value, int) and not isinstance(value, bool)):
            raise DynMIXError(f"{key}: expected {_type_name(base)}")
    elif base == "float":
        if not number or value != value or value in (INF, -INF):
            raise DynMIXError(f"{key}: expected a finite number")
        value = float(value)
    elif base == "str":
        if not isinstance(value, str):
            raise DynMIXError(f"{key}: expected a string")
        choices = CHOICES.get((section, name))
        if choices and value not in choices:
            raise DynMIXError(f"{key}: expected one of {', '.join(choices)}")
        return value
    elif base == "bool":
        if not isinstance(value, bool):
            raise DynMIXError(f"{key}: expected {TRUE_FALSE}")
        return value
    elif base.startswith("tuple"):
        if not (isinstance(value, list | tuple) and len(value) == 2
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)):
            raise DynMIXError(f"{key}: expected {_type_name(base)}")
        return tuple(float(v) for v in value)
    else:
        return value
    bounds = _range(section, name, base)
    if bounds is not None:
        lo, hi, lo_in, hi_in = bounds
        if (value < lo or (value == lo and not lo_in)) or (value > hi or (value == hi and not hi_in)):
            low = f"{'>=' if lo_in else '>'} {lo:g}"
            high = "" if hi == INF else f" and {'<=' if hi_in else '<'} {hi:g}"
            raise DynMIXError(f"{key}: expected {_type_name(base)} {low}{high}")
    return value


def _build(cls: Any, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise DynMIXError(f"config [{where}] = {data!r}: expected a table (a [{where}] section of keys)")
    data = _renamed(data, where)
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise DynMIXError(f"config [{where}]: unknown key(s) {unknown}; expected some of {sorted(known)}")
    kwargs: dict[str, Any] = {}
    default = cls()
    for name, value in data.items():
        current = getattr(default, name)
        if is_dataclass(current):
            kwargs[name] = _build(type(current), value, f"{where}.{name}" if where else name)
        else:
            kwargs[name] = _checked(where, name, str(known[name].type), value)
    out = replace(default, **kwargs)
    if where == "loss" and out.gamma_lo > out.gamma_hi:
        raise DynMIXError(f"config [loss] gamma_lo = {out.gamma_lo}, gamma_hi = {out.gamma_hi}: expected gamma_lo <= "
                          "gamma_hi")
    return out


def config_from_dict(data: dict[str, Any]) -> DynMIXConfig:
    return _build(DynMIXConfig, data, "")  # type: ignore[no-any-return]


def load_config(path: str | Path | None) -> DynMIXConfig:
    """Defaults, overridden by a TOML file when given."""
    if path is None:
        return DynMIXConfig()
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise DynMIXError(f"config file {path} not found") from e
    except tomllib.TOMLDecodeError as e:
        raise DynMIXError(f"config file {path}: not valid TOML ({e})") from e
    except (OSError, UnicodeDecodeError) as e:
        raise DynMIXError(f"config file {path}: cannot be read ({e})") from e
    try:
        return config_from_dict(data)
    except DynMIXError as e:
        raise DynMIXError(f"config file {path}: {e}") from e


def save_config(cfg: DynMIXConfig, path: str | Path) -> None:
    write_text(tomli_w.dumps(cfg.to_dict()), path)
