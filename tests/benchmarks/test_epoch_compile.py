"""The measured epoch and the torch.compile case: batch sizing, the date span, a full epoch, a failed compile."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from benchmarks import compile_bench, results
from benchmarks.__main__ import parse
from benchmarks.epoch_bench import dates_per_batch_for, epoch_case, last_training_dates
from benchmarks.views_bench import market_home, polars_case, prepare_case
from dynmix.config import TrainConfig
from dynmix.runs.split import time_split
from dynmix.views.tensors import load_view_tensors


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A built market of 20 tickers x 2 years."""
    root = str(tmp_path_factory.mktemp("bench"))
    prepare_case(root, [20], 2.0)
    polars_case(root, 20, 2.0, repeats=1, warmup=0)
    return root


def test_dates_per_batch_holds_the_batch_near_constant() -> None:
    assert [dates_per_batch_for(n, 8000) for n in (100, 500, 1000, 5000, 20_000)] == [80, 16, 8, 2, 1]


def test_last_training_dates_keeps_the_last_usable_training_dates() -> None:
    valid = torch.ones(3, 10, dtype=torch.bool)  # (N, T)
    valid[1:, 6] = False  # date 6: one company only, not usable
    vt = SimpleNamespace(valid=lambda: valid, dates=[dt.date(2020, 1, 1) + dt.timedelta(d) for d in range(10)],
                         device=torch.device("cpu"))
    cfg = TrainConfig(train_frac=0.8)  # 9 usable dates: the first 7 (indices 0..7 without 6) train
    assert torch.nonzero(last_training_dates(vt, cfg, 3)).flatten().tolist() == [4, 5, 7]  # type: ignore[arg-type]
    assert torch.nonzero(last_training_dates(vt, cfg, 0)).flatten().tolist() == [0, 1, 2, 3, 4, 5, 7]  # type: ignore[arg-type]


def test_epoch_case_with_no_span_trains_one_full_epoch(home: str) -> None:
    out = epoch_case(home, 20, 2.0, epoch_dates=0, batch_samples=20_000, warmup=0, threads=1)
    vt = load_view_tensors(market_home(home, 20, 2.0).views)
    split = time_split(vt, TrainConfig())
    assert out["completed"] and out["epoch_dates"] == split.n_train_dates and out["dates_per_batch"] == 1000
    assert out["steps"] == 1 and out["samples"] == int(vt.valid()[:, split.train_mask].sum())
    assert out["last_date"] == str(split.train_end) and out["epoch_s"] > 0 and out["tensors"]["timing"]["runs"] == 1


def test_compile_case_records_a_failed_compile_and_keeps_eager(home: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("no C++ compiler\nfound")

    monkeypatch.setattr(torch, "compile", broken)
    out = compile_bench.compile_case(home, 20, 2.0, steps=2, warmup=1, dates_per_batch=4, threads=1)
    assert out["compiled"] == {"error": "torch.compile failed: RuntimeError: no C++ compiler found"}
    assert out["eager"]["samples_per_s"] > 0 and "speedup" not in out and len(out["batch_samples"]) == 3
    rows = results.compile_rows({20: out})
    assert [r[2] for r in rows] == ["eager", "torch.compile"] and rows[1][3].startswith("torch.compile failed")


def test_compile_rows_show_speedup_and_compile_time() -> None:
    case = {"device": "cpu", "threads": 2, "warmup_steps": 3, "speedup": 1.25, "compile_s": 55.0,
            "warmup_loss_max_abs_diff": 2e-6,
            "eager": {"samples_per_s": 1000.0, "step_s": {"median": 5.0}, "warmup_s": 15.0},
            "compiled": {"samples_per_s": 1250.0, "step_s": {"median": 4.0}, "warmup_s": 70.0,
                         "recompiles_in_timed_steps": 0}}
    eager, compiled = results.compile_rows({500: case})
    assert eager[3] == "1,000" and compiled[3] == "1,250" and compiled[6] == "1.25x"
    assert "compile ~55.0" in compiled[5]
    md = "\n".join(results.compile_section({500: case}, gpu=False))
    assert "CUDA graphs: not measured: no GPU" in md and "| 500 | cpu (2 threads) | torch.compile |" in md
    assert "loss over the warm-up steps (same seed and batches): 0.000002 at 500 tickers." in md


def test_views_rows_without_pandas_say_not_measured() -> None:
    args = parse(["--quick", "--no-pandas", "--views-sizes", "40"])
    assert args.no_pandas and args.views_sizes == [40] and not args.compile
    polars = {40: {"timing": {"median_s": 0.1, "median_cpu_s": 0.2, "runs": 1}, "peak_rss_mb": 100.0,
                   "n_tickers": 40, "n_dates": 500}}
    (row,) = results.views_rows(polars, {}, [40], 2.0)
    assert row[4] == "not measured (--no-pandas)" and row[7] == "—" and row[1] == "0.10 (1 runs)"


@pytest.mark.slow
def test_compile_case_compiles_and_times_both(home: str) -> None:
    out = compile_bench.compile_case(home, 20, 2.0, steps=2, warmup=2, dates_per_batch=4, threads=1)
    assert "error" not in out["compiled"], out["compiled"]
    assert out["compiled"]["samples_per_s"] > 0 and out["eager"]["samples_per_s"] > 0 and out["speedup"] > 0
    assert out["compiled"]["warmup_s"] > out["eager"]["warmup_s"]  # the compilation
    assert out["warmup_loss_max_abs_diff"] < 1e-3  # the compiled model computes the same loss
