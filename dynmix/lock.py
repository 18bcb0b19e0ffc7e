"""One writer at a time per workspace: an advisory file lock on HOME/.dynmix.lock.

Every command that writes the store, the views or a run holds it for its whole duration, so two writers never
interleave their read-modify-write steps (two concurrent imports both keep all their rows). A second writer waits,
saying who holds the lock, and gives up with a clear error after `timeout` seconds (`$DYNMIX_LOCK_TIMEOUT`, default
300). The lock is re-entrant within a thread (a pipeline holds it while its stages take it again) and released by the
operating system when its process dies, so a killed command never leaves the workspace locked.

Readers (`data status`, the dashboard) take no lock: every file is replaced by one rename and the views are swapped in
as one generation, so a reader sees the old state or the new one, never a mix.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from dynmix.errors import DynMIXError

LOCK_NAME = ".dynmix.lock"
TIMEOUT_ENV = "DYNMIX_LOCK_TIMEOUT"
DEFAULT_TIMEOUT = 300.0
POLL_S = 0.1

_held = threading.local()  # per thread: {lock path: depth}


class WorkspaceBusy(DynMIXError):
    """Another command kept the workspace's writer lock past the timeout."""


def lock_timeout() -> float:
    raw = os.environ.get(TIMEOUT_ENV, "")
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError as e:
        raise DynMIXError(f"${TIMEOUT_ENV}={raw!r}: expected a number of seconds") from e
    if value < 0:
        raise DynMIXError(f"${TIMEOUT_ENV}={raw!r}: expected a number of seconds >= 0")
    return value


def _depths() -> dict[str, int]:
    if not hasattr(_held, "depth"):
        _held.depth = {}
    return _held.depth  # type: ignore[no-any-return]


def _holder(fh: object) -> str:
    try:
        fh.seek(0)  # type: ignore[attr-defined]
        text = fh.read().strip()  # type: ignore[attr-defined]
    except OSError:
        return ""
    return str(text)


def _non_leader_rank() -> bool:
    """True in a torchrun worker other than rank 0: rank 0 holds the lock for the whole job."""
    rank = os.environ.get("RANK", "")
    return rank.isdigit() and int(rank) != 0


def open_home(home: str | Path) -> Path:
    """HOME, created when missing; a clear error when it cannot be a folder (e.g. --home /dev/null)."""
    home = Path(home)
    if home.exists() and not home.is_dir():
        raise DynMIXError(f"workspace {home}: exists and is not a folder; give --home (or $DYNMIX_HOME) a folder")
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DynMIXError(f"workspace {home}: cannot create the folder ({e.strerror}); give --home (or "
                          "$DYNMIX_HOME) a writable folder") from e
    return home


@contextmanager
def writer_lock(home: str | Path, what: str, *, timeout: float | None = None,
                on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the workspace's writer lock while the block runs (`what` names the command for waiting writers)."""
    if _non_leader_rank():
        yield
        return
    home = open_home(home)
    path = home / LOCK_NAME
    key = str(path.resolve())
    depths = _depths()
    if depths.get(key, 0) > 0:
        depths[key] += 1
        try:
            yield
        finally:
            depths[key] -= 1
        return
    limit = lock_timeout() if timeout is None else timeout
    try:
        fh = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the whole block
    except OSError as e:
        raise DynMIXError(f"workspace {home}: cannot open its lock file {path} ({e.strerror})") from e
    try:
        start = time.monotonic()
        told = False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(fh) or "another dynmix command"
                waited = time.monotonic() - start
                if waited >= limit:
                    raise WorkspaceBusy(
                        f"workspace {home} is busy: {holder} is writing it; `{what}` waited {waited:.0f} s and did "
                        f"nothing. Run it again when that command ends (or wait longer with ${TIMEOUT_ENV}=SECONDS)"
                    ) from None
                if not told:
                    message = f"waiting for {holder} to finish writing {home} (at most {limit:.0f} s) …"
                    (on_wait or _print_wait)(message)
                    told = True
                time.sleep(POLL_S)
        fh.seek(0)
        fh.truncate()
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        fh.write(f"`{what}` (pid {os.getpid()}, since {now})\n")
        fh.flush()
        depths[key] = 1
        try:
            yield
        finally:
            depths[key] = 0
            try:
                fh.seek(0)
                fh.truncate()
                fh.flush()
            except OSError:
                pass
            fcntl.flock(fh, fcntl.LOCK_UN)
    finally:
        fh.close()


def _print_wait(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


__all__ = ["LOCK_NAME", "TIMEOUT_ENV", "WorkspaceBusy", "open_home", "writer_lock"]
