"""`dynmix demo --synthetic` end to end: the implicit branch recovers the planted sectors out of sample.

The default market (100 companies x 5 sectors x 12 years; 2 epochs of the small model) trains the market-vol run
and the static ablation; `report.json` must show sector recovery from the test-period mean implicit embeddings
(ARI >= 0.9, issue #4) with the baselines beside it. ~3 min on 2 CPU cores: the suite's one long case, kept in
the default run because it is the check that DynMIX learns what it should.
"""

from __future__ import annotations

import io
import json

import polars as pl
from rich.console import Console
from typer.testing import CliRunner

from dynmix.cli.app import app
from dynmix.data.store import Store
from dynmix.runs.embeddings import read_embeddings
from dynmix.workspace import Workspace
from pipelines.synthetic import run_synthetic


def test_synthetic_report_recovers_the_planted_sectors(home: Workspace) -> None:
    out = io.StringIO()
    result = run_synthetic(home, device="cpu", console=Console(file=out, width=140), forecast=False)
    report = json.loads((result["run"] / "report.json").read_text())
    sector = report["sector"]
    print({m: round(v["ari"], 3) for m, v in sector.items()})
    static = f"{result['static_run'].name}_implicit"
    assert {"dynmix_implicit", "dynmix_explicit", "dynmix_fused", "pca", "correlation", "random", static} <= set(sector)
    assert sector["dynmix_implicit"]["ari"] >= 0.9  # test-period means of the branch that never sees the sector
    assert sector["dynmix_implicit"]["knn_accuracy"] >= 0.9
    assert sector["random"]["ari"] < 0.2
    test_start = read_embeddings(result["run"] / "embeddings", ["implicit"])["date"].max()
    assert str(test_start) > report["split"]["train_end"]  # the encoders embedded dates they never trained on
    assert "ARI" in out.getvalue()


def test_demo_synthetic_flag_refuses_a_store_with_other_data(home: Workspace, prices: pl.DataFrame) -> None:
    store = Store(home.store)
    store.write_prices(prices)
    store.upsert_manifest(store.manifest_from_prices("csv"))
    before = sorted(p.name for p in home.store.rglob("*"))
    res = CliRunner().invoke(app, ["--home", str(home.home), "demo", "--synthetic", "--epochs", "1"])
    assert res.exit_code == 1, res.output
    assert "synthetic" in res.output.lower()
    assert sorted(p.name for p in home.store.rglob("*")) == before  # the stored data was left as it was
