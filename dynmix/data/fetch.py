"""Chunked downloads from a price adapter: jittered exponential back-off, a long wait on rate limits, progress.

A chunk that raises is retried up to `max_retries` times, waiting `base_delay · 2^attempt · (1 + U[0, ¼))`
seconds, or `rate_limit_wait · (1 + U[0, 0.1))` after a rate limit (HTTP 429, which yfinance's own retries
never cover). The sleep function is injected so tests never wait.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date
from types import TracebackType

import polars as pl
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dynmix.data.sources.yahoo import PriceAdapter, to_long
from dynmix.errors import DataError


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
        for start, chunk in chunks:
            self._progress.update(task, description=f"{chunk[0]}…{chunk[-1]} ({len(chunk)}) from {start}")
            got, failed = self._fetch_chunk(chunk, start)
            frames.update(got)
            failures.update(failed)
            self._progress.advance(task)
        self._progress.update(task, description=f"downloaded {len(frames)}/{len(plan)} ticker(s)")
        return frames, failures

    def _fetch_chunk(self, chunk: list[str], start: date) -> tuple[dict[str, pl.DataFrame], dict[str, str]]:
        error: BaseException | None = None
        for attempt in range(self.max_retries + 1):
            self.calls += 1
            try:
                frames, failures = to_long(self.adapter.fetch_prices(list(chunk), start, self.end), chunk)
            except DataError as e:  # a malformed frame will not get better by asking again
                return {}, dict.fromkeys(chunk, str(e))
            except Exception as e:  # noqa: BLE001 - any network or parsing error: back off and retry the chunk
                error = e
                if attempt < self.max_retries:
                    wait = self.delay(attempt, e)
                    if self.show:
                        self._progress.console.log(f"{type(e).__name__} on {chunk[0]}…: retrying in {wait:.0f} s")
                    self.sleep(wait)
                continue
            return self._trim(frames, failures, start)
        self.exhausted.update(chunk)
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
