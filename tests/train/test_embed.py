from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
import torch

from dynmix.config import DynMIXConfig
from dynmix.models.dynmix import DynMIX
from dynmix.runs import embeddings as emb
from dynmix.runs.panel import build_panel
from dynmix.train.embed import VIEWS, embeddings_frame, export_embeddings
from dynmix.views.tensors import ViewTensors

from .conftest import make_views


def test_every_valid_sample_gets_three_views(views: ViewTensors, tiny_cfg: Callable[..., DynMIXConfig]) -> None:
    cfg = tiny_cfg()
    torch.manual_seed(0)
    model = DynMIX(cfg.model, len(views.feature_names), len(views.channels), views.window)
    model.train()({"explicit": torch.randn(32, 6), "implicit": torch.randn(32, 20, 2)})  # moves BN statistics
    df = embeddings_frame(model, views, dates_per_batch=7)
    assert model.training, "the model's mode is restored"
    n_valid = int(views.valid().sum())
    assert df.height == 3 * n_valid
    assert df.schema == pl.Schema({"date": pl.Date, "ticker": pl.String, "view": pl.String,
                                   "embedding": pl.List(pl.Float32)})
    assert df.group_by("view").len().sort("view")["len"].to_list() == [n_valid] * 3
    assert set(df["view"].unique()) == set(VIEWS)
    assert df["embedding"].list.len().unique().to_list() == [cfg.model.dim]
    imp = df.filter(pl.col("view") == "implicit")
    assert imp.select(pl.struct("date", "ticker").is_unique().all()).item()
    assert imp["date"].is_sorted()
    # values are the eval-mode embeddings of those samples
    ti = {k: v for v, k in enumerate(views.tickers)}
    di = {k: v for v, k in enumerate(views.dates)}
    rows = imp[[0, 17, imp.height - 1]]
    i = torch.tensor([ti[x] for x in rows["ticker"]])
    t = torch.tensor([di[x] for x in rows["date"]])
    model.eval()
    with torch.no_grad():
        ref = model.embed({"explicit": views.explicit_features(i, t), "implicit": views.implicit_windows(i, t)})
    got = np.stack(rows["embedding"].to_list())
    np.testing.assert_allclose(got, ref["implicit"].numpy(), rtol=1e-5, atol=1e-6)
    assert bool(views.valid()[i, t].all())


def _model(views: ViewTensors, cfg: DynMIXConfig) -> DynMIX:
    torch.manual_seed(0)
    model = DynMIX(cfg.model, len(views.feature_names), len(views.channels), views.window)
    model.train()({"explicit": torch.randn(32, len(views.feature_names)), "implicit": torch.randn(32, views.window, 2)})
    return model.eval()


def test_the_export_is_float16_by_year_and_reads_back_as_the_frame(tiny_cfg: Callable[..., DynMIXConfig],
                                                                   tmp_path: Path) -> None:
    views = make_views(t=300)  # 2015 and 2016
    model = _model(views, tiny_cfg())
    ref = embeddings_frame(model, views, dates_per_batch=64)
    out = export_embeddings(model, views, tmp_path / "embeddings", dates_per_batch=47)  # a block spans the new year
    assert sorted(p.name for p in out.iterdir()) == ["embeddings.json", "year=2015", "year=2016"]
    meta = emb.read_meta(out)
    assert (meta["dim"], meta["every"], meta["dtype"], meta["rows"]) == (8, 1, "float16", int(views.valid().sum()))
    schema = pl.read_parquet_schema(out / "year=2016" / "part.parquet")
    assert schema["explicit"] == pl.Array(pl.Float16, 8) and "fused" not in schema  # fused is made on read
    col = pq.ParquetFile(out / "year=2016" / "part.parquet").metadata.row_group(0).column(2)
    assert col.path_in_schema.startswith("explicit") and "BYTE_STREAM_SPLIT" in col.encodings
    got = emb.read_embeddings(out)
    assert got.select("date", "ticker", "view").equals(ref.select("date", "ticker", "view"))
    a, b = (np.asarray(f["embedding"].list.to_array(8).to_numpy()) for f in (got, ref))
    np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-3)  # float16: ~3 significant digits
    fused = got.filter(pl.col("view") == "fused")["embedding"].to_list()
    e, i = (np.stack(got.filter(pl.col("view") == v)["embedding"].to_list()) for v in ("explicit", "implicit"))
    np.testing.assert_allclose(np.stack(fused), (e + i) / 2, rtol=1e-6)
    one = emb.scan_view(out, "implicit", dt.date(2016, 1, 4), dt.date(2016, 1, 31), ["T03", "T04"]).collect()
    assert one["date"].dt.month().unique().to_list() == [1] and one["date"].dt.year().unique().to_list() == [2016]
    assert sorted(one["ticker"].unique()) == ["T03", "T04"]
    assert emb.embedding_dim(out) == 8 and emb.stored_views(out) == sorted(VIEWS)
    assert emb.dates(out) == sorted(ref["date"].unique().to_list())


