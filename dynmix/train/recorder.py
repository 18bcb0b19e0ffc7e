"""What a training run shows and writes: the progress bar, `metrics.jsonl` lines, collapse warnings.

Only the main rank records; on other ranks (or with `enabled=False`) every method is a no-op.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from dynmix.io import append_jsonl, read_jsonl, write_text

log = logging.getLogger("dynmix.train")


class Recorder:
    """Appends metric dicts to `metrics_path`, shows `bar_text(line)` on a rich progress bar, warns when
    `collapse(line)` says the representations collapse (both given by the objective).
    """

    def __init__(self, metrics_path: Path | None, *, enabled: bool = True, progress: bool = True,
                 console: Console | None = None, label: str = "train",
                 bar_text: Callable[[dict[str, Any]], str] | None = None,
                 collapse: Callable[[dict[str, Any]], str | None] | None = None) -> None:
        self.metrics_path = metrics_path
        self.label = label
        self.bar_text = bar_text or (lambda m: f"epoch {m['epoch']}  loss {m['loss']:.4f}")
        self.collapse = collapse or (lambda m: None)
        self.enabled = enabled
        self.console = console or Console(stderr=True, highlight=False)
        self._progress: Progress | None = None
        self._task: Any = None
        self._show = enabled and progress
        self._warned_epochs: set[int] = set()

    def truncate(self, last_step: int) -> None:
        """Drop lines logged after `last_step` (a resumed run rewrites them)."""
        if not self.enabled or self.metrics_path is None or not self.metrics_path.exists():
            return
        kept = [r for r in read_jsonl(self.metrics_path) if int(r.get("step", 0)) <= last_step]
        write_text("".join(_dumps(r) + "\n" for r in kept), self.metrics_path)

    def start(self, total_steps: int, done: int) -> Recorder:
        if self._show:
            self._progress = Progress(
                TextColumn(self.label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"), console=self.console, transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("train", total=total_steps, completed=done, info="")
        return self

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def advance(self) -> None:
        if self._progress is not None:
            self._progress.advance(self._task)

    def log(self, metrics: dict[str, Any]) -> None:
        """Write one metrics line, refresh the bar's text and warn (once per epoch) if embeddings collapse."""
        if not self.enabled:
            return
        if self.metrics_path is not None:
            append_jsonl(metrics, self.metrics_path)
        if self._progress is not None:
            self._progress.update(self._task, info=self.bar_text(metrics))
        msg = self.collapse(metrics)
        if msg is not None and metrics["epoch"] not in self._warned_epochs:
            self._warned_epochs.add(metrics["epoch"])
            self.warn(f"step {metrics['step']}: {msg}")

    def warn(self, msg: str) -> None:
        if self.enabled:
            log.warning(msg)
            self.console.print(f"[bold yellow]warning:[/] {msg}")

    def info(self, msg: str) -> None:
        if self.enabled:
            log.info(msg)
            self.console.print(msg)


def _dumps(r: dict[str, Any]) -> str:
    return json.dumps(r, default=float)
