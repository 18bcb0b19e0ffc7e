"""The repository cites nothing outside itself: design references point at docs/DESIGN.md, whose sections exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITE = re.compile(r"docs/DESIGN\.md §(\d+)")


def _texts() -> list[Path]:
    dirs = ("dynmix", "app", "pipelines", "tests", "benchmarks", "docs")
    files = [p for d in dirs for p in (ROOT / d).rglob("*") if p.suffix in {".py", ".md", ".toml"}]
    return [*files, ROOT / "README.md", ROOT / "pyproject.toml"]


def test_no_file_refers_outside_the_repository() -> None:
    outside = [f"{p.relative_to(ROOT)}:{i}" for p in _texts() if p != Path(__file__)
               for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
               if "../shared" in line or re.search(r"(?<!docs/)DESIGN §|STYLE \d", line)]
    assert not outside, f"references outside the repository: {outside}"


def test_design_sections_cited_in_the_code_exist() -> None:
    design = (ROOT / "docs" / "DESIGN.md").read_text(encoding="utf-8")
    sections = {int(n) for n in re.findall(r"^## (\d+)\.", design, flags=re.M)}
    cited = {int(n) for p in _texts() for n in CITE.findall(p.read_text(encoding="utf-8"))}
    assert cited and cited <= sections, f"cited sections missing from docs/DESIGN.md: {sorted(cited - sections)}"
