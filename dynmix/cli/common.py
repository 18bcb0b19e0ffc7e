"""What every command shares: the workspace, the console, and turning DynMIX errors into clean exits."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from dynmix.errors import DynMIXError
from dynmix.workspace import Workspace

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

_state: dict[str, Path | None] = {"home": None}

F = TypeVar("F", bound=Callable[..., Any])


def set_home(home: Path | None) -> None:
    _state["home"] = home


def workspace() -> Workspace:
    return Workspace.at(_state["home"])


def friendly(fn: F) -> F:
    """Turn a DynMIXError into a red one-line message and exit code 1 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DynMIXError as e:
            err_console.print(f"[bold red]error:[/] {e}", soft_wrap=True)
            raise typer.Exit(1) from e

    return wrapper  # type: ignore[return-value]
