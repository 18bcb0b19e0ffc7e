from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl
import torch

from dynmix.config import DynMIXConfig
from dynmix.models.dynmix import DynMIX
from dynmix.train.embed import VIEWS, embeddings_frame
from dynmix.views.tensors import ViewTensors


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
