"""Errors that speak to the user: what file, which row, what was expected."""

from __future__ import annotations

from pathlib import Path


class DynMIXError(Exception):
    """Base class for every error DynMIX raises on purpose."""


class Interrupted(DynMIXError):
    """A Ctrl-C that a command caught to say what it kept (a checkpoint, say): the CLI exits with 130, as for any
    Ctrl-C, and prints the message.
    """


class DataError(DynMIXError):
    """Bad input data. Names the file, the row (1-based line in the file when known) and what was expected."""

    def __init__(self, message: str, *, file: str | Path | None = None, row: int | None = None) -> None:
        self.file = str(file) if file is not None else None
        self.row = row
        where = []
        if self.file is not None:
            where.append(self.file)
        if row is not None:
            where.append(f"row {row}")
        prefix = (", ".join(where) + ": ") if where else ""
        super().__init__(prefix + message)
