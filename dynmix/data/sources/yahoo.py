"""yfinance behind one adapter, and the conversion of its frames into the canonical long price table.

`yf.download(tickers, group_by="column", multi_level_index=True, auto_adjust=True)` (yfinance 1.x) returns a
frame with MultiIndex columns named ["Price", "Ticker"], the Price level sorted (Close, High, Low, Open,
Volume; no "Adj Close": Close is already adjusted), a tz-naive daily index that is the union of every ticker's
dates, and `end` exclusive. It never raises per ticker: a failure becomes an all-NaN column (sometimes with an
extra all-NaN "Adj Close" level) and a log line. yfinance is imported lazily: importing dynmix never imports it.
"""

from __future__ import annotations

import ast
import logging
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import polars as pl

from dynmix.data.schema import UNKNOWN_SECTOR, validate_prices
from dynmix.errors import DataError

if TYPE_CHECKING:  # pandas is imported where yfinance's frames are read (0.3 s off every command's start)
    import pandas as pd

DEFAULT_TIMEOUT = 20.0  # seconds per HTTP request inside yfinance
QUOTE_TYPES = {"EQUITY": "equity", "ETF": "etf", "INDEX": "index", "MUTUALFUND": "etf"}
META_EXTRAS = ("exchange", "currency", "country")  # optional string columns kept beside the canonical ones
NO_DATA = "no data came back (all-NaN column: unknown or delisted ticker, or no network)"
_LOG_LINE = re.compile(r"^(\[.*?\]):\s*(.*)$", re.S)


class PriceAdapter(Protocol):
    """What the refresh needs from a price source (YahooAdapter, or a fake in tests)."""

    def fetch_prices(self, tickers: list[str], start: date, end: date | None) -> pd.DataFrame: ...

    def fetch_meta(self, ticker: str) -> dict[str, Any]: ...


def rate_limit_error() -> type[Exception]:
    """The YFRateLimitError class of yfinance (HTTP 429), imported lazily."""
    from yfinance.exceptions import YFRateLimitError

    return YFRateLimitError


