"""`dynmix pipeline` and `dynmix demo`: every step after the data — views -> train (the configured variance
target and the static ablation) -> evaluate -> JEPA and world model -> forecast -> plan — with a summary printed
at each step. `demo` is the embedded sample data followed by this pipeline.

Each step is an ordinary library call, so a failing step says which one and keeps what was done before it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from dynmix.config import DynMIXConfig, load_config
from dynmix.data.sources.sample import load_sample
from dynmix.data.store import Store
from dynmix.evaluation.report import evaluate_run, headline_table
from dynmix.forecast.service import forecast_table, run_forecast
from dynmix.planning.service import planning_table, run_plan
from dynmix.train.jepa import fit_jepa
from dynmix.train.job import train
from dynmix.train.world import fit_world
from dynmix.views.build import build_views
from dynmix.workspace import Workspace

CONFIG = Path(__file__).parent / "configs" / "demo.toml"


def demo_config(epochs: int | None = None, device: str | None = None, path: Path | None = CONFIG) -> DynMIXConfig:
    """The pipeline's TOML config (`path`; None: the defaults), with the command line's overrides."""
    cfg = load_config(path)
    if epochs is not None:
        cfg = replace(cfg, train=replace(cfg.train, epochs=epochs))
    if device is not None:
        cfg = replace(cfg, train=replace(cfg.train, device=device))
    return cfg


def stage(console: Console, title: str, fn: Callable[[], Any]) -> Any:
    console.rule(f"[bold]{title}")
    t0 = time.perf_counter()
    out = fn()
    console.print(f"[dim]{title}: {time.perf_counter() - t0:.1f} s[/]")
    return out


def train_and_evaluate(ws: Workspace, cfg: DynMIXConfig, tag: str, console: Console, *,
                       steps: tuple[str, str] = ("3/4", "4/4")) -> tuple[Path, Path, dict[str, Any]]:
    """Train the static ablation, then the configured (market-vol) run; evaluate the latter against both."""

    def _train_both() -> tuple[Path, Path]:
        # the ablation first, so that the main (market-vol) run is the newest: `latest` and the dashboard pick it
        static_cfg = replace(cfg, loss=replace(cfg.loss, variance_target="static"))
        static = train(ws, static_cfg, run_name=f"{tag}-static")
        dyn = train(ws, cfg, run_name=f"{tag}-{cfg.loss.variance_target}")
        return dyn, static

    run_dir, static_dir = stage(console, f"{steps[0]} train: {cfg.loss.variance_target} and static variance targets",
                                 _train_both)
    console.print(f"run: {run_dir}\nablation: {static_dir}", markup=False)
    report = stage(console, f"{steps[1]} evaluate (test period, against baselines)",
                    lambda: evaluate_run(ws, run_dir, compare=static_dir))
    console.print(headline_table(report), markup=False, soft_wrap=True)
    return run_dir, static_dir, report


def run_pipeline(ws: Workspace, cfg: DynMIXConfig, *, tag: str = "run", forecast: bool = True,
                 console: Console | None = None, first: int = 1, of: int = 6) -> dict[str, Any]:
    """Views -> train -> evaluate -> JEPA + world model -> forecast -> plan on what HOME/store holds.

    `first`/`of` number the steps (the demo's data step comes before). Returns the run folders and the reports.
    """
    console = console or Console(highlight=False)
    n = first

    def number() -> str:
        nonlocal n
        n += 1
        return f"{n - 1}/{of}"

    def title(text: str) -> str:
        return f"{number()} {text}"

    views = stage(console, title("views: explicit + implicit"), lambda: build_views(Store(ws.store), ws.views,
                                                                                   cfg.views))
    console.print(f"views: {views.n_tickers} companies x {views.n_dates} dates, {len(views.feature_names)} explicit "
                  f"features, market = {views.market_source} ({views.first_date} -> {views.last_date})", markup=False)
    steps = (number(), number())
    run_dir, static_dir, report = train_and_evaluate(ws, cfg, tag, console, steps=steps)
    out: dict[str, Any] = {"run": run_dir, "static_run": static_dir, "report": report}
    if forecast:
        stage(console, title("train the world model and the temporal JEPA of the run"),
              lambda: (fit_world(ws, run_dir), fit_jepa(ws, run_dir)))
        res = stage(console, title("forecast: surprise index and volatility vs HAR-RV / GARCH"),
                    lambda: run_forecast(ws, run_dir, progress=True))
        console.print(forecast_table(res), markup=False, soft_wrap=True)
        plan = stage(console, title("plan: world-model MPC vs skfolio baselines"),
                     lambda: run_plan(ws, run_dir, progress=True))
        console.print(planning_table(plan), markup=False, soft_wrap=True)
        out |= {"forecast": res, "plan": plan}
    console.rule("[bold]done")
    console.print(f"Explore it: dynmix --home {ws.home} dashboard", markup=False)
    return out


def run_demo(ws: Workspace, *, epochs: int | None = None, device: str | None = None, forecast: bool = True,
             console: Console | None = None) -> dict[str, Any]:
    """The embedded sample, then the pipeline with the demo's config."""
    console = console or Console(highlight=False)
    cfg = demo_config(epochs, device)
    summary = stage(console, f"1/{7 if forecast else 4} data: embedded S&P 500 sample",
                    lambda: load_sample(Store(ws.store)))
    console.print(summary.line(), markup=False)
    return run_pipeline(ws, cfg, tag="demo", forecast=forecast, console=console, first=2, of=7 if forecast else 4)