def test_every_k_dates_counted_back_from_the_last(tiny_cfg: Callable[..., DynMIXConfig], tmp_path: Path) -> None:
    views = make_views(t=300)
    model = _model(views, tiny_cfg())
    out = export_embeddings(model, views, tmp_path / "embeddings", dates_per_batch=64, every=5)
    kept = emb.dates(out)
    valid_dates = [views.dates[k] for k in torch.nonzero(views.valid().any(dim=0)).flatten().tolist()]
    assert kept == valid_dates[::-1][::5][::-1] and kept[-1] == valid_dates[-1]
    assert emb.every(out) == 5 and emb.read_meta(out)["rows"] == int(views.valid()[:, [
        views.dates.index(d) for d in kept]].sum())
    with pytest.raises(ValueError, match="every = 0"):
        export_embeddings(model, views, tmp_path / "e2", every=0)


def test_an_older_runs_embeddings_parquet_reads_the_same_way(views: ViewTensors,
                                                             tiny_cfg: Callable[..., DynMIXConfig],
                                                             tmp_path: Path) -> None:
    model = _model(views, tiny_cfg())
    frame = embeddings_frame(model, views, dates_per_batch=64)
    frame.write_parquet(tmp_path / "embeddings.parquet")
    legacy = tmp_path / "embeddings.parquet"
    assert emb.is_legacy(legacy) and emb.every(legacy) == 1 and emb.embedding_dim(legacy) == 8
    assert emb.read_embeddings(legacy).equals(frame)
    got = emb.scan_view(legacy, "fused", views.dates[100], views.dates[120]).collect()
    assert got["date"].min() >= views.dates[100] and got.columns == ["date", "ticker", "embedding"]


def test_the_world_panel_fills_the_dates_a_strided_export_skipped(views: ViewTensors,
                                                                  tiny_cfg: Callable[..., DynMIXConfig],
                                                                  tmp_path: Path) -> None:
    model = _model(views, tiny_cfg())
    computed = build_panel(model, views, 100.0)
    full = build_panel(model, views, 100.0, embeddings=export_embeddings(model, views, tmp_path / "a", 64))
    strided = build_panel(model, views, 100.0, embeddings=export_embeddings(model, views, tmp_path / "b", 64, every=4))
    for panel in (full, strided):
        assert torch.equal(panel.valid, computed.valid)
        torch.testing.assert_close(panel.reps, computed.reps, rtol=2e-3, atol=2e-3)


def test_values_beyond_float16_are_clipped_and_counted(tmp_path: Path) -> None:
    x = np.array([[1.0, 1e6], [-7e4, 0.5]], dtype=np.float32)
    blocks = iter([(pl.Series([dt.date(2020, 1, 2)] * 2), pl.Series(["A", "B"]), x, x)])
    out = emb.write_embeddings(blocks, tmp_path / "embeddings", dim=2)
    assert emb.read_meta(out)["clipped"] == 4
    got = np.stack(emb.read_embeddings(out, ["explicit"])["embedding"].to_list())
    assert got[0, 1] == pytest.approx(65504.0) and got[1, 0] == pytest.approx(-65504.0)
