from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from dynmix.cli import app
from dynmix.data.store import Store

runner = CliRunner()


def test_status_on_empty_workspace_says_how_to_get_data(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--home", str(tmp_path / "ws"), "data", "status"])
    assert result.exit_code == 0, result.output
    for command in ("dynmix data sample", "import", "refresh", "synth"):
        assert command in result.output


def test_sample_then_status(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    result = runner.invoke(app, ["--home", str(home), "data", "sample"])
    assert result.exit_code == 0, result.output
    assert "26 tickers" in result.output
    assert Store(home / "store").tickers()[:2] == ["AAPL", "AMD"]
    result = runner.invoke(app, ["--home", str(home), "data", "status", "--limit", "5"])
    assert result.exit_code == 0, result.output
    assert "AAPL" in result.output and "WMT" not in result.output and "21 more" in result.output
    assert "26 tickers" in result.output and "0 failed" in result.output
    result = runner.invoke(app, ["--home", str(home), "data", "status", "--all"])
    assert "WMT" in result.output and "^GSPC" in result.output


def test_import_good_and_bad_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "ws"
    good = tmp_path / "good.csv"
    good.write_text("date,ticker,close\n2020-01-02,AAA,1\n2020-01-03,AAA,2\n")
    meta = tmp_path / "meta.csv"
    meta.write_text("ticker,sector\nAAA,Energy\n")
    result = runner.invoke(app, ["--home", str(home), "data", "import", str(good), "--meta", str(meta)])
    assert result.exit_code == 0, result.output
    assert "1 ticker, 2 rows" in result.output
    before = (home / "store" / "prices.parquet").read_bytes()

    monkeypatch.chdir(tmp_path)  # a short relative path keeps the message within the 80-column test console
    Path("bad.csv").write_text("date,ticker,close\n2020-01-06,AAA,1\n2020-01-07,AAA,-3\n")
    result = runner.invoke(app, ["--home", str(home), "data", "import", "bad.csv"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["error: bad.csv, row 3: close = -3.0: expected a finite price > 0"]
    assert (home / "store" / "prices.parquet").read_bytes() == before
    assert pl.read_parquet(home / "store" / "prices.parquet")["close"].to_list() == [1.0, 2.0]
