"""The `dynmix` command line (typer). One module per command group; this file wires them together."""

from __future__ import annotations

import os
import sys

from dynmix.cli.app import app


def main() -> None:
    """Run the CLI; a Ctrl-C outside a command's own handler (argument parsing, a command's imports) ends with one
    line and exit code 130, not a traceback.

    After a Ctrl-C the process ends at once (os._exit): every `finally` and `with` on the way out has run (temporary
    files removed, the writer lock let go), and what is skipped is the interpreter's teardown of torch and polars,
    which takes seconds on a busy machine and would print a traceback on a second Ctrl-C.
    """
    try:
        app()
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C): nothing was written", file=sys.stderr)
        _exit_now(130)
    except SystemExit as e:
        if e.code == 130:
            _exit_now(130)
        raise


def _exit_now(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


__all__ = ["app", "main"]
