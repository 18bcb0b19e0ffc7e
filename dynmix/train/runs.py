"""Run folders HOME/runs/<run-id>/ (run id = UTC timestamp + short tag) and loading a trained run back.

A run holds config.toml, checkpoint.pt, metrics.jsonl, gamma.parquet, split.json and embeddings.parquet.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import torch

from dynmix.config import DynMIXConfig, load_config
from dynmix.errors import DynMIXError
from dynmix.models.dynmix import DynMIX
from dynmix.train.checkpoint import load_checkpoint
from dynmix.views.tensors import ViewTensors, load_view_tensors
from dynmix.workspace import Workspace

_TAG_BAD = re.compile(r"[^a-z0-9._-]+")


def run_id(tag: str, now: dt.datetime | None = None) -> str:
    """'20261121-140501-market-vol': UTC timestamp, then the tag lower-cased with odd characters as '-'."""
    now = now or dt.datetime.now(dt.UTC)
    clean = _TAG_BAD.sub("-", tag.lower()).strip("-")[:40] or "run"
    return f"{now:%Y%m%d-%H%M%S}-{clean}"


def new_run_dir(ws: Workspace, tag: str) -> Path:
    """Create and return a fresh, empty run folder (a suffix -2, -3, ... if the id is taken)."""
    base = run_id(tag)
    ws.runs.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        path = ws.run(base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise DynMIXError(f"could not create a new run folder for {base} in {ws.runs}")


def latest_run(ws: Workspace) -> Path:
    runs = ws.list_runs()
    if not runs:
        raise DynMIXError(f"no runs in {ws.runs}: train one first with `dynmix train`")
    return runs[0]


def resolve_run(ws: Workspace, name_or_path: str | Path) -> Path:
    """A run folder from a run id (in HOME/runs), a path to a run folder, or 'latest'."""
    name = str(name_or_path)
    if name == "latest":
        return latest_run(ws)
    for cand in (Path(name).expanduser(), ws.run(name)):
        if cand.is_dir() and (cand / "config.toml").exists():
            return cand.resolve()
    known = [p.name for p in ws.list_runs()[:5]]
    hint = f"; recent runs: {', '.join(known)}" if known else f"; there are no runs in {ws.runs}"
    raise DynMIXError(f"no run {name!r} (expected a run id in {ws.runs}, a run folder, or 'latest'){hint}")


def views_signature(vt: ViewTensors) -> dict[str, object]:
    """What a model depends on in the views: feature names, channels, window."""
    return {"feature_names": list(vt.feature_names), "channels": list(vt.channels), "window": int(vt.window)}


def signature_changes(saved: dict[str, object], vt: ViewTensors) -> str:
    """'' when the views match what a model was trained on, else what changed (and, for the implicit channels, the
    setting that decides them).
    """
    now = views_signature(vt)
    changed = [k for k in now if saved.get(k) != now[k]]
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


def load_run(run_dir: str | Path, device: str | torch.device = "cpu", *, views_dir: str | Path | None = None,
             ema: bool = False) -> tuple[DynMIXConfig, DynMIX, ViewTensors]:
    """(config, model in eval mode, views) of a trained run; the views default to HOME/views of the run's HOME.

    The model is rebuilt from config.toml and the checkpoint (read with weights_only=True); with `ema`, the
    EMA weights are loaded instead of the live ones.
    """
    run_dir = Path(run_dir)
    cfg = load_config(run_dir / "config.toml")
    ckpt = load_checkpoint(run_dir / "checkpoint.pt", device)
    vdir = Path(views_dir) if views_dir is not None else run_dir.parent.parent / "views"
    vt = load_view_tensors(vdir, device)
    saved = ckpt.get("views", {})
    if saved and (changes := signature_changes(saved, vt)):
        raise DynMIXError(f"the views in {vdir} differ from those run {run_dir.name} was trained on ({changes}): "
                          f"rebuild the views with the run's settings or train a new run")
    model = DynMIX(cfg.model, len(vt.feature_names), len(vt.channels), vt.window).to(device)
    model.load_state_dict(ckpt["ema"] if ema else ckpt["model"])
    model.eval()
    return cfg, model, vt
