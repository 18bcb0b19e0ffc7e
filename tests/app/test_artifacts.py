"""The dashboard's pure readers (app/artifacts.py) and embedding logic (app/embedmap.py)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest

from app import artifacts, embedmap


def test_monthly_coverage_counts_shares_of_the_union_calendar():
    days = [dt.date(2024, 1, d) for d in (2, 3, 4, 5)] + [dt.date(2024, 2, d) for d in (1, 2)]
    prices = pl.DataFrame({"date": days + days[:2] + days[4:5], "ticker": ["A"] * 6 + ["B"] * 3})
    cov = artifacts.monthly_coverage(prices)
    got = {(t, m.month): s for t, m, s in cov.iter_rows()}
    assert got == {("A", 1): 1.0, ("A", 2): 1.0, ("B", 1): 0.5, ("B", 2): 0.5}
    assert artifacts.monthly_coverage(prices.clear()).height == 0


def test_section_table_flattens_nested_reports():
    section = {"dynmix": {"qlike": 0.1, "by_h": {"1": 0.2}}, "har": {"qlike": 0.3}, "n_days": 10, "notes": ["x"]}
    table = artifacts.section_table(section)
    assert table["method"].to_list() == ["dynmix", "har", "(all)"]
    assert table["qlike"].to_list() == [0.1, 0.3, None]
    assert table["by_h/1"].to_list() == [0.2, None, None]
    assert table["n_days"].to_list() == [None, None, 10.0]
    assert artifacts.section_table(None).height == 0
    assert artifacts.section_table({"a": {"x": 1, "y": "text"}, "b": {"x": "mixed"}}).height == 2


def test_metrics_frame_reads_keys_dynamically_and_skips_a_torn_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps({"step": 20, "loss": 2.0}) + "\n" + json.dumps({"step": 10, "loss": 3.0, "new": 1})
                    + "\n" + '{"step": 30, "lo')
    df = artifacts.metrics_frame(path)
    assert df["step"].to_list() == [10.0, 20.0]
    assert df["new"].to_list() == [1.0, None]
    assert artifacts.metrics_frame(tmp_path / "absent.jsonl").height == 0


def test_readers_tolerate_absent_and_broken_files(tmp_path):
    (tmp_path / "bad.json").write_text("[1, 2")
    (tmp_path / "bad.parquet").write_text("not parquet")
    assert artifacts.read_json(tmp_path / "bad.json") == {}
    assert artifacts.read_json(tmp_path / "absent.json") == {}
    assert artifacts.read_parquet(tmp_path / "bad.parquet") is None
    assert artifacts.version(tmp_path / "absent") == artifacts.NONE_VERSION
    assert artifacts.nested({"a": {"b": 1}}, "a", "b") == 1 and artifacts.nested({"a": 1}, "a", "b") is None


def test_runs_table_headlines(full_home, facts):
    runs = sorted((full_home / "runs").iterdir(), reverse=True)
    table = artifacts.runs_table(runs)
    assert table["run"].to_list() == [facts.full_run, facts.partial_run]
    assert table["best planner Sharpe"].to_list() == ["hrp 0.80", None]
    assert table["embeddings"].to_list() == [True, False]
    assert artifacts.runs_table([]).height == 0


def test_embeddings_on_a_date_and_over_a_period(full_home, facts):
    path = full_home / "runs" / facts.full_run / "embeddings.parquet"
    views, dates = embedmap.views_and_dates(path)
    assert views == ["explicit", "fused", "implicit"]
    tickers, x = embedmap.on_date(path, "implicit", dates[5])
    assert tickers == sorted(facts.sectors) and x.shape == (len(tickers), facts.dim)
    mt, mx = embedmap.over_period(path, "implicit", dates[0], dates[-1])
    assert mt == tickers and mx.shape == x.shape
    assert np.linalg.norm(mx.std(axis=0)) < np.linalg.norm(x.std(axis=0)) * 2  # means are less noisy


def test_cosine_neighbours_and_similarity_over_time(full_home, facts):
    tickers = ["A", "B", "C"]
    x = np.array([[1.0, 0.0], [0.9, 0.1], [-1.0, 0.0]])
    nn = embedmap.cosine_neighbours(tickers, x, "A", k=5)
    assert nn["ticker"].to_list() == ["B", "C"]
    assert nn["similarity"][1] == pytest.approx(-1.0)
    assert embedmap.cosine_neighbours(tickers, x, "Z").height == 0
    path = full_home / "runs" / facts.full_run / "embeddings.parquet"
    sim = embedmap.similarity_over_time(path, "implicit", "AAA", ["AAB", "BBA"])
    assert set(sim["ticker"]) == {"AAB", "BBA"}
    assert sim["similarity"].is_between(-1.0, 1.0).all()
    mean = sim.group_by("ticker").agg(pl.col("similarity").mean()).sort("ticker")["similarity"].to_list()
    assert mean[0] > mean[1]  # the sector mate is more similar than the other sector


def test_projection_methods_and_fallback():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 6))
    xy, note = embedmap.project(x, "PCA")
    assert xy.shape == (12, 2) and note == ""
    xy, _ = embedmap.project(x, "t-SNE")
    assert xy.shape == (12, 2) and np.isfinite(xy).all()
    xy, note = embedmap.project(x[:3], "t-SNE")
    assert xy.shape == (3, 2) and "PCA shown instead" in note
    xy, note = embedmap.project(x[:, :1], "PCA")
    assert xy.shape == (12, 2) and np.all(xy[:, 1] == 0)
    assert embedmap.available_methods()[:2] == ["PCA", "t-SNE"]
    labels = embedmap.kmeans_labels(np.vstack([x[:6] + 10, x[6:] - 10]), 2)
    assert len(set(labels[:6])) == 1 and len(set(labels[6:])) == 1 and labels[0] != labels[-1]


def test_the_map_reads_the_float16_yearly_layout_like_the_older_file(full_home, facts, tmp_path):
    from dynmix.runs import embeddings as emb

    legacy = full_home / "runs" / facts.full_run / "embeddings.parquet"
    frame = pl.read_parquet(legacy).sort("date", "ticker")
    e, i = (frame.filter(pl.col("view") == v) for v in ("explicit", "implicit"))
    d = facts.dim
    blocks = iter([(e["date"], e["ticker"], e["embedding"].list.to_array(d).to_numpy(),
                    i["embedding"].list.to_array(d).to_numpy())])
    new = emb.write_embeddings(blocks, tmp_path / "embeddings", dim=d)
    assert embedmap.views_and_dates(new) == embedmap.views_and_dates(legacy)
    day = embedmap.views_and_dates(legacy)[1][5]
    (t_old, x_old), (t_new, x_new) = (embedmap.on_date(p, "implicit", day) for p in (legacy, new))
    assert t_old == t_new and np.allclose(x_old, x_new, atol=5e-3)  # float16
    sim_old, sim_new = (embedmap.similarity_over_time(p, "implicit", "AAA", ["AAB", "BBA"]) for p in (legacy, new))
    assert sim_old.select("date", "ticker").equals(sim_new.select("date", "ticker"))
    assert np.allclose(sim_old["similarity"].to_numpy(), sim_new["similarity"].to_numpy(), atol=1e-3)
