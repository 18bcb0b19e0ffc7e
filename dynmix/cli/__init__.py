"""The `dynmix` command line (typer). One module per command group; this file wires them together."""

from __future__ import annotations

import ctypes
import os
import sys

M_ARENA_MAX = -8  # glibc's mallopt parameter


def _few_malloc_arenas(n: int = 2) -> None:
    """At most `n` glibc malloc arenas (glibc's default: 8 per core), set before the imports start threads: the
    views build's worker threads then reuse the memory the others freed instead of each arena keeping its own
    (benchmarks/RESULTS.md, section 1). A user's MALLOC_ARENA_MAX or GLIBC_TUNABLES wins; not glibc: nothing.
    """
    if "MALLOC_ARENA_MAX" in os.environ or "GLIBC_TUNABLES" in os.environ:
        return
    try:
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, n)
    except (OSError, AttributeError, TypeError):
        pass


_few_malloc_arenas()

from dynmix.cli.app import app  # noqa: E402  (after the arenas are capped)


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
