"""HOME/views as one generation: built in a temporary folder, swapped in with one rename.

    HOME/.views.generations/<gen>/        one complete build: views.json, explicit/returns/market.parquet,
                                         generation.json (its id, the store snapshot it came from, every file's
                                         size and SHA-256)
    HOME/.views.generations/<gen>.building-*  a build in progress (removed at the next build when left by a killed one)
    HOME/views -> .views.generations/<gen>  a symbolic link, replaced by one `os.replace`

A reader resolves the link once (`resolve_views`) and reads every file from that generation, so it sees the old
views or the new ones, never a mix; the previous generation is kept until the next build, so a reader that started
before a swap finishes on the files it began with. A views folder from before generations (a plain folder) is moved
into HOME/.views.generations/ at the first build.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

from dynmix.errors import DynMIXError
from dynmix.io import write_json

MANIFEST = "generation.json"
BUILDING = ".building-"
KEEP = 2  # the current generation and the one before it (for readers that started before the last swap)


def generations_dir(views_dir: Path) -> Path:
    return views_dir.parent / f".{views_dir.name}.generations"


def new_generation_id() -> str:
    return f"{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}"


def clean_leftovers(views_dir: Path) -> list[Path]:
    """Remove the folders of builds that never finished and stray temporary files; returns what was removed.

    Call only while holding the workspace's writer lock (no build is running then).
    """
    removed: list[Path] = []
    gens = generations_dir(views_dir)
    if gens.is_dir():
        for p in gens.iterdir():
            if BUILDING in p.name:
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
    link_tmp = views_dir.parent / f".{views_dir.name}.link-tmp"
    if link_tmp.is_symlink():
        link_tmp.unlink()
        removed.append(link_tmp)
    if views_dir.is_dir() and not views_dir.is_symlink():  # the plain folder of older versions: torn temp files
        for p in views_dir.glob(".*.tmp"):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def begin(views_dir: Path) -> tuple[str, Path]:
    """(generation id, empty folder to build it in): leftovers of killed builds are removed first."""
    clean_leftovers(views_dir)
    gen = new_generation_id()
    tmp = generations_dir(views_dir) / f"{gen}{BUILDING}{os.getpid()}"
    tmp.mkdir(parents=True)
    return gen, tmp


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class GrowingDigest:
    """The SHA-256 of a file that another thread is still appending to, hashed in a thread as it grows.

    The build's outputs are hashed beside the build instead of read again at the end (on 2 cores the second pass
    leaves a third of a core idle). Only for append-only writers (Parquet: the footer comes last). `close()` once the
    writer has closed the file: it waits for the hash of the rest and returns the hex digest.
    """

    def __init__(self, path: Path, block: int = 1 << 22) -> None:
        self._fh = open(path, "rb", buffering=0)  # noqa: SIM115 - read by the thread, closed by close()
        self._done = threading.Event()
        self._hash = hashlib.sha256()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._follow, args=(block,), name="views-digest", daemon=True)
        self._thread.start()

    def _follow(self, block: int) -> None:
        try:
            while True:
                finished = self._done.is_set()  # read before the read: an empty read after it is the true end
                data = self._fh.read(block)
                if data:
                    self._hash.update(data)  # releases the GIL for large blocks
                elif finished:
                    return
                else:
                    self._done.wait(0.02)
        except BaseException as e:  # noqa: BLE001 - raised again by close() in the writer's thread
            self._error = e

    def close(self) -> str:
        self._done.set()
        self._thread.join()
        self._fh.close()
        if self._error is not None:
            raise self._error
        return self._hash.hexdigest()


def commit(views_dir: Path, gen: str, tmp: Path, store_snapshot: str, digests: dict[str, str] | None = None) -> Path:
    """Write the generation's manifest, then make it the views with one rename of the link; returns its folder.

    `digests`: SHA-256 of files hashed as they were written (`GrowingDigest`); the others are read here.
    """
    known = digests or {}
    files = {p.name: {"bytes": p.stat().st_size, "sha256": known.get(p.name) or file_digest(p)}
             for p in sorted(tmp.iterdir()) if p.is_file() and not p.name.startswith(".")}
    write_json({"generation": gen, "store_snapshot": store_snapshot,
                "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "files": files}, tmp / MANIFEST)
    gens = generations_dir(views_dir)
    final = gens / gen
    os.replace(tmp, final)
    if views_dir.exists() and not views_dir.is_symlink():  # an older plain folder: kept as a generation
        os.replace(views_dir, gens / f"{new_generation_id()}-before-generations")
    link_tmp = views_dir.parent / f".{views_dir.name}.link-tmp"
    link_tmp.unlink(missing_ok=True)
    os.symlink(Path(gens.name) / gen, link_tmp, target_is_directory=True)
    os.replace(link_tmp, views_dir)  # the swap: readers see the old generation or this one
    _prune(views_dir, keep={gen})
    return final


def drop_stale(views_dir: Path) -> None:
    """Remove the generations before the current one as a build starts: the disk then holds two during a build,
    not three, and the build's writes reuse the memory their cached pages held (fresh pages cost more).
    """
    if views_dir.is_symlink():
        _prune(views_dir, keep={resolve_views(views_dir).name}, total=1)


def _prune(views_dir: Path, keep: set[str], total: int = KEEP) -> None:
    """Remove the oldest finished generations outside `keep`, leaving `total` in all."""
    gens = generations_dir(views_dir)
    done = sorted((p for p in gens.iterdir() if p.is_dir() and BUILDING not in p.name), key=lambda p: p.name)
    old = [p for p in done if p.name not in keep]
    for p in old[: max(0, len(old) - (total - len(keep)))]:
        shutil.rmtree(p, ignore_errors=True)


def resolve_views(views_dir: str | Path) -> Path:
    """The folder of the current generation (the link resolved once), or `views_dir` itself when it is a plain
    folder; readers read every file from the folder returned.
    """
    views_dir = Path(views_dir)
    if views_dir.is_symlink():
        target = views_dir.resolve()
        if not target.is_dir():
            raise DynMIXError(f"the views link {views_dir} points at a missing generation ({target}): run "
                              "`dynmix views build` again")
        return target
    return views_dir


def read_generation(views_dir: str | Path) -> dict[str, Any]:
    """The current generation's manifest ({} for views built before generations, or none)."""
    path = resolve_views(views_dir) / MANIFEST
    if not path.exists():
        return {}
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DynMIXError(f"{path}: the views' manifest cannot be read ({e}); run `dynmix views build` again") from e
    return obj if isinstance(obj, dict) else {}


def check_generation(folder: Path, *, digests: bool = False) -> None:
    """Raise when a generation's files are not those its manifest lists (missing, other size, other content)."""
    manifest = read_generation(folder)
    for name, info in manifest.get("files", {}).items():
        path = folder / name
        what = None
        if not path.is_file():
            what = "is missing"
        elif path.stat().st_size != info.get("bytes"):
            what = f"has {path.stat().st_size} bytes, the build wrote {info.get('bytes')}"
        elif digests and file_digest(path) != info.get("sha256"):
            what = "differs from what the build wrote (SHA-256)"
        if what:
            raise DynMIXError(f"{path} {what}: the views are damaged; run `dynmix views build` again")


__all__ = ["MANIFEST", "GrowingDigest", "begin", "check_generation", "clean_leftovers", "commit", "drop_stale",
           "read_generation", "resolve_views"]
