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
    common.set_home(home)


def _register() -> None:
    """Import every command module; each adds its commands to `app` (or a sub-app) on import."""
    import importlib

    for name in ("data", "views", "train", "evaluate", "forecast", "plan", "dashboard", "demo"):
        try:
            importlib.import_module(f"dynmix.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"dynmix.cli.{name}":
                raise


_register()
