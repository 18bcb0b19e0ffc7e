"""`dynmix views build`: the explicit and implicit company views, from HOME/store/ into HOME/views/."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dynmix.cli.app import app
from dynmix.cli.common import console, friendly, workspace, writes
from dynmix.config import load_config
from dynmix.data.store import Store
from dynmix.views.build import build_views

views_app = typer.Typer(help="Build the company views (explicit features, implicit return windows) in HOME/views/.",
                        no_args_is_help=True)
app.add_typer(views_app, name="views")


@views_app.command("build")
@friendly
@writes("dynmix views build")
def build_cmd(
    config: Annotated[Path | None, typer.Option("--config", help="TOML config; its \\[views] section is used.",
                                                show_default=False)] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide the progress display.")] = False,
) -> None:
    """Build both views from the store (idempotent: the same store gives the same files)."""
    cfg = load_config(config).views
    ws = workspace()
    summary = build_views(Store(ws.store), ws.views, cfg, progress=not no_progress)

    table = Table(title=f"views in {ws.views}", show_header=False, box=None)
    table.add_row("companies", str(summary.n_tickers))
    table.add_row("dates", f"{summary.n_dates} ({summary.first_date} .. {summary.last_date})")
    table.add_row("explicit features", str(len(summary.feature_names)))
    table.add_row("implicit window", f"{cfg.window} days x {2 + cfg.factors} channels (company, market, {cfg.factors} "
                  f"statistical factors; at least {cfg.min_window_obs} observed)")
    table.add_row("market", summary.market_source)
    table.add_row("valid samples", f"{summary.n_valid:,}")
    table.add_row("seconds", f"{summary.seconds:.1f}")
    console.print(table)
    if summary.n_valid == 0:
        from dynmix.runs.split import too_short
        from dynmix.views.tensors import load_view_tensors  # torch: only when the command runs

        console.print(f"warning: {too_short(load_view_tensors(ws.views), 0)}", markup=False, style="yellow")
