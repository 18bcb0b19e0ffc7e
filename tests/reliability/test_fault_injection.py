"""Fault injection: kill -9 at random moments of `data import`, `views build`, `train` and `embed`, then check what
is left.

After every kill: the store's files all read; the prices are valid and unique on (ticker, date); every manifest row
saying `ok` agrees with the prices (rows, first and last date), so nothing claims data that was not kept; every
import the worker reported as finished is in the store; the views are one generation whose files match its
manifest, and they load. `$DYNMIX_FAULT_TRIALS` (default 20 per command) and `$DYNMIX_FAULT_SEED` (default 0) set
the number of kills and their random times.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from dynmix.data.schema import validate_prices
from dynmix.data.store import Store
from dynmix.views.generation import BUILDING, check_generation, clean_leftovers, generations_dir, read_generation
from dynmix.views.tensors import load_view_tensors

REPO = Path(__file__).resolve().parents[2]
TRIALS = int(os.environ.get("DYNMIX_FAULT_TRIALS", "20"))
SEED = int(os.environ.get("DYNMIX_FAULT_SEED", "0"))

IMPORTER = """
import sys
sys.path.insert(0, {repo!r})
from pathlib import Path
from dynmix.data.sources.csv import import_file
from dynmix.data.store import Store
from dynmix.lock import writer_lock
home = Path({home!r})
files = sorted(Path({files!r}).glob("*.csv"))
print("ready", flush=True)
k = 0
while True:
    f = files[k % len(files)]
    with writer_lock(home, "fault worker"):
        import_file(Store(home / "store"), f)
    print("done", f.name, flush=True)
    k += 1
"""

BUILDER = """
import sys
sys.path.insert(0, {repo!r})
from pathlib import Path
from dynmix.config import ViewsConfig
from dynmix.data.store import Store
from dynmix.lock import writer_lock
from dynmix.views.build import build_views
home = Path({home!r})
print("ready", flush=True)
k = 0
while True:
    cfg = ViewsConfig(window=20 + 5 * (k % 2), min_window_obs=15, factors=k % 2)
    with writer_lock(home, "fault worker"):
        build_views(Store(home / "store"), home / "views", cfg, progress=False)
    print("done", k, flush=True)
    k += 1
