"""The `dynmix` command line (typer). One module per command group; this file wires them together."""

from __future__ import annotations

from dynmix.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
