"""The dashboard benchmark in a tiny mode: its workspace opens on every page without an exception."""

from __future__ import annotations

from pathlib import Path

from benchmarks.dashboard_bench import PAGES, build, measure


def test_dashboard_bench_renders_every_page_of_its_workspace(tmp_path: Path) -> None:
    built = build(tmp_path / "ws", tickers=12, years=0.6, every=5)
    assert built["companies"] == 12 and built["embedding_dates"] >= 2
    pages = measure(tmp_path / "ws")
    assert list(pages) == list(PAGES)
    assert all(not row["exceptions"] for row in pages.values()), pages
    assert pages["embeddings"]["charts"] >= 1 and pages["embeddings"]["tables"] == 1  # map drawn, neighbours listed
    assert pages["forecasts"]["tables"] >= 1
