"""`RunDir`: the one owner of a run folder HOME/runs/<run-id>/ and of every file name in it.

A run holds config.toml, checkpoint.pt, metrics.jsonl, split.json, gamma.parquet, views.json (what the run was
trained on), embeddings/ (dynmix.runs.embeddings; embeddings.parquet in runs exported before), report.json /
report.md, forecast/ (world and JEPA models, their metrics, forecasts) and planning/ (backtest). Other modules
reach these files only through the properties and methods here. Run id = UTC timestamp + short tag.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from dynmix.config import DynMIXConfig, load_config, save_config
from dynmix.errors import DataError, DynMIXError
from dynmix.io import write_json, write_parquet, write_text
from dynmix.runs.embeddings import check as check_embeddings
from dynmix.runs.report_md import clean_json, render_markdown
from dynmix.workspace import RUN_CONFIG, Workspace

_TAG_BAD = re.compile(r"[^a-z0-9._-]+")


def run_id(tag: str, now: dt.datetime | None = None) -> str:
    """'20261121-140501-market-vol': UTC timestamp, then the tag lower-cased with odd characters as '-'."""
    now = now or dt.datetime.now(dt.UTC)
    clean = _TAG_BAD.sub("-", tag.lower()).strip("-")[:40] or "run"
    return f"{now:%Y%m%d-%H%M%S}-{clean}"


@dataclass(frozen=True)
class RunDir:
    """A run folder; creating the object touches nothing on disk."""

    path: Path

    # -- finding runs ---------------------------------------------------------------------------------------
    @classmethod
    def create(cls, ws: Workspace, tag: str) -> RunDir:
        """A fresh, empty run folder (a suffix -2, -3, ... if the id is taken)."""
        ws.runs.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        stamp = f"{now:%Y%m%d-%H%M%S}"
        if any(p.name[:15] >= stamp for p in ws.runs.iterdir()):
            # names must sort in creation order ('latest' is the greatest): start this run in the next second
            time.sleep(1.0 - now.microsecond / 1e6 + 0.01)
            now = dt.datetime.now(dt.UTC)
        base = run_id(tag, now)
        for n in range(1, 1000):
            path = ws.run(base if n == 1 else f"{base}-{n}")
            try:
                path.mkdir()
                return cls(path)
            except FileExistsError:
                continue
        raise DynMIXError(f"could not create a new run folder for {base} in {ws.runs}")

    @classmethod
    def latest(cls, ws: Workspace, *, complete: bool = True) -> RunDir:
        """The newest run; with `complete` (the default) the newest whose training finished, so a killed or
        interrupted run never hides the last good one.
        """
        runs = ws.list_runs()
        if not runs:
            raise DynMIXError(f"no runs in {ws.runs}: train one first with `dynmix train`")
        if not complete:
            return cls(runs[0])
        for path in runs:
            if not cls(path).incomplete:
                return cls(path)
        raise DynMIXError(f"no finished run in {ws.runs}: the newest, {runs[0].name}, did not finish training; "
                          f"continue it with `dynmix train --resume {runs[0].name}`")

    @classmethod
    def resolve(cls, ws: Workspace, name_or_path: str | Path, *, complete: bool = True) -> RunDir:
        """A run from a run id (in HOME/runs), a path to a run folder, or 'latest' (the newest finished run; with
        `complete=False` the newest run, finished or not: what `train --resume latest` continues).
        """
        name = str(name_or_path)
        if name == "latest":
            return cls.latest(ws, complete=complete)
        for cand in (Path(name).expanduser(), ws.run(name)):
            if cand.is_dir() and (cand / RUN_CONFIG).exists():
                return cls(cand.resolve())
        known = [p.name for p in ws.list_runs()[:5]]
        hint = f"; recent runs: {', '.join(known)}" if known else f"; there are no runs in {ws.runs}"
        raise DynMIXError(f"no run {name!r} (expected a run id in {ws.runs}, a run folder, or 'latest'){hint}")

    @classmethod
    def of(cls, run: str | Path | RunDir) -> RunDir:
        """A RunDir from a run folder's path (or the RunDir itself)."""
        return run if isinstance(run, RunDir) else cls(Path(run))

    @property
    def name(self) -> str:
        return self.path.name

    # -- finished or not ------------------------------------------------------------------------------------
    incomplete_path = property(lambda self: self.path / ".incomplete")

    @property
    def incomplete(self) -> bool:
        """True while the run's training has not finished (it was killed, stopped, or is still running)."""
        return bool(self.incomplete_path.exists())

    def mark_incomplete(self) -> None:
        write_text("training has not finished: continue with `dynmix train --resume RUN`\n", self.incomplete_path)

    def mark_complete(self) -> None:
        self.incomplete_path.unlink(missing_ok=True)

    # -- paths ----------------------------------------------------------------------------------------------
    config_path = property(lambda self: self.path / RUN_CONFIG)
    checkpoint_path = property(lambda self: self.path / "checkpoint.pt")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    split_path = property(lambda self: self.path / "split.json")
    gamma_path = property(lambda self: self.path / "gamma.parquet")
    views_path = property(lambda self: self.path / "views.json")
    embeddings_dir = property(lambda self: self.path / "embeddings")  # where an export writes

    @property
    def embeddings_path(self) -> Path:
        """The run's embeddings: its embeddings/ folder, or the embeddings.parquet of a run exported before it
        (read either with dynmix.runs.embeddings).
        """
        legacy = self.path / "embeddings.parquet"
        newer: Path = self.embeddings_dir
        return legacy if legacy.exists() and not newer.exists() else newer

    report_path = property(lambda self: self.path / "report.json")
    report_md_path = property(lambda self: self.path / "report.md")
    forecast_dir = property(lambda self: self.path / "forecast")
    world_path = property(lambda self: self.forecast_dir / "world.pt")
    world_metrics_path = property(lambda self: self.forecast_dir / "world_metrics.jsonl")
    world_stack_path = property(lambda self: self.forecast_dir / "world_stack.pt")  # trained on the first share
    world_stack_metrics_path = property(lambda self: self.forecast_dir / "world_stack_metrics.jsonl")
    jepa_path = property(lambda self: self.forecast_dir / "jepa.pt")
    jepa_metrics_path = property(lambda self: self.forecast_dir / "jepa_metrics.jsonl")
    surprise_path = property(lambda self: self.forecast_dir / "surprise.parquet")
    vol_forecast_path = property(lambda self: self.forecast_dir / "vol_forecast.parquet")
    planning_dir = property(lambda self: self.path / "planning")
    equity_path = property(lambda self: self.planning_dir / "equity.parquet")
    weights_path = property(lambda self: self.planning_dir / "weights.parquet")

    # -- config, checkpoint, split, gamma, views record -----------------------------------------------------
    def read_config(self) -> DynMIXConfig:
        return load_config(self.config_path)

    def write_config(self, cfg: DynMIXConfig) -> None:
        save_config(cfg, self.config_path)

    def read_checkpoint(self, device: Any = "cpu") -> dict[str, Any]:
        from dynmix.runs.checkpoint import load_checkpoint  # torch: not for readers of the other files (dashboard)

        return load_checkpoint(self.checkpoint_path, device)

    def checkpoint_step(self) -> int:
        return int(self.read_checkpoint("cpu")["step"])

    def write_split(self, split: dict[str, Any]) -> None:
        write_json(split, self.split_path)

    def read_split(self) -> dict[str, Any]:
        """split.json: train_start, train_end, test_start, test_end (ISO dates) and the date counts."""
        path = self.split_path
        if not path.exists():
            raise DynMIXError(f"{path} not found: expected the run's train/test split (is {self.path} a finished "
                              "run?)")
        try:
            split = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DataError(f"not valid JSON ({e.msg})", file=path, row=e.lineno) from e
        if not isinstance(split, dict) or "train_end" not in split:
            raise DataError("expected a JSON object with train_start, train_end, test_start, test_end", file=path)
        return split

    def write_gamma(self, frame: pl.DataFrame) -> None:
        write_parquet(frame, self.gamma_path)

    def write_views_record(self, record: dict[str, Any]) -> None:
        """What the run was trained on: the views' stamp and signature (see dynmix.runs.viewstamp)."""
        write_json(record, self.views_path)

    def read_views_record(self) -> dict[str, Any]:
        """The run's views record; {} for a run trained before runs recorded it."""
        try:
            obj = json.loads(self.views_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}
        return obj if isinstance(obj, dict) else {}

    # -- embeddings and forecast / planning tables ----------------------------------------------------------
    def write_embeddings(self, frame: pl.DataFrame) -> Path:
        """Write a long frame (date, ticker, view, embedding) as embeddings.parquet, the layout of older runs, for
        embeddings made by other means (tests, tools); the run's own export writes embeddings/ (train/embed.py).
        """
        return write_parquet(frame, self.path / "embeddings.parquet")

    def checked_embeddings(self) -> Path:
        """The run's embeddings (either layout), checked readable."""
        path = self.embeddings_path
        if not path.exists():
            raise DynMIXError(f"{path} not found: expected the run's embeddings (train the run to the end first, or "
                              f"`dynmix embed {self.name}`)")
        return check_embeddings(path)

    def write_table(self, path: Path, frame: pl.DataFrame) -> Path:
        """Write one of this run's tables (e.g. `rd.vol_forecast_path`) atomically."""
        if self.path not in path.parents:
            raise DynMIXError(f"{path} is not a file of run {self.path}")
        return write_parquet(frame, path)

    # -- report ---------------------------------------------------------------------------------------------
    def read_report(self) -> dict[str, Any]:
        """report.json, {} when absent or not a JSON object."""
        try:
            obj = json.loads(self.report_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}
        return obj if isinstance(obj, dict) else {}

    def update_report(self, sections: dict[str, Any], *, merge: bool = False) -> dict[str, Any]:
        """Set the given top-level sections of report.json (the others kept), then rewrite report.md.

        With `merge`, a section's keys are merged into the existing section instead of replacing it. The read,
        merge and write happen under a file lock, so concurrent writers of different sections lose nothing.
        """
        with self._report_lock():
            report = self.read_report()
            notes: list[str] = []
            if self.report_path.exists() and not report:
                notes = ["the previous report.json was not valid JSON: replaced"]
            for key, value in sections.items():
                old = report.get(key)
                if merge and isinstance(old, dict) and isinstance(value, dict):
                    value = {**old, **value}
                report[key] = value
            if notes:
                report["notes"] = [*report.get("notes", []), *notes]
            report = clean_json(report)
            write_json(report, self.report_path)
            write_text(render_markdown(report), self.report_md_path)
        return report

    @contextmanager
    def _report_lock(self) -> Iterator[None]:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".report.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def stale_keys(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The keys of a derived file's stamp (e.g. world.pt's) whose value changed since it was written."""
    return [k for k, v in current.items() if saved.get(k) != v]
