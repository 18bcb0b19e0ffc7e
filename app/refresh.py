"""The dashboard's "Refresh from Yahoo": dynmix.data.refresh.refresh in chunks, so a page can show progress.

`make_adapter` is the one place the real Yahoo adapter is built; tests replace it with a fake.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dynmix.data.refresh import RefreshResult, read_universe, refresh
from dynmix.data.sources.yahoo import PriceAdapter, YahooAdapter
from dynmix.data.store import Store
from dynmix.lock import writer_lock
from dynmix.workspace import Workspace

DEFAULT_UNIVERSE = Path(__file__).resolve().parents[1] / "data" / "universes" / "sp500_sample.txt"
SAMPLE_TICKERS = "AAPL AMD BAC BBY CVX GE HD JNJ JPM KO LLY MRK MSFT PEP PFE PG RRC UNH WMT XOM".split()
CHUNK = 25  # tickers per refresh call (one progress step)
LOCK_WAIT = 5.0  # seconds the page waits for another command writing the workspace before saying it is busy

Progress = Callable[[int, int], None]  # (tickers done, tickers in all)


def make_adapter(ws: Workspace) -> PriceAdapter:
    """The real Yahoo Finance adapter, its yfinance caches inside the workspace."""
    return YahooAdapter(cache_dir=ws.home / "cache" / "yfinance")


def default_tickers(store: Store) -> list[str]:
    """The store's real (non-synthetic) tickers, else the sample universe file, else the embedded 20."""
    stored = store.tickers()
    if stored:
        manifest = store.read_manifest()
        synthetic = set(manifest.filter(manifest["source"] == "synthetic")["ticker"].to_list())
        return [t for t in stored if t not in synthetic]
    if DEFAULT_UNIVERSE.is_file():
        return read_universe(DEFAULT_UNIVERSE)
    return list(SAMPLE_TICKERS)


def _merge(total: RefreshResult, part: RefreshResult) -> None:
    total.added += part.added
    total.updated += part.updated
    total.redownloaded += part.redownloaded
    total.failed.update(part.failed)
    total.meta_missing += part.meta_missing
    total.rows += part.rows
    total.calls += part.calls


def refresh_in_chunks(ws: Workspace, tickers: list[str], on_progress: Progress | None = None,
                      chunk: int = CHUNK) -> RefreshResult:
    """Refresh `tickers` chunk by chunk; stops after the first chunk when nothing came back (offline).

    Holds the workspace's writer lock like every writing command (WorkspaceBusy, a DynMIXError, when another
    command keeps it past LOCK_WAIT seconds).
    """
    store = Store(ws.store)
    adapter = make_adapter(ws)
    total = RefreshResult()
    with writer_lock(ws.home, "dashboard refresh", timeout=LOCK_WAIT, on_wait=lambda message: None):
        for k in range(0, len(tickers), chunk):
            part = refresh(store, adapter, tickers[k:k + chunk], progress=False)
            _merge(total, part)
            if on_progress is not None:
                on_progress(min(k + chunk, len(tickers)), len(tickers))
            if k == 0 and part.nothing_came_back:
                break
    return total
