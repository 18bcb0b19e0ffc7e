"""`dynmix demo`: the whole product on the embedded data — sample -> views -> train (market-vol and the static
ablation) -> evaluate -> forecast -> plan — with a summary printed at each step.

Each stage is an ordinary library call, so a failing stage says which one and keeps what was done before it.
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
from dynmix.train.job import train
from dynmix.views.build import build_views
from dynmix.workspace import Workspace

CONFIG = Path(__file__).parent / "configs" / "demo.toml"


def demo_config(epochs: int | None = None, device: str | None = None, path: Path = CONFIG) -> DynMIXConfig:
    """The pipeline's TOML config (`path`), with the command line's overrides."""
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


def _optional(name: str) -> Any:
    """The forecasting/planning stages, when that part of DynMIX is installed."""
    import importlib

    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name != name:
            raise
        return None


def run_demo(ws: Workspace, *, epochs: int | None = None, device: str | None = None, forecast: bool = True,
             console: Console | None = None) -> dict[str, Any]:
    """Run every stage on the embedded sample; return the run folders and the final report."""
    console = console or Console(highlight=False)
    cfg = demo_config(epochs, device)
    store = Store(ws.store)
    summary = stage(console, "1/6 data: embedded S&P 500 sample", lambda: load_sample(store))
    console.print(summary.line(), markup=False)
    views = stage(console, "2/6 views: explicit + implicit", lambda: build_views(store, ws.views, cfg.views))
    console.print(f"views: {views.n_tickers} companies x {views.n_dates} dates, {len(views.feature_names)} explicit "
                  f"features, market = {views.market_source} ({views.first_date} -> {views.last_date})", markup=False)

    run_dir, static_dir, report = train_and_evaluate(ws, cfg, "demo", console, steps=("3/6", "4/6"))
    out: dict[str, Any] = {"run": run_dir, "static_run": static_dir, "report": report}
    fc = _optional("dynmix.evaluation.forecast") if forecast else None
    if fc is not None and hasattr(fc, "run_forecast"):
        res = stage(console, "5/6 forecast: surprise index and volatility vs HAR-RV / GARCH",
                     lambda: fc.run_forecast(ws, run_dir, progress=True))
        console.print(fc.forecast_table(res), markup=False, soft_wrap=True)
        svc = _optional("dynmix.planning.service")
        if svc is not None and hasattr(svc, "run_plan"):
            plan = stage(console, "6/6 plan: world-model MPC vs skfolio baselines",
                          lambda: svc.run_plan(ws, run_dir, progress=True))
            console.print(svc.planning_table(plan), markup=False, soft_wrap=True)
    console.rule("[bold]done")
    console.print(f"Explore it: dynmix --home {ws.home} dashboard", markup=False)
    return out
