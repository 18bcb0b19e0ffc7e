"""Every page on an empty workspace: no exception, its title, and a hint naming the command that fills it."""

from __future__ import annotations

import pytest

PAGES = [
    ("screens/data.py", "Data", "dynmix data sample"),
    ("screens/training.py", "Training", "dynmix train"),
    ("screens/embeddings.py", "Embedding map", "dynmix train"),
    ("screens/forecasts.py", "Forecasts", "dynmix train"),
    ("screens/planner.py", "Planner", "dynmix train"),
]


def test_overview_on_empty_workspace_says_what_to_do(dashboard, empty_home):
    at = dashboard(empty_home).run()
    assert not at.exception
    assert at.title[0].value == "DynMIX — overview"
    text = " ".join(m.value for m in at.markdown)
    assert "dynmix demo" in text and "dynmix data sample" in text
    assert not at.dataframe and not at.metric
    assert not empty_home.exists(), "the dashboard must not create files in the workspace"


@pytest.mark.parametrize(("page", "title", "command"), PAGES)
def test_page_on_empty_workspace_explains_itself(dashboard, empty_home, page, title, command):
    at = dashboard(empty_home).run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == title
    assert any(command in box.value for box in at.info), [box.value for box in at.info]
    assert not at.dataframe
