"""Incremental refresh of the store from a price source (Yahoo through yfinance by default).

New tickers download from `start`; stored ones from a few days before their last stored date. When the
overlapping rows differ from the stored ones (a split or dividend re-adjusted the history), that ticker's
whole history is downloaded again and replaces its rows. A ticker that fails is listed in the manifest
(status "failed") and keeps its last good rows. Nothing is written before every row is validated.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from dynmix.data.fetch import ChunkFetcher
from dynmix.data.schema import TICKER_PATTERN
from dynmix.data.sources.yahoo import PriceAdapter, rate_limit_error
from dynmix.data.store import MANIFEST_SCHEMA, Store, utcnow
from dynmix.errors import DataError

DEFAULT_START = date(2005, 1, 1)
SOURCE = "yahoo"
CALL_TIMEOUT = 60.0  # wall seconds one request may take (yfinance's own timeout covers connect and each read)
RTOL = 1e-6  # relative tolerance when comparing re-downloaded overlap rows with stored ones


@dataclass
class RefreshResult:
    """What one refresh did, ticker by ticker."""

    added: list[str] = field(default_factory=list)  # new to the store: history from `start`
    updated: list[str] = field(default_factory=list)  # overlap matched: new dates appended
    redownloaded: list[str] = field(default_factory=list)  # overlap changed (split/dividend): history replaced
    failed: dict[str, str] = field(default_factory=dict)  # ticker -> reason; its last good rows are kept
    rows: int = 0  # price rows written (appended or replaced)
    calls: int = 0  # adapter.fetch_prices calls, retries included
    meta_missing: list[str] = field(default_factory=list)  # metadata lookups that failed (sector "Unknown")
    interrupted: bool = False  # Ctrl-C: the tickers done before it were kept, the others are in `failed`
    out_of_time: bool = False  # the deadline passed: likewise

    @property
    def succeeded(self) -> list[str]:
        return sorted([*self.added, *self.updated, *self.redownloaded])

    @property
    def nothing_came_back(self) -> bool:
        """Every ticker failed: most likely no network."""
        return not self.succeeded and bool(self.failed)


def normalise_tickers(tickers: Iterable[str], *, file: str | Path | None = None) -> list[str]:
    """Upper-case, strip and de-duplicate (order kept); DataError naming the first invalid ticker."""
    out = list(dict.fromkeys(t.strip().upper() for t in tickers if t.strip()))
    for t in out:
        if not re.fullmatch(TICKER_PATTERN, t) or not re.search(r"[A-Z0-9]", t):
            raise DataError(f"ticker {t!r} is not valid: expected 1-15 characters among A-Z 0-9 . - ^ =", file=file)
    return out


def read_universe(path: str | Path) -> list[str]:
    """Tickers from a text file: one per line (commas also split); blank lines and `#` comments skipped."""
    path = Path(path)
    if not path.is_file():
        raise DataError("universe file not found: expected a text file with one ticker per line", file=path)
    out: list[str] = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        for name in line.split("#", 1)[0].split(","):
            if name.strip():
                try:
                    out.extend(normalise_tickers([name]))
                except DataError as e:
                    raise DataError(str(e), file=path, row=line_no) from None
    if not out:
        raise DataError("universe file holds no tickers: expected one ticker per line", file=path)
    return list(dict.fromkeys(out))


def refresh(
    store: Store,
    adapter: PriceAdapter,
    tickers: Iterable[str],
    start: date | None = None,
    *,
    end: date | None = None,
    chunk_size: int = 50,
    max_retries: int = 3,
    base_delay: float = 1.0,
    rate_limit_wait: float = 60.0,
    overlap_days: int = 5,
    sleep: Callable[[float], None] = time.sleep,
    progress: bool = True,
    seed: int | None = None,
    deadline: float | None = None,
    call_timeout: float | None = CALL_TIMEOUT,
    clock: Callable[[], float] = time.monotonic,
) -> RefreshResult:
    """Bring `tickers` up to date in `store` from `adapter`; `end` is exclusive (None = up to today).

    `deadline`: seconds the downloads may take in all; `call_timeout`: seconds one request may take. On Ctrl-C or
    past the deadline nothing more is asked; what was downloaded is written and the rest is marked failed, saying
    why (the result's `interrupted` / `out_of_time`).
    """
    names = normalise_tickers(tickers)
    if not names:
        raise DataError("no tickers to refresh: pass tickers or a universe file")
    if chunk_size < 1:
        raise DataError(f"chunk_size = {chunk_size}: expected at least 1")
    first_start = start or DEFAULT_START
    coverage = _coverage(store, names)
    fetcher = ChunkFetcher(
        adapter, end, max_retries=max_retries, base_delay=base_delay, rate_limit_wait=rate_limit_wait,
        sleep=sleep, rng=random.Random(seed), rate_limit_error=rate_limit_error(), progress=progress,
        deadline=None if deadline is None else clock() + deadline, call_timeout=call_timeout, clock=clock,
    )
    result = RefreshResult()
    with fetcher:
        plan = {t: (coverage[t][1] - timedelta(days=overlap_days) if t in coverage else first_start) for t in names}
        frames, failed = fetcher.fetch(plan, chunk_size)
        retry = {t: plan[t] for t in failed if t not in fetcher.exhausted}
        # all-NaN tickers get one more chance in smaller batches (unless nothing came back)
        if retry and frames and not fetcher.stopped:
            again, failed_again = fetcher.fetch(retry, max(1, min(chunk_size, 10)))
            frames.update(again)
            failed = {t: failed_again.get(t, why) for t, why in failed.items() if t not in again}
        tail = _stored_tail(store, coverage, overlap_days)
        changed = [t for t in frames if t in coverage and _overlap_changed(tail.get(t), frames[t])]
        full: dict[str, pl.DataFrame] = {}
        if changed and fetcher.stopped:  # no time to download their history again: their stored rows stay
            for t in changed:
                failed[t] = ("history changed (split or dividend?); not downloaded again: "
                             + ("interrupted (Ctrl-C)" if fetcher.interrupted else "the refresh's deadline passed"))
        elif changed:
            full_plan = {t: min(coverage[t][0], start) if start else coverage[t][0] for t in changed}
            full, full_failed = fetcher.fetch(full_plan, chunk_size)
            for t, why in full_failed.items():
                failed[t] = f"history changed (split or dividend?) and re-downloading it failed: {why}"
        for t in changed:
            frames.pop(t)
        result.calls = fetcher.calls
    result.added = sorted(t for t in frames if t not in coverage)
    result.updated = sorted(t for t in frames if t in coverage)
    result.redownloaded = sorted(full)
    result.failed = {t: failed[t] for t in sorted(failed)}
    parts = [*frames.values(), *full.values()]
    if parts:
        new = pl.concat(parts, how="vertical")
        store.upsert_prices(new, replace_tickers=full.keys())  # validated; the old table stays on any error
        result.rows = sum(df.height for df in full.values()) + sum(
            df.filter(pl.col("date") > coverage[t][1]).height if t in coverage else df.height
            for t, df in frames.items())
    result.interrupted, result.out_of_time = fetcher.interrupted, fetcher.out_of_time
    result.meta_missing = _add_meta(store, adapter, result.succeeded, rate_limit_error(), fetcher)
    result.interrupted = fetcher.interrupted
    _write_manifest(store, result, coverage)
    return result


def _coverage(store: Store, tickers: list[str]) -> dict[str, tuple[date, date]]:
    """(first, last) stored date per ticker already in the store."""
    cov = store.collect(store.scan_prices().filter(pl.col("ticker").is_in(tickers)).group_by("ticker")
                        .agg(pl.col("date").min().alias("first"), pl.col("date").max().alias("last")))
    return {r["ticker"]: (r["first"], r["last"]) for r in cov.iter_rows(named=True)}


def _stored_tail(store: Store, coverage: dict[str, tuple[date, date]], overlap_days: int) -> dict[str, pl.DataFrame]:
    """Stored rows of each ticker inside its overlap window (from last - overlap_days)."""
    if not coverage:
        return {}
    since = pl.DataFrame({"ticker": list(coverage), "since": [c[1] - timedelta(days=overlap_days)
                                                             for c in coverage.values()]})
    tail = store.collect(store.scan_prices().join(since.lazy(), on="ticker").filter(pl.col("date") >= pl.col("since"))
                         .select("ticker", "date", "close", "adj_close"))
    return {str(k[0]): g for k, g in tail.group_by("ticker")}


def _overlap_changed(old: pl.DataFrame | None, new: pl.DataFrame, rtol: float = RTOL) -> bool:
    """True when the re-downloaded overlap disagrees with the stored rows, or cannot be checked.

    The stored last day is left out when other days overlap: it may have been a live intraday bar.
    """
    if old is None or old.height == 0:
        return False
    both = old.join(new.select("date", "close", "adj_close"), on="date", how="inner", suffix="_new")
    if both.height == 0:
        return True  # the source no longer has the dates we stored: trust nothing, download it all again
    settled = both.filter(pl.col("date") < old["date"].max())
    both = settled if settled.height else both
    diff = both.select(
        ((pl.col("close_new") - pl.col("close")).abs() > rtol * pl.col("close").abs())
        | ((pl.col("adj_close_new") - pl.col("adj_close")).abs() > rtol * pl.col("adj_close").abs())
    ).to_series()
    return bool(diff.any())


def _add_meta(store: Store, adapter: PriceAdapter, tickers: list[str], rate_limited: type[Exception],
              fetcher: ChunkFetcher) -> list[str]:
    """Fetch metadata for tickers new to the metadata table. Failures only leave the sector "Unknown"; after Ctrl-C
    or past the deadline nothing is asked (the next refresh asks again).
    """
    known = set(store.read_meta()["ticker"].to_list())
    todo = [t for t in tickers if t not in known]
    rows, missing = [], []
    for i, t in enumerate(todo):
        if fetcher.stopped or fetcher.past_deadline():
            missing.extend(todo[i:])
            break
        try:
            rows.append(fetcher.call(lambda t=t: adapter.fetch_meta(t)))  # type: ignore[misc]
        except KeyboardInterrupt:
            fetcher.interrupted = True
            missing.extend(todo[i:])
            break
        except rate_limited:
            missing.extend(todo[i:])  # no point asking again now; the next refresh retries them
            break
        except Exception:  # noqa: BLE001 - metadata is optional; its absence reads as sector "Unknown"
            missing.append(t)
    if rows:
        meta = pl.DataFrame(rows, infer_schema_length=None)
        store.upsert_meta(meta.with_columns(pl.all().cast(pl.String)), file=f"{SOURCE}:metadata")
    return missing


def _write_manifest(store: Store, result: RefreshResult, coverage: dict[str, tuple[date, date]]) -> None:
    """Ok rows describe the new coverage; failed rows keep the old coverage and say why."""
    parts = []
    if result.succeeded:
        parts.append(store.manifest_from_prices(SOURCE, result.succeeded).select(list(MANIFEST_SCHEMA)))
    if result.failed:
        old = store.read_manifest()
        sources = dict(zip(old["ticker"].to_list(), old["source"].to_list(), strict=True))
        rows = store.read_prices(result.failed).group_by("ticker").len()
        counts = dict(zip(rows["ticker"].to_list(), rows["len"].to_list(), strict=True))
        parts.append(pl.DataFrame({
            "ticker": list(result.failed),
            "source": [sources.get(t) or SOURCE for t in result.failed],
            "first_date": [coverage[t][0] if t in coverage else None for t in result.failed],
            "last_date": [coverage[t][1] if t in coverage else None for t in result.failed],
            "rows": [counts.get(t, 0) for t in result.failed],
            "last_refresh": [utcnow()] * len(result.failed),
            "status": ["failed"] * len(result.failed),
            "message": list(result.failed.values()),
        }, schema=MANIFEST_SCHEMA))
    if parts:
        store.upsert_manifest(pl.concat(parts, how="vertical"))


__all__ = ["DEFAULT_START", "RefreshResult", "normalise_tickers", "read_universe", "refresh"]
