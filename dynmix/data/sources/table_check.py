"""Look at a text table's bytes before parsing it: refuse what is not a price table, cheaply.

One pass over the file in 1 MB blocks (memory stays at one block; the search for line ends runs in C) finds
binary content, over-long lines and an over-wide header, and picks the delimiter (comma, semicolon or tab)
from the header. Limits, all in `Limits`:

- a line (header included) of at most 4 MB;
- at most 100,000 columns;
- no NUL byte in the first block (a binary file renamed `.csv`), and not an Excel, gzip or Parquet file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dynmix.errors import DataError

BLOCK = 1 << 20  # bytes read at a time
MAGIC = {  # file signature -> what the file really is
    b"PK\x03\x04": "a ZIP archive or Excel workbook (save the sheet as CSV)",
    b"\x1f\x8b": "a gzip archive (decompress it first)",
    b"PAR1": "a Parquet file (give it a .parquet suffix)",
    b"\xd0\xcf\x11\xe0": "an old Excel workbook (save the sheet as CSV)",
}


@dataclass(frozen=True)
class Limits:
    """What a text price table may look like before it is parsed."""

    max_line_bytes: int = 4 << 20  # the longest line, header included (20,000 tickers need ~200 KB)
    max_columns: int = 100_000  # header fields


def sniff(path: Path, limits: Limits = Limits()) -> str:
    """Check `path`'s bytes within `limits` and return its delimiter; DataError names the line at fault."""
    with open(path, "rb") as fh:
        first = fh.read(BLOCK)
        for magic, what in MAGIC.items():
            if first.startswith(magic):
                raise DataError(f"this is {what}: expected a CSV text file", file=path)
        if b"\x00" in first:
            raise DataError("binary content (NUL bytes) in the first megabyte: expected a CSV text file", file=path)
        line, run, block = 1, 0, first
        while block:
            cut = block.find(b"\n")
            if cut < 0:
                run += len(block)
            else:
                run += cut
            if run > limits.max_line_bytes:
                raise DataError(f"line longer than {limits.max_line_bytes >> 20} MB: expected a price table "
                                "(one row per line)", file=path, row=line)
            if cut >= 0:
                line += block.count(b"\n")
                run = len(block) - block.rfind(b"\n") - 1
            block = fh.read(BLOCK)
    return _delimiter(path, first.removeprefix(b"\xef\xbb\xbf").lstrip(b"\r\n").split(b"\n", 1)[0], limits)


def _delimiter(path: Path, header_bytes: bytes, limits: Limits) -> str:
    text = header_bytes.decode("utf-8", "replace").strip("\r\n")
    counts = {d: text.count(d) for d in (",", ";", "\t")}
    delim = max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","
    if counts[delim] + 1 > limits.max_columns:
        raise DataError(f"{counts[delim] + 1:,} columns in the header: expected at most {limits.max_columns:,}",
                        file=path, row=1)
    return delim
