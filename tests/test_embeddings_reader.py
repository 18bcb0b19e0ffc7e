"""A run's embeddings are read in one place (dynmix/runs/embeddings.py), so every reader follows the on-disk layout:
a module that filtered the long `view` column itself read only the layout of older runs and failed on new ones."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OWNERS = {"dynmix/runs/embeddings.py", "dynmix/runs/rundir.py", "dynmix/train/embed.py", "dynmix/embedder.py"}
DIRECT = re.compile(r'pl\.col\("view"\)\s*==|embeddings\.parquet"')  # the long layout's view filter, its file name


def test_only_the_embeddings_module_reads_the_layout() -> None:
    files = [p for d in ("dynmix", "app", "pipelines") for p in (ROOT / d).rglob("*.py")]
    direct = [f"{p.relative_to(ROOT)}:{i}" for p in files if str(p.relative_to(ROOT)) not in OWNERS
              for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if DIRECT.search(line)]
    assert not direct, f"read the run's embeddings through dynmix.runs.embeddings (scan_view), not directly: {direct}"
