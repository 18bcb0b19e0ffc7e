"""The root typer app, the global --home option and the registration of every command group."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dynmix.cli import common

app = typer.Typer(
    name="dynmix",
    help="DynMIX: company embeddings from explicit and implicit views of the market.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    home: Annotated[
        Path | None,
        typer.Option("--home", help="Workspace folder (else $DYNMIX_HOME, else ./data).", show_default=False),
    ] = None,
) -> None:
    if home is not None and home.exists() and not home.is_dir():
        raise typer.BadParameter(f"{home} exists and is not a folder: expected a workspace folder", param_hint="--home")
    common.set_home(home)


# Every command module adds its commands to `app` (or a sub-app) on import; imported at the end of this module.
from dynmix.cli import (  # noqa: E402, F401
    compare,
    dashboard,
    data,
    demo,
    evaluate,
    forecast,
    pipeline,
    plan,
    train,
    views,
)
