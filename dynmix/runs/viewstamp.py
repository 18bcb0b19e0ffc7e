"""What a model was trained on in HOME/views, checked in one place.

Two levels: the *signature* (feature names, channels, window) decides whether a saved model can run on the views
at all; the *stamp* (`views_stamp`: a hash of views.json and of each table's size and footer, which holds its
row-group statistics) changes whenever the views are rebuilt from other data. Both an exact resume and
inference need the same stamp: a run never mixes its model with other data. A run also records the views'
generation and the store snapshot it was built from, so the error says whether the data changed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from dynmix.errors import DynMIXError
from dynmix.views.generation import MANIFEST, read_generation, resolve_views
from dynmix.views.tensors import ViewTensors

FOOTER_BYTES = 1 << 16  # a parquet file's tail: its footer with the schema and row-group statistics
STAMP_VERSION = 2  # 2: views.json hashed without its build time; records without it hold the first stamp


def views_stamp(views_dir: str | Path, version: int = STAMP_VERSION) -> str:
    """A short hash that changes when the views in `views_dir` change ('' when there are none).

    Version 2 (current) leaves out views.json's `built_at` and the generation manifest, so building the same data
    again gives the same stamp; version 1 is the stamp of runs recorded before it.
    """
    views_dir = resolve_views(views_dir)
    files = sorted(p for p in views_dir.glob("*") if p.is_file() and p.suffix in (".json", ".parquet")
                   and (version < 2 or p.name != MANIFEST))
    if not files:
        return ""
    h = hashlib.sha256()
    for p in files:
        size = p.stat().st_size
        if p.suffix == ".json" and version >= 2:
            text = p.read_bytes()
            try:
                obj = json.loads(text)
            except json.JSONDecodeError:
                obj = None
            if isinstance(obj, dict):
                obj.pop("built_at", None)
                text = json.dumps(obj, sort_keys=True).encode()
            h.update(f"{p.name}:".encode())
            h.update(text)
            continue
        h.update(f"{p.name}:{size}:".encode())
        with open(p, "rb") as fh:
            if p.suffix == ".json":
                h.update(fh.read())
            else:
                fh.seek(max(0, size - FOOTER_BYTES))
                h.update(fh.read())
    return h.hexdigest()[:16]


def views_signature(vt: ViewTensors) -> dict[str, Any]:
    """What a model's shapes depend on in the views: feature names, channels, window."""
    return {"feature_names": list(vt.feature_names), "channels": list(vt.channels), "window": int(vt.window)}


def views_record(vt: ViewTensors, views_dir: str | Path) -> dict[str, Any]:
    """The signature and the stamp of the loaded views, their generation and the store snapshot it was built from:
    what a run and its checkpoints record.
    """
    gen = read_generation(views_dir)
    return {**views_signature(vt), "views_stamp": views_stamp(views_dir), "stamp_version": STAMP_VERSION,
            "views_generation": str(gen.get("generation", "")), "store_snapshot": str(gen.get("store_snapshot", ""))}


def stamp_changes(saved: dict[str, Any], views_dir: str | Path) -> str:
    """'' when the views in `views_dir` are those of the record `saved` (or it holds no stamp), else what changed."""
    if not saved.get("views_stamp"):
        return ""
    now = views_stamp(views_dir, int(saved.get("stamp_version", 1)))
    if now == saved["views_stamp"]:
        return ""
    gen = read_generation(views_dir)
    was_gen, now_gen = saved.get("views_generation") or "?", gen.get("generation") or "?"
    text = f"views stamp {saved['views_stamp']} -> {now}, generation {was_gen} -> {now_gen}"
    if saved.get("store_snapshot") and gen.get("store_snapshot") and saved["store_snapshot"] != gen["store_snapshot"]:
        text += " (built from other data: the store changed)"
    return text


def signature_changes(saved: dict[str, Any], vt: ViewTensors) -> str:
    """'' when the views match what a model was trained on, else what changed (and, for the implicit channels, the
    setting that decides them).
    """
    now = views_signature(vt)
    changed = [k for k in now if k in saved and saved.get(k) != now[k]]
    parts = []
    for k in changed:
        was, new = saved.get(k), now[k]
        if isinstance(was, list) and isinstance(new, list):
            parts.append(f"{k}: {len(was)} trained on, {len(new)} now (added {[x for x in new if x not in was]}, "
                         f"gone {[x for x in was if x not in new]})")
        else:
            parts.append(f"{k}: {was!r} trained on, {new!r} now")
    if "channels" in changed:
        parts.append("the factor channels come from [views] factors (0 for the company and market channels only)")
    return "; ".join(parts)


def check_views(saved: dict[str, Any], vt: ViewTensors, views_dir: str | Path, what: str, *,
                exact: bool = False) -> None:
    """Raise when the views in `views_dir` cannot serve `what` (e.g. 'run X'): another signature, or another stamp
    (other data; for records from before stamp version 2 only an exact resume checks the stamp).
    """
    if changes := signature_changes(saved, vt):
        raise DynMIXError(f"the views in {views_dir} differ from those {what} was trained on ({changes}): rebuild "
                          "the views with its settings or train again")
    changed = stamp_changes(saved, views_dir)
    if changed and exact:
        raise DynMIXError(f"the views in {views_dir} changed since {what} started ({changed}); cannot resume exactly: "
                          "rebuild the views from the data it started on, or train a new run")
    if changed and int(saved.get("stamp_version", 1)) >= 2:  # records before v2 stamped build times: no refusal
        raise DynMIXError(f"the views in {views_dir} changed since {what} was trained ({changed}): its model would "
                          "run on other data. Rebuild the views from the data it was trained on, or train a new run")
