"""What a model was trained on in HOME/views, checked in one place.

Two levels: the *signature* (feature names, channels, window) decides whether a saved model can run on the views
at all; the *stamp* (`views_stamp`: a hash of views.json and of each table's size and footer, which holds its
row-group statistics) changes whenever the views are rebuilt from other data. An exact resume needs the same
stamp; inference needs the same signature and notes a changed stamp.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from dynmix.errors import DynMIXError
from dynmix.views.tensors import ViewTensors

FOOTER_BYTES = 1 << 16  # a parquet file's tail: its footer with the schema and row-group statistics


def views_stamp(views_dir: str | Path) -> str:
    """A short hash that changes when the views in `views_dir` change ('' when there are none)."""
    views_dir = Path(views_dir)
    files = sorted(p for p in views_dir.glob("*") if p.is_file() and p.suffix in (".json", ".parquet"))
    if not files:
        return ""
    h = hashlib.sha256()
    for p in files:
        size = p.stat().st_size
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
    """The signature and the stamp of the loaded views: what a run and its checkpoints record."""
    return {**views_signature(vt), "views_stamp": views_stamp(views_dir)}


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
    """Raise when the views in `views_dir` cannot serve `what` (e.g. 'run X'): another signature, or with `exact`
    (a resume) another stamp.
    """
    if changes := signature_changes(saved, vt):
        raise DynMIXError(f"the views in {views_dir} differ from those {what} was trained on ({changes}): rebuild "
                          "the views with its settings or train again")
    if exact and saved.get("views_stamp") and saved["views_stamp"] != views_stamp(views_dir):
        raise DynMIXError(f"the views in {views_dir} changed since {what} started (views stamp "
                          f"{saved['views_stamp']} -> {views_stamp(views_dir)}); cannot resume exactly")
