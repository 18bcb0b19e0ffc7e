"""What every command shares: the workspace, the console, and turning DynMIX errors into clean exits."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from dynmix.errors import DynMIXError, Interrupted
from dynmix.lock import writer_lock
from dynmix.workspace import Workspace

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

_state: dict[str, Path | None] = {"home": None}

F = TypeVar("F", bound=Callable[..., Any])


def set_home(home: Path | None) -> None:
    _state["home"] = home


def workspace() -> Workspace:
    return Workspace.at(_state["home"])


@contextmanager
def writing(what: str) -> Iterator[None]:
    """Hold the workspace's writer lock (one writing command at a time; a second one waits, then refuses)."""
    with writer_lock(workspace().home, what,
                     on_wait=lambda m: err_console.print(f"[yellow]{escape(m)}[/]", soft_wrap=True)):
        yield


def writes(what: str) -> Callable[[F], F]:
    """Decorator: the command runs under the workspace's writer lock (`what` names it to waiting writers)."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with writing(what):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return wrap


def friendly(fn: F) -> F:
    """Turn a DynMIXError into a red one-line message and exit code 1, Ctrl-C into a line and 130 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Interrupted as e:
            err_console.print(f"[bold yellow]interrupted (Ctrl-C):[/] {escape(str(e))}", soft_wrap=True)
            raise typer.Exit(130) from e
        except DynMIXError as e:
            err_console.print(f"[bold red]error:[/] {escape(str(e))}", soft_wrap=True)
            raise typer.Exit(1) from e
        except KeyboardInterrupt as e:  # every write is a rename of a finished file: nothing is left half-written
            err_console.print("[bold yellow]interrupted (Ctrl-C):[/] steps that finished are kept, the step under way "
                              "left the previous files as they were", soft_wrap=True)
            raise typer.Exit(130) from e

    return wrapper  # type: ignore[return-value]
