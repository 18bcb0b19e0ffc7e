"""`dynmix data …`: get market data into the store. Each source's commands live in their own module."""

from __future__ import annotations

import importlib

import typer

from dynmix.cli.app import app

data_app = typer.Typer(help="Get market data into HOME/store/ (sample, import, refresh, synth, status).",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")

for _name in ("data_local", "data_refresh", "data_synth"):
    try:
        importlib.import_module(f"dynmix.cli.{_name}")
    except ModuleNotFoundError as _e:
        if _e.name != f"dynmix.cli.{_name}":
            raise