class YahooAdapter:
    """Daily prices and metadata from Yahoo Finance through yfinance.

    `last_errors` holds, after each `fetch_prices`, the reason yfinance logged for every ticker it failed on.
    """

    def __init__(self, cache_dir: str | Path | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.timeout = timeout
        self.last_errors: dict[str, str] = {}
        self._yf: Any = None

    def _yfinance(self) -> Any:
        if self._yf is None:
            import yfinance as yf

            if self.cache_dir is not None:  # yfinance's SQLite caches (timezone, cookie) live in the workspace
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                setter = getattr(yf, "set_cache_location", None) or yf.set_tz_cache_location
                setter(str(self.cache_dir))
            self._yf = yf
        return self._yf

    def fetch_prices(self, tickers: list[str], start: date, end: date | None) -> pd.DataFrame:
        """The frame yf.download returns for `tickers` from `start` (inclusive) to `end` (exclusive; None = today)."""
        yf = self._yfinance()
        with _yfinance_errors() as errors, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # Pandas4Warning under pandas 3
            frame = yf.download(
                list(tickers), start=start.isoformat(), end=end.isoformat() if end else None,
                auto_adjust=True, threads=True, group_by="column", progress=False,
                timeout=self.timeout, multi_level_index=True,
            )
        self.last_errors = errors
        if any(is_rate_limit(msg) for msg in errors.values()):
            raise rate_limit_error()()  # yfinance swallowed a 429: let the caller wait long and retry the chunk
        if frame is None:
            import pandas as pd

            return pd.DataFrame()
        return frame

    def fetch_meta(self, ticker: str) -> dict[str, Any]:
        return meta_from_info(ticker, self._yfinance().Ticker(ticker).info or {})


def is_rate_limit(message: str) -> bool:
    return "YFRateLimitError" in message or "Rate limited" in message or "Too Many Requests" in message


@contextmanager
def _yfinance_errors() -> Iterator[dict[str, str]]:
    """Collect yfinance's per-ticker error log lines ("['AAA', 'BBB']: reason") while the block runs."""
    errors: dict[str, str] = {}

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            m = _LOG_LINE.match(record.getMessage())
            if record.levelno < logging.ERROR or not m:
                return
            try:
                names = ast.literal_eval(m.group(1))
            except (ValueError, SyntaxError):
                return
            for name in names if isinstance(names, list) else []:
                errors[str(name).upper()] = m.group(2).strip()

    logger = logging.getLogger("yfinance")
    handler = _Collect()
    logger.addHandler(handler)
    try:
        yield errors
    finally:
        logger.removeHandler(handler)


def meta_from_info(ticker: str, info: dict[str, Any]) -> dict[str, Any]:
    """Map `yf.Ticker(t).info` (any key may be missing) to a metadata row."""
    quote = str(info.get("quoteType") or "").upper()
    row: dict[str, Any] = {
        "ticker": ticker.strip().upper(),
        "name": info.get("longName") or info.get("shortName") or ticker.strip().upper(),
        "sector": info.get("sector") or UNKNOWN_SECTOR,
        "industry": info.get("industry") or UNKNOWN_SECTOR,
        "asset_type": QUOTE_TYPES.get(quote, "equity"),
    }
    for key in META_EXTRAS:
        value = info.get(key)
        row[key] = str(value) if value is not None else None
    return row


def to_long(frame: pd.DataFrame, tickers: Sequence[str]) -> tuple[dict[str, pl.DataFrame], dict[str, str]]:
    """Split yfinance's frame into one validated canonical table per ticker, and the failures (ticker -> why).

    A ticker fails when it is missing from the columns, its column is all-NaN, or its rows do not validate.
    """
    import pandas as pd

    wanted = list(dict.fromkeys(t.strip().upper() for t in tickers))
    if frame is None or frame.shape[1] == 0 or frame.shape[0] == 0:
        return {}, dict.fromkeys(wanted, NO_DATA)
    if not isinstance(frame.columns, pd.MultiIndex):  # multi_level_index=False with one ticker
        if len(wanted) != 1:
            raise DataError(f"yfinance frame has flat columns {list(frame.columns)} for {len(wanted)} tickers: "
                            "expected MultiIndex columns (Price, Ticker)")
        frame = pd.concat({wanted[0]: frame}, axis=1, names=["Ticker", "Price"]).swaplevel(0, 1, axis=1)
    level: str | int = "Ticker" if "Ticker" in frame.columns.names else 1
    present = {str(t).upper(): t for t in frame.columns.get_level_values(level)}
    out: dict[str, pl.DataFrame] = {}
    failures: dict[str, str] = {}
    for t in wanted:
        if t not in present:
            failures[t] = "missing from yfinance's response"
            continue
        sub = frame.xs(present[t], level=level, axis=1)
        if sub.dropna(how="all").empty:
            failures[t] = NO_DATA
            continue
        try:
            out[t] = _ticker_table(t, sub)
        except DataError as e:
            failures[t] = str(e)
    return out, failures


def _ticker_table(ticker: str, sub: pd.DataFrame) -> pl.DataFrame:
    """One ticker's (Price -> column) frame as a canonical table: adj_close = Close (auto_adjust=True)."""
    import pandas as pd

    if "Close" not in sub.columns:
        raise DataError(f"no Close column for {ticker} (found {list(sub.columns)}): expected yfinance's Price level")
    close = sub["Close"].to_numpy(dtype=float)
    keep = np.isfinite(close) & (close > 0)  # a row without a usable close is not a price
    sub, close = sub[keep], close[keep]
    idx = pd.DatetimeIndex(sub.index)
    if idx.tz is not None:
        idx = idx.tz_localize(None)

    def column(name: str) -> np.ndarray:
        if name not in sub.columns:
            return close
        v = sub[name].to_numpy(dtype=float)
        return np.where(np.isfinite(v) & (v > 0), v, close)  # Yahoo sometimes gives 0 or NaN for O/H/L

    vol = sub["Volume"].to_numpy(dtype=float) if "Volume" in sub.columns else np.full(len(close), np.nan)
    df = pl.DataFrame({
        "date": pl.Series(idx.to_numpy().astype("datetime64[D]")).cast(pl.Date),
        "ticker": [ticker] * len(close),
        "open": column("Open"), "high": column("High"), "low": column("Low"),
        "close": close, "adj_close": close,
        "volume": pl.Series(np.where(np.isfinite(vol) & (vol >= 0), vol, np.nan)).fill_nan(None),
    })
    df = df.unique(subset="date", keep="last", maintain_order=True)
    return validate_prices(df, file=f"yahoo:{ticker}")


__all__ = ["PriceAdapter", "YahooAdapter", "is_rate_limit", "meta_from_info", "rate_limit_error", "to_long"]
