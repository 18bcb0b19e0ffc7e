"""`dynmix data …`: get market data into the store. Each source's commands live in their own module."""

from __future__ import annotations

import typer

from dynmix.cli.app import app

data_app = typer.Typer(help="Get market data into HOME/store/ (sample, import, refresh, synth, status).",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")

# Each source's module adds its commands to `data_app` on import.
from dynmix.cli import data_local, data_refresh, data_synth  # noqa: E402, F401
