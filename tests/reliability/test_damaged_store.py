"""Damaged store files give a clear error naming the file and what to do, never a polars traceback; `data status`
still reports what the readable files hold; a write killed between files leaves a manifest that says so.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

import dynmix.cli.data_refresh as refresh_cmd
from dynmix.cli import app
from dynmix.data.store import INTERRUPTED, Store
from dynmix.errors import DataError
from tests.conftest import make_prices

runner = CliRunner()
FAKE_PATH = Path(__file__).parents[1] / "data" / "yahoo_fake.py"


def _filled(tmp_path: Path) -> Path:
    home = tmp_path / "ws"
    store = Store(home / "store")
    store.upsert_prices(make_prices(["AAA", "BBB"], n_days=80))
    store.upsert_meta(pl.DataFrame({"ticker": ["AAA", "BBB"], "sector": ["Energy", "Utilities"]}))
    store.upsert_manifest(store.manifest_from_prices("csv"))
    return home


def _damage(path: Path, how: str) -> None:
    if how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_text("date,ticker,close\n2020-01-02,AAA,1\n")  # a CSV saved under the Parquet name


def _csv(tmp_path: Path) -> Path:
    p = tmp_path / "more.csv"
    p.write_text("date,ticker,close\n2020-01-02,CCC,1\n2020-01-03,CCC,2\n")
    return p


@pytest.mark.parametrize("name,how", [("prices", "truncated"), ("prices", "empty"), ("meta", "garbage"),
                                      ("manifest", "truncated")])
def test_commands_name_the_damaged_file(tmp_path: Path, name: str, how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    home = _filled(tmp_path)
    path = home / "store" / f"{name}.parquet"
    _damage(path, how)
    spec = importlib.util.spec_from_file_location("yahoo_fake", FAKE_PATH)
    assert spec is not None and spec.loader is not None
    fake_mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fake_mod)
    fake = fake_mod.FakeYahoo({"AAA": fake_mod.truth_frame(40, "2024-01-02", seed=0)})
    monkeypatch.setattr(refresh_cmd, "make_adapter", lambda ws: fake)
    commands = [["data", "import", str(_csv(tmp_path))], ["data", "sample"], ["data", "refresh", "-t", "AAA"],
                ["views", "build", "--no-progress"]]
    refused = 0
    for args in commands:  # a command that needs the file refuses clearly; one that does not may go on
        result = runner.invoke(app, ["--home", str(home), *args])
        text = " ".join(result.output.split())
        assert result.exit_code in (0, 1), (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
        assert "Traceback" not in text
        if result.exit_code == 1:
            refused += 1
            assert f"{name}.parquet" in text and "damaged" in text, (args, text)
            assert "remove it" in text or "move it away" in text, (args, text)
    assert refused >= 2
    # data status still reports: the table of what can be read, then the damaged file and what to do
    result = runner.invoke(app, ["--home", str(home), "data", "status"], env={"COLUMNS": "200"})
    text = " ".join(result.output.split())
    assert result.exit_code == 1
    assert "Traceback" not in text and f"{name}.parquet" in text and "damaged" in text
    if name != "prices":
        assert "AAA" in text and "BBB" in text  # the prices are readable: their coverage is shown


def test_damaged_files_lists_every_bad_file(tmp_path: Path) -> None:
    home = _filled(tmp_path)
    store = Store(home / "store")
    assert store.damaged_files() == []
    _damage(store.meta_path, "truncated")
    _damage(store.manifest_path, "empty")
    errors = store.damaged_files()
    assert [Path(e.file or "").name for e in errors] == ["manifest.parquet", "meta.parquet"]
    with pytest.raises(DataError, match="meta.parquet"):
        store.read_meta()


def test_killed_between_prices_and_manifest_leaves_tickers_marked(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    home = _filled(tmp_path)
    store = Store(home / "store")

    def killed(*a: Any, **k: Any) -> None:
        raise SystemExit(137)  # the process dies after the prices are replaced, before the manifest is

    real = store.upsert_prices
    calls: list[int] = []

    def prices_then_die(df: pl.DataFrame, **kw: Any) -> pl.DataFrame:
        out = real(df, **kw)
        calls.append(1)
        killed()
        return out

    monkeypatch.setattr(store, "upsert_prices", prices_then_die)
    from dynmix.data.sources.csv import import_file

    with pytest.raises(SystemExit):
        import_file(store, _csv(tmp_path))
    assert calls == [1]
    manifest = Store(home / "store").read_manifest()
    ccc = manifest.filter(pl.col("ticker") == "CCC")
    assert ccc["status"].to_list() == [INTERRUPTED]  # never "ok" for a write that did not finish
    assert "again" in ccc["message"][0]
    assert set(manifest.filter(pl.col("status") == "ok")["ticker"]) == {"AAA", "BBB"}
    result = runner.invoke(app, ["--home", str(home), "data", "status"], env={"COLUMNS": "200"})
    assert "1 failed" in " ".join(result.output.split()) and INTERRUPTED in result.output
    # running the import again completes it
    import_file(Store(home / "store"), _csv(tmp_path))
    assert Store(home / "store").read_manifest()["status"].to_list() == ["ok"] * 3


def test_failed_price_write_restores_the_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = _filled(tmp_path)
    store = Store(home / "store")
    before = store.read_manifest()

    def disk_full(self: Store, df: pl.DataFrame) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Store, "_write_prices_file", disk_full)
    with pytest.raises(OSError):
        store.upsert_prices(make_prices(["DDD"], n_days=5))
    assert store.read_manifest().equals(before)