"""


def _csvs(folder: Path) -> Path:
    folder.mkdir()
    rng = random.Random(1)
    for part in range(3):
        rows = ["date,ticker,close,volume"]
        tickers = [f"P{part}T{i:02d}" for i in range(30)] + ["SHARED"]
        for tk in tickers:
            price = 20.0 + rng.random() * 10
            for d in range(120):
                price *= 1 + rng.gauss(0, 0.01)
                day = 1 + d % 28
                rows.append(f"2020-{1 + d // 28:02d}-{day:02d},{tk},{price:.4f},{1000 + d}")
        (folder / f"part{part}.csv").write_text("\n".join(rows) + "\n")
    return folder


def _kill_at_random(script: str, delay: float) -> list[str]:
    proc = subprocess.Popen([sys.executable, "-c", script], text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line == "ready", (line, proc.stderr.read() if proc.stderr else "")
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    return [x for x in out.splitlines() if x.startswith("done")]


def _check_store(store: Store, finished: set[str], parts: Path) -> None:
    assert store.damaged_files() == []
    for prev in store.root.glob("*.parquet.prev"):  # the previous generation `data verify --repair` puts back reads
        pl.read_parquet(prev)
    prices = store.read_prices()
    validate_prices(prices, file=store.prices_path)
    assert not prices.select("ticker", "date").is_duplicated().any()
    truth = store.manifest_from_prices("x").select("ticker", "rows", "first_date", "last_date")
    ok = store.read_manifest().filter(pl.col("status") == "ok").select("ticker", "rows", "first_date", "last_date")
    claimed = ok.join(truth, on="ticker", how="left", suffix="_p")
    bad = claimed.filter((pl.col("rows") != pl.col("rows_p")) | pl.col("rows_p").is_null()
                         | (pl.col("first_date") != pl.col("first_date_p"))
                         | (pl.col("last_date") != pl.col("last_date_p")))
    assert bad.height == 0, f"manifest says ok for data not kept: {bad}"
    listed = set(store.read_manifest()["ticker"].to_list())
    assert set(truth["ticker"].to_list()) <= listed, "prices without a manifest row"
    have = set(prices["ticker"].to_list())
    for name in finished:  # an import reported as finished kept every ticker of its file
        tickers = set(pl.read_csv(parts / name)["ticker"].to_list())
        assert tickers <= have, f"{name} reported done but tickers are missing"


@pytest.mark.slow
def test_kill_9_during_imports(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    parts = _csvs(tmp_path / "parts")
    home = tmp_path / "ws"
    finished: set[str] = set()
    imports = 0
    for _ in range(TRIALS):
        done = _kill_at_random(IMPORTER.format(repo=str(REPO), home=str(home), files=str(parts)), rng.uniform(0, 2.5))
        finished |= {x.split()[1] for x in done}
        imports += len(done)
        _check_store(Store(home / "store"), finished, parts)
    print(f"{TRIALS} kills during imports (seed {SEED}): {imports} imports finished between them, no loss or mix")


@pytest.mark.slow
def test_kill_9_during_views_builds(tmp_path: Path) -> None:
    from tests.conftest import make_prices

    rng = random.Random(SEED + 1)
    home = tmp_path / "ws"
    store = Store(home / "store")
    store.upsert_prices(make_prices([f"E{i:02d}" for i in range(12)], n_days=200))
    store.upsert_meta(pl.DataFrame({"ticker": [f"E{i:02d}" for i in range(12)],
                                    "sector": ["Energy", "Utilities", "Materials"] * 4}))
    store.upsert_manifest(store.manifest_from_prices("csv"))
    builds = 0
    for _ in range(TRIALS):
        builds += len(_kill_at_random(BUILDER.format(repo=str(REPO), home=str(home)), rng.uniform(0, 4.0)))
        views = home / "views"
        if not views.exists():
            continue  # killed before the first build finished: no views, which a reader is told plainly
        folder = views.resolve()
        assert BUILDING not in folder.name
        check_generation(folder, digests=True)
        assert read_generation(views)["store_snapshot"] == store.snapshot()
        vt = load_view_tensors(views)
        assert vt.window in (20, 25) and len(vt.channels) == 2 + (vt.window == 25)
    leftovers = [p for p in generations_dir(home / "views").iterdir() if BUILDING in p.name]
    clean_leftovers(home / "views")
    assert not [p for p in generations_dir(home / "views").iterdir() if BUILDING in p.name]
    print(f"{TRIALS} kills during views builds (seed {SEED + 1}): {builds} builds finished, "
          f"{len(leftovers)} killed builds' folders left for the next build to clean; views always one generation")


TRAINER = """
import sys
sys.path.insert(0, {repo!r})
from pathlib import Path
from dynmix.config import load_config
from dynmix.lock import writer_lock
from dynmix.train import train
from dynmix.workspace import Workspace
ws = Workspace.at({home!r})
cfg = load_config({config!r})
print("ready", flush=True)
with writer_lock(ws.home, "fault worker"):
    train(ws, cfg, progress=False)
print("done", flush=True)
"""


@pytest.mark.slow
def test_kill_9_during_training(tmp_path: Path) -> None:
    from dynmix.config import save_config
    from dynmix.errors import DynMIXError
    from dynmix.runs.rundir import RunDir
    from dynmix.train import train
    from dynmix.workspace import Workspace
    from tests.train.conftest import make_views, tiny_config, write_views

    rng = random.Random(SEED + 2)
    ws = Workspace.at(tmp_path / "ws")
    write_views(make_views(), ws.views)
    save_config(tiny_config(epochs=2), tmp_path / "tiny.toml")
    trials = max(1, TRIALS // 5)
    finished = 0
    for _ in range(trials):
        done = _kill_at_random(TRAINER.format(repo=str(REPO), home=str(ws.home), config=str(tmp_path / "tiny.toml")),
                               rng.uniform(0, 6.0))
        finished += len(done)
        runs = [RunDir(p) for p in ws.list_runs()]
        for rd in runs:  # finished: marker gone and embeddings written; else marked incomplete
            assert rd.incomplete or rd.embeddings_path.exists()
        complete = [rd for rd in runs if not rd.incomplete]
        if complete:
            assert RunDir.latest(ws) == complete[0]  # 'latest' is never a killed run
        elif runs:
            with pytest.raises(DynMIXError, match="no finished run"):
                RunDir.latest(ws)
    killed = [RunDir(p) for p in ws.list_runs() if RunDir(p).incomplete and RunDir(p).checkpoint_path.exists()]
    if killed:  # a killed run with a checkpoint resumes to the end
        train(ws, tiny_config(), resume=killed[0].name, progress=False)
        assert not killed[0].incomplete and killed[0].embeddings_path.exists()
    print(f"{trials} kills during training (seed {SEED + 2}): {finished} finished, {len(killed)} killed with a "
          "checkpoint; 'latest' always a finished run")


EMBEDDER = """
import sys
sys.path.insert(0, {repo!r})
from dynmix.lock import writer_lock
from dynmix.runs.models import load_run
from dynmix.runs.rundir import RunDir
from dynmix.train.embed import export_embeddings
from dynmix.workspace import Workspace
ws = Workspace.at({home!r})
rd = RunDir.resolve(ws, "latest")
cfg, model, vt = load_run(rd, "cpu", views_dir=ws.views)
print("ready", flush=True)
k = 0
while True:
    with writer_lock(ws.home, "fault worker"):
        export_embeddings(model, vt, rd.embeddings_dir, dates_per_batch=8, every=1 + k % 2)
    print("done", k, flush=True)
    k += 1
