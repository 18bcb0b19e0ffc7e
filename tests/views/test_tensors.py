"""tensors.py on a hand-written views folder: panel scatter, masks, window gathers, the date-blocked sampler."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from dynmix.errors import DynMIXError
from dynmix.io import write_json
from dynmix.views.tensors import SECTOR_SCALE, DateBlockSampler, ViewTensors, load_view_tensors

T = 10
DATES = [dt.date(2020, 1, 1) + dt.timedelta(days=k) for k in range(T)]


@pytest.fixture
def views(tmp_path: Path) -> ViewTensors:
    """3 companies x 10 dates, L = 3, min_window_obs = 2; ret_scaled = 10 * i + t + 1 so gathers are readable.

    A: every day; B: lists on day 4; C: misses days 5 and 6 and has no explicit view on day 8.
    """
    rows = [(tk, t) for i, tk in enumerate("ABC") for t in range(T)
            if not (tk == "B" and t < 4) and not (tk == "C" and t in (5, 6))]
    ret = pl.DataFrame({
        "ticker": [r[0] for r in rows], "date": [DATES[r[1]] for r in rows],
        "ret": [0.01 * r[1] for r in rows], "ret_scaled": [10.0 * "ABC".index(r[0]) + r[1] + 1 for r in rows],
    })
    exp = ret.filter(~((pl.col("ticker") == "C") & (pl.col("date") == DATES[8]))).select(
        "date", "ticker", (pl.col("ret_scaled") * 2).cast(pl.Float32).alias("f1"), pl.lit(1.0, pl.Float32).alias("f2"))
    mkt = pl.DataFrame({"date": DATES, "mkt_ret": [0.0] * T, "mkt_scaled": [-float(t) for t in range(T)],
                        "market_vol": [None] + [0.1 * t for t in range(1, T)], "dispersion": [0.2] * T})
    d = tmp_path / "views"
    d.mkdir()
    exp.write_parquet(d / "explicit.parquet")
    ret.write_parquet(d / "returns.parquet")
    mkt.write_parquet(d / "market.parquet")
    write_json({"feature_names": ["f1", "f2"], "channels": ["ret_scaled", "mkt_scaled"], "window": 3,
                "min_window_obs": 2}, d / "views.json")
    return load_view_tensors(d)


def test_panels_are_scattered_with_masks(views: ViewTensors) -> None:
    assert views.tickers == ["A", "B", "C"] and views.dates == DATES and views.explicit.shape == (3, T, 2)
    assert views.explicit[1, 5, 0].item() == 2 * (10 + 5 + 1) and views.explicit[1, 3].tolist() == [0.0, 0.0]
    assert views.explicit_mask[1].tolist() == [False] * 4 + [True] * 6
    assert views.explicit_mask[2].tolist() == [True] * 5 + [False, False, True, False, True]
    assert views.returns_mask[2, 5:7].tolist() == [False, False] and views.returns[2, 5, 0].item() == 0.0
    assert np.isnan(views.raw_returns[1, :4].numpy()).all() and views.raw_returns[0, 3].item() == pytest.approx(0.03)
    assert views.returns[1, 7].tolist() == [18.0, -7.0]  # (company, market) channels
    assert views.market_vol[0].item() == 0.0 and views.market_vol[2].item() == pytest.approx(0.2)


def test_window_obs_and_valid(views: ViewTensors) -> None:
    assert views.window_obs()[1].tolist() == [0, 0, 0, 0, 1, 2, 3, 3, 3, 3]
    assert views.window_obs()[2].tolist() == [1, 2, 3, 3, 3, 2, 1, 1, 2, 3]
    valid = views.valid()
    assert valid[0].tolist() == [False, False] + [True] * 8  # a window needs L - 1 earlier dates
    assert valid[1].tolist() == [False] * 5 + [True] * 5
    assert valid[2].tolist() == [False, False, True, True, True, False, False, False, False, True]


def test_implicit_windows_gather_oldest_first(views: ViewTensors) -> None:
    w = views.implicit_windows(torch.tensor([0, 2, 1]), torch.tensor([4, 7, 9]))  # (B, L, C)
    assert w.shape == (3, 3, 2)
    assert w[0, :, 0].tolist() == [3.0, 4.0, 5.0] and w[0, :, 1].tolist() == [-2.0, -3.0, -4.0]
    assert w[1, :, 0].tolist() == [0.0, 0.0, 28.0]  # days 5, 6 missing for C: zero, and masked out by valid()
    assert w[2, :, 0].tolist() == [18.0, 19.0, 20.0]
    assert views.explicit_features(torch.tensor([2]), torch.tensor([4])).tolist() == [[2 * 25.0, 1.0]]
    assert views.date_index("2020-01-05") == 4 and views.date_index(dt.date(2030, 1, 1)) == T - 1
    with pytest.raises(DynMIXError, match="before the first view date"):
        views.date_index("2019-12-31")


def _sector_views(tmp_path: Path) -> Path:
    """Views of A (every date) and B (from date 3) with f1 = t, two sector columns and short_history = t < 5."""
    names = ["f1", "sector_a", "sector_b", "short_history"]
    rows = [(tk, t) for tk in "AB" for t in range(T) if not (tk == "B" and t < 3)]
    is_b = [float(r[0] == "B") for r in rows]
    d = tmp_path / "views"
    d.mkdir()
    pl.DataFrame({"date": [DATES[r[1]] for r in rows], "ticker": [r[0] for r in rows],
                  "f1": [float(r[1]) for r in rows], "sector_a": [1 - b for b in is_b], "sector_b": is_b,
                  "short_history": [float(r[1] < 5) for r in rows]},
                 schema_overrides=dict.fromkeys(names, pl.Float32)).write_parquet(d / "explicit.parquet")
    pl.DataFrame({"date": [DATES[r[1]] for r in rows], "ticker": [r[0] for r in rows], "ret": [0.01] * len(rows),
                  "ret_scaled": [1.0] * len(rows)}).write_parquet(d / "returns.parquet")
    pl.DataFrame({"date": DATES, "mkt_ret": [0.0] * T, "mkt_scaled": [0.0] * T, "market_vol": [0.1] * T,
                  "dispersion": [0.2] * T}).write_parquet(d / "market.parquet")
    write_json({"feature_names": names, "channels": ["ret_scaled", "mkt_scaled"], "window": 3,
                "min_window_obs": 2}, d / "views.json")
    return d


def test_sector_columns_kept_once_per_company_and_put_back_in_place(tmp_path: Path) -> None:
    """The sector one-hots are (N, S), not (N, T, S) panels; a batch gets every feature in `feature_names` order."""
    vt = load_view_tensors(_sector_views(tmp_path))
    assert vt.explicit.shape == (2, T, 2) and vt.sectors.tolist() == [[SECTOR_SCALE, 0.0], [0.0, SECTOR_SCALE]]
    x = vt.explicit_features(torch.tensor([1, 0, 1]), torch.tensor([7, 2, 4]))
    assert x.tolist() == [[7.0, 0.0, SECTOR_SCALE, 0.0], [2.0, SECTOR_SCALE, 0.0, 1.0], [4.0, 0.0, SECTOR_SCALE, 1.0]]
    assert vt.feature("short_history")[1].tolist() == [0.0] * 3 + [1.0] * 2 + [0.0] * 5
    assert vt.feature("sector_b")[1].tolist() == [SECTOR_SCALE] * T and vt.feature("f1")[0, 6].item() == 6.0


def test_every_k_loads_the_explicit_rows_of_every_kth_date_from_the_last(tmp_path: Path) -> None:
    d = _sector_views(tmp_path)
    full, vt = load_view_tensors(d), load_view_tensors(d, every=4)
    kept = [1, 5, 9]  # counted back from the last date, 9 (date 1 is before the first full window)
    assert vt.explicit.shape == (2, 3, 2) and vt.explicit_rows.tolist() == [-1, 0, -1, -1, -1, 1, -1, -1, -1, 2]
    on_kept = torch.zeros(T, dtype=torch.bool)
    on_kept[kept] = True
    assert torch.equal(vt.valid(), full.valid() & on_kept) and torch.equal(vt.returns, full.returns)
    i, t = torch.nonzero(vt.valid(), as_tuple=True)
    assert i.numel() == 4 and torch.equal(vt.explicit_features(i, t), full.explicit_features(i, t))
    assert torch.equal(vt.feature("f1"), torch.where(on_kept, full.feature("f1"), 0.0))
    assert torch.equal(vt.feature("sector_a"), full.feature("sector_a"))
    with pytest.raises(DynMIXError, match="every = 0"):
        load_view_tensors(d, every=0)


def test_sampler_yields_allowed_dates_with_all_their_valid_companies(views: ViewTensors) -> None:
    valid = views.valid()
    allowed = torch.tensor([t < 8 for t in range(T)])
    sampler = DateBlockSampler(valid, allowed, dates_per_batch=2, seed=3)
    usable = {t for t in range(T) if allowed[t] and valid[:, t].sum() >= 2}
    assert usable == {2, 3, 4, 5, 6, 7} and len(sampler) == 3
    batches = list(sampler.epoch(0))
    seen = [int(t) for _, tt in batches for t in tt.unique()]
    assert sorted(seen) == sorted(usable)  # each usable date once per epoch, never a disallowed one
    for ii, tt in batches:
        for t in tt.unique().tolist():
            assert sorted(ii[tt == t].tolist()) == torch.nonzero(valid[:, t]).flatten().tolist()
    again = list(DateBlockSampler(valid, allowed, dates_per_batch=2, seed=3).epoch(0))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(batches, again, strict=True))
    orders = {tuple(int(tt[0]) for _, tt in sampler.epoch(e)) for e in range(6)}
    assert len(orders) > 1  # a new permutation each epoch


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_a_capped_draw_and_its_gathers_never_wait_for_the_device(tmp_path: Path) -> None:
    """Every batch of an epoch drawn, capped and gathered on the GPU with torch's sync check at "error": the same
    batches and features as on the CPU, and the host never waits (it can queue the next step).
    """
    cpu = load_view_tensors(_sector_views(tmp_path))
    gpu = cpu.to(torch.device("cuda"))
    allowed = torch.ones(T, dtype=torch.bool)
    on_cpu = list(DateBlockSampler(cpu.valid(), allowed, dates_per_batch=3, seed=1, max_samples=4).epoch(0))
    sampler = DateBlockSampler(gpu.valid(), allowed.cuda(), dates_per_batch=3, seed=1, max_samples=4)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        drawn = [(i, t, gpu.explicit_features(i, t), gpu.implicit_windows(i, t)) for i, t in sampler.epoch(0)]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(drawn) == len(on_cpu) and all(i.is_cuda and t.is_cuda for i, t, _, _ in drawn)
    for (i, t, x, w), (ci, ct) in zip(drawn, on_cpu, strict=True):
        assert torch.equal(i.cpu(), ci) and torch.equal(t.cpu(), ct)
        assert torch.equal(x.cpu(), cpu.explicit_features(ci, ct))
        assert torch.equal(w.cpu(), cpu.implicit_windows(ci, ct))


def test_sampler_refuses_when_no_date_is_usable(views: ViewTensors) -> None:
    with pytest.raises(DynMIXError, match="at least two valid companies"):
        DateBlockSampler(views.valid(), torch.zeros(T, dtype=torch.bool), dates_per_batch=2)


def test_missing_views_folder(tmp_path: Path) -> None:
    with pytest.raises(DynMIXError, match="dynmix views build"):
        load_view_tensors(tmp_path / "nothing")
