from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

import torch

from dynmix.losses import gather_cat, is_distributed, rank, world_size

WORKER = Path(__file__).with_name("ddp_worker.py")


def test_helpers_without_a_process_group() -> None:
    z = torch.randn(3, 2, requires_grad=True)
    assert gather_cat(z) is z
    assert (is_distributed(), rank(), world_size()) == (False, 0, 1)


def test_two_gloo_ranks_match_single_process(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(r), "2", str(tmp_path / "init"), str(tmp_path / f"rank{r}.pt")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for r in range(2)
    ]
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0, out
    ref = runpy.run_path(str(WORKER))
    expect = ref["compute"](ref["data"]())
    for r in range(2):
        got = torch.load(tmp_path / f"rank{r}.pt")
        torch.testing.assert_close(got["gathered"], expect["gathered"])  # rank order, padding stripped
        torch.testing.assert_close(got["loss"], expect["loss"])
        torch.testing.assert_close(got["sigreg"], expect["sigreg"])
        for g_got, g_exp in zip(got["grads"], expect["grads"], strict=True):
            torch.testing.assert_close(g_got, g_exp, rtol=1e-5, atol=1e-6)