"""


def _check_embeddings(path: Path, refs: dict[int, pl.DataFrame]) -> str:
    """'absent', or the stride of a complete set equal to the reference export of that stride (no mix)."""
    from dynmix.runs.embeddings import DIR_NAME, read_embeddings, read_meta

    if not path.exists():
        return "absent"
    assert path.name == DIR_NAME
    meta = read_meta(path)  # embeddings.json is written last: a folder holding it is complete
    got = read_embeddings(path)
    ref = refs[int(meta["every"])]
    assert meta["rows"] * 3 == got.height == ref.height, "rows of the files disagree with embeddings.json"
    assert got.select("date", "ticker", "view").equals(ref.select("date", "ticker", "view")), "a mix of exports"
    diff = (got["embedding"].explode() - ref["embedding"].explode()).abs().max()
    assert isinstance(diff, float) and diff < 1e-2, f"embeddings differ from a whole export by {diff}"
    return f"every={meta['every']}"


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_kill_9_during_embed(tmp_path: Path) -> None:
    from dynmix.runs.embeddings import read_embeddings, recover
    from dynmix.runs.models import load_run
    from dynmix.runs.rundir import RunDir
    from dynmix.train import train
    from dynmix.train.embed import export_embeddings
    from dynmix.workspace import Workspace
    from tests.train.conftest import make_views, tiny_config, write_views

    rng = random.Random(SEED + 3)
    ws = Workspace.at(tmp_path / "ws")
    write_views(make_views(n=24, t=400), ws.views)
    rd = RunDir(train(ws, tiny_config(epochs=1), progress=False))
    _, model, vt = load_run(rd, "cpu", views_dir=ws.views)
    t0 = time.perf_counter()
    refs = {k: read_embeddings(export_embeddings(model, vt, tmp_path / f"ref{k}" / "embeddings", dates_per_batch=8,
                                                 every=k)) for k in (1, 2)}
    span = 4 * (time.perf_counter() - t0)  # kills land over ~3 exports of the worker's loop
    seen: dict[str, int] = {}
    exports, restored = 0, 0
    for _ in range(TRIALS):
        exports += len(_kill_at_random(EMBEDDER.format(repo=str(REPO), home=str(ws.home)), rng.uniform(0, span)))
        state = _check_embeddings(rd.embeddings_dir, refs)
        if state == "absent":  # killed between its two renames: the next export's start puts the old set back
            recover(rd.embeddings_dir)
            restored += rd.embeddings_dir.exists()
            state = _check_embeddings(rd.embeddings_dir, refs)
        seen[state] = seen.get(state, 0) + 1
    export_embeddings(model, vt, rd.embeddings_dir, every=1)  # a re-run completes and leaves nothing behind
    assert _check_embeddings(rd.embeddings_dir, refs) == "every=1"
    assert sorted(p.name for p in rd.path.iterdir() if p.name.startswith(".embeddings")) == []
    assert exports > 0, "no export finished between kills: the kills did not cover whole exports"
    print(f"{TRIALS} kills during embed (seed {SEED + 3}): {exports} exports finished between them; after each kill "
          f"{seen}; {restored} previous sets put back from a cut swap; never a mix or a half-file")
