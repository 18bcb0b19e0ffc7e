"""Chunked downloads from a price adapter: jittered exponential back-off, a long wait on rate limits, progress.

A chunk that raises is retried up to `max_retries` times, waiting `base_delay · 2^attempt · (1 + U[0, ¼))`
seconds, or `rate_limit_wait · (1 + U[0, 0.1))` after a rate limit (HTTP 429, which yfinance's own retries
never cover). The sleep function is injected so tests never wait.

Every adapter call runs in a worker thread waited for in short slices, so Ctrl-C is honoured at once even on a
network that accepts and never answers; a call has a wall-clock limit (`call_timeout`) and the whole download a
deadline. After Ctrl-C or the deadline nothing more is asked: the tickers done so far are returned (the caller
keeps them) and the others are failures saying why.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from datetime import date
from types import TracebackType
from typing import Any, TypeVar

import polars as pl
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dynmix.data.sources.yahoo import PriceAdapter, to_long
from dynmix.errors import DataError

T = TypeVar("T")
POLL_S = 0.1  # seconds between looks at a running adapter call (Ctrl-C, timeouts)


class ChunkFetcher:
    """Fetch tickers in chunks (one request start per chunk) and turn the frames into canonical tables."""

    def __init__(
        self,
        adapter: PriceAdapter,
        end: date | None,
        *,
        max_retries: int = 3,
        base_delay: float = 1.0,
        rate_limit_wait: float = 60.0,
        sleep: Callable[[float], None],
        rng: random.Random,
        rate_limit_error: type[Exception],
        progress: bool = True,
        deadline: float | None = None,
        call_timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.adapter = adapter
        self.end = end
        self.max_retries = max_retries
        self.base_delay = base_delay
        self.rate_limit_wait = rate_limit_wait
        self.sleep = sleep
        self.rng = rng
        self.rate_limit_error = rate_limit_error
        self.calls = 0  # adapter calls, retries included
        self.exhausted: set[str] = set()  # tickers whose chunk kept raising until the retries ran out
        self.show = progress
        self.deadline = deadline  # clock() time after which nothing more is asked (the refresh's total deadline)
        self.call_timeout = call_timeout  # wall seconds one adapter call may take (None: no limit of ours)
        self.clock = clock
        self.interrupted = False  # Ctrl-C arrived: what completed is kept, the rest is not asked for
        self.out_of_time = False  # the deadline passed
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=Console(stderr=True), disable=not progress,
        )

    def __enter__(self) -> ChunkFetcher:
        self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._progress.stop()

    def delay(self, attempt: int, error: BaseException) -> float:
        """Seconds to wait before retry number `attempt + 1`."""
        if isinstance(error, self.rate_limit_error):
            return self.rate_limit_wait * (1.0 + 0.1 * self.rng.random())
        return self.base_delay * 2.0**attempt * (1.0 + 0.25 * self.rng.random())

    def fetch(self, plan: dict[str, date], chunk_size: int) -> tuple[dict[str, pl.DataFrame], dict[str, str]]:
        """Download every ticker of `plan` (ticker -> first date wanted). Returns (tables, failures: ticker -> why)."""
        groups: dict[date, list[str]] = {}
        for ticker, start in plan.items():
            groups.setdefault(start, []).append(ticker)
        chunks = [(start, names[i:i + chunk_size])
                  for start, names in sorted(groups.items()) for i in range(0, len(names), chunk_size)]
        task = self._progress.add_task(f"downloading {len(plan)} ticker(s)", total=len(chunks))
        frames: dict[str, pl.DataFrame] = {}
        failures: dict[str, str] = {}
        for k, (start, chunk) in enumerate(chunks):
            if self.stopped or self.past_deadline():
                failures.update(self._not_asked(t for _, names in chunks[k:] for t in names))
                break
            self._progress.update(task, description=f"{chunk[0]}…{chunk[-1]} ({len(chunk)}) from {start}")
            try:
                got, failed = self._fetch_chunk(chunk, start)
            except KeyboardInterrupt:
                self.interrupted = True
                failures.update(self._not_asked(t for _, names in chunks[k:] for t in names))
                break
            frames.update(got)
            failures.update(failed)
            self._progress.advance(task)
        self._progress.update(task, description=f"downloaded {len(frames)}/{len(plan)} ticker(s)")
        return frames, failures

    @property
    def stopped(self) -> bool:
        return self.interrupted or self.out_of_time

    def past_deadline(self) -> bool:
        if self.deadline is not None and self.clock() >= self.deadline:
            self.out_of_time = True
        return self.out_of_time

    def _not_asked(self, tickers: Iterable[str]) -> dict[str, str]:
        why = ("not downloaded: interrupted (Ctrl-C)" if self.interrupted
               else "not downloaded: the refresh's deadline passed (--deadline)")
        return dict.fromkeys(tickers, why)

    def call(self, fn: Callable[[], T]) -> T:
        """`fn()` in a worker thread, waited for in short slices: Ctrl-C reaches this thread within a fraction of a
        second even while the call is stuck on a silent network, and a call past `call_timeout` (or the deadline)
        raises TimeoutError. A call given up on is left to finish in its (daemon) thread; its result is dropped.
        """
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["value"] = fn()
            except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
                box["error"] = e

        worker = threading.Thread(target=run, daemon=True, name="dynmix-fetch")
        started = self.clock()
        worker.start()
        while worker.is_alive():
            worker.join(POLL_S)
            now = self.clock()
            if worker.is_alive() and self.call_timeout is not None and now - started >= self.call_timeout:
                raise TimeoutError(f"no answer within {self.call_timeout:.0f} s")
            if worker.is_alive() and self.deadline is not None and now >= self.deadline:
                self.out_of_time = True
                raise TimeoutError("the refresh's deadline passed while waiting for an answer")
        if "error" in box:
            raise box["error"]
        return box["value"]  # type: ignore[no-any-return]

    def _fetch_chunk(self, chunk: list[str], start: date) -> tuple[dict[str, pl.DataFrame], dict[str, str]]:
        error: BaseException | None = None
        for attempt in range(self.max_retries + 1):
            if self.past_deadline():
                break
            self.calls += 1
            try:
                frame = self.call(lambda: self.adapter.fetch_prices(list(chunk), start, self.end))
                frames, failures = to_long(frame, chunk)
            except DataError as e:  # a malformed frame will not get better by asking again
                return {}, dict.fromkeys(chunk, str(e))
            except Exception as e:  # noqa: BLE001 - any network or parsing error: back off and retry the chunk
                error = e
                if attempt < self.max_retries and not self.past_deadline():
                    wait = self.delay(attempt, e)
                    if self.deadline is not None:
                        wait = max(0.0, min(wait, self.deadline - self.clock()))
                    if self.show:
                        self._progress.console.log(f"{type(e).__name__} on {chunk[0]}…: retrying in {wait:.0f} s")
                    self.sleep(wait)
                continue
            return self._trim(frames, failures, start)
        self.exhausted.update(chunk)
        if error is None:  # the deadline passed before this chunk was asked again
            return {}, self._not_asked(chunk)
        if self.out_of_time:
            why = f"download failed before the refresh's deadline: {type(error).__name__}: {error}"
        else:
            why = f"download failed after {self.max_retries + 1} attempt(s): {type(error).__name__}: {error}"
        return {}, dict.fromkeys(chunk, why)

    def _trim(
        self, frames: dict[str, pl.DataFrame], failures: dict[str, str], start: date
    ) -> tuple[dict[str, pl.DataFrame], dict[str, str]]:
        """Keep rows in [start, end) and add the reason the adapter logged for each failure, if any."""
        reasons: dict[str, str] = getattr(self.adapter, "last_errors", None) or {}
        failures = {t: f"{why} [{reasons[t]}]" if t in reasons else why for t, why in failures.items()}
        kept: dict[str, pl.DataFrame] = {}
        for t, df in frames.items():
            df = df.filter(pl.col("date") >= start)
            if self.end is not None:
                df = df.filter(pl.col("date") < self.end)
            if df.height:
                kept[t] = df
            else:
                failures[t] = f"no rows on or after {start}"
        return kept, failures


__all__ = ["ChunkFetcher"]
