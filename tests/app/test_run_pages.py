"""Training, Embedding map, Forecasts and Planner pages on the fixture workspace, widgets driven and re-run."""

from __future__ import annotations

import datetime as dt

import pytest


def open_page(dashboard, home, page):
    at = dashboard(home).run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_training_page_metrics_and_run_choice(dashboard, full_home, facts):
    at = open_page(dashboard, full_home, "screens/training.py")
    picker = at.selectbox(key="training_run")
    assert picker.options == [facts.full_run, facts.partial_run]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Variance target"] == "market-vol"
    assert metrics["Steps logged"] == "200"
    assert list(at.dataframe[0].value["view"]) == ["explicit", "implicit", "fused"]  # collapse table
    picker.set_value(facts.partial_run).run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Steps logged"] == "30"
    assert any("gamma.parquet" in box.value for box in at.info)  # absent for the partial run
    at.switch_page("screens/forecasts.py").run()  # the chosen run follows the user to the next page
    assert at.selectbox(key="forecasts_run").value == facts.partial_run


def test_embedding_map_date_slider_company_and_modes(dashboard, full_home, facts):
    at = open_page(dashboard, full_home, "screens/embeddings.py")
    slider = at.select_slider(key="emb_date")
    dates = slider.options
    assert len(dates) > 100
    company = at.selectbox(key="emb_company")
    assert company.options == sorted(facts.sectors)
    neighbours = at.dataframe[0].value
    assert len(neighbours) == 5
    same = neighbours["sector"].iloc[:2].tolist()
    assert same == [facts.sectors[company.value]] * 2  # the planted sector mates come first

    slider.set_value(dates[10]).run()
    assert not at.exception
    at.text_input(key="emb_search").input("bb").run()  # the search narrows the company list
    assert not at.exception
    assert at.selectbox(key="emb_company").options == sorted(t for t in facts.sectors if "BB" in t)
    at.selectbox(key="emb_company").set_value("BBB").run()
    assert not at.exception
    top = at.dataframe[0].value["ticker"].iloc[:2].tolist()
    assert sorted(top) == ["BBA", "BBC"]

    at.radio(key="emb_colour").set_value("KMeans cluster").run()
    assert not at.exception
    at.slider(key="emb_k").set_value(3).run()
    assert not at.exception
    at.radio(key="emb_mode").set_value("mean over a period").run()
    assert not at.exception
    lo, hi = at.slider(key="emb_period").value
    assert hi == dt.date.fromisoformat(str(dates[-1])[:10]) and lo > dt.date.fromisoformat(str(dates[0])[:10])
    at.selectbox(key="emb_view").set_value("explicit").run()
    at.selectbox(key="emb_method").set_value("t-SNE").run()
    assert not at.exception
    assert len(at.dataframe[0].value) == 5


def test_embedding_map_without_embeddings(dashboard, full_home, facts):
    at = open_page(dashboard, full_home, "screens/embeddings.py")
    at.selectbox(key="embeddings_run").set_value(facts.partial_run).run()
    assert not at.exception
    assert any("no embeddings" in box.value for box in at.info)
    assert not at.dataframe


def test_forecasts_page(dashboard, full_home, facts):
    at = open_page(dashboard, full_home, "screens/forecasts.py")
    table = at.dataframe[0].value  # which forecast is best: one row per method, no empty column (no h22)
    assert list(table["method"]) == ["dynmix", "har", "garch"]
    assert list(table.columns) == ["method", "QLIKE h1", "QLIKE h5", "MSE h5", "in MCS 90 %"]
    assert list(table["in MCS 90 %"]) == ["h5", "h1", "h5"] and table["QLIKE h5"][0] == pytest.approx(1.1)
    verdicts = [m.value for m in at.markdown]
    assert any("At h = 1 the world model" in v and "significantly worse than har" in v
               and "not told apart from garch" in v for v in verdicts)
    assert any("adds nothing" in v and "0.310" in v for v in verdicts)  # the surprise increment in words
    gmv = at.dataframe[1].value
    assert list(gmv["covariance"]) == ["world_model", "sample", "ledoit_wolf"]
    assert {"ann_vol", "ann_vol_long_only"} <= set(gmv.columns)
    ticker = at.selectbox(key="forecast_ticker")
    assert ticker.options == sorted(facts.sectors)
    ticker.set_value("CCA").run()
    assert not at.exception
    assert "Spearman" in at.caption[0].value or any("Spearman" in c.value for c in at.caption)
    at.selectbox(key="forecasts_run").set_value(facts.partial_run).run()
    assert not at.exception
    assert any(f"dynmix forecast {facts.partial_run}" in box.value for box in at.info)


def test_planner_plans_and_replans_on_risk_aversion(dashboard, full_home, facts, fake_planner):
    at = open_page(dashboard, full_home, "screens/planner.py")
    assert fake_planner == []  # nothing runs before the button
    at.slider(key="plan_horizon").set_value(3)
    at.button(key="plan_button").click().run()
    assert not at.exception
    assert len(fake_planner) == 1
    call = fake_planner[0]
    assert call["run"] == facts.full_run and call["horizon"] == 3
    assert call["risk_aversion"] == 5.0 and call["cost"] == pytest.approx(1e-3)
    assert call["date"] == at.select_slider(key="plan_date").value
    weights_now = at.dataframe[0].value
    assert weights_now["weight"].sum() == pytest.approx(1.0)
    spread = weights_now["weight"].max() - weights_now["weight"].min()

    at.slider(key="plan_rho").set_value(40.0).run()
    assert not at.exception
    assert fake_planner[-1]["risk_aversion"] == 40.0
    new = at.dataframe[0].value
    assert new["weight"].max() - new["weight"].min() < spread  # more risk aversion: closer to equal weights
    assert fake_planner[-1]["hierarchical"] is False
    at.toggle(key="plan_hier").set_value(True).run()
    assert not at.exception and fake_planner[-1]["hierarchical"] is True


def test_planner_backtest_table_holds_strategies_and_costs_are_a_control(dashboard, full_home):
    at = open_page(dashboard, full_home, "screens/planner.py")
    assert not at.exception
    tables = [d.value for d in at.dataframe]
    main = next(t for t in tables if "p_vs_1N" in t.columns)
    assert set(main["strategy"]) == {"world_mpc", "sample_mpc", "equal_weight", "inverse_vol", "min_variance", "hrp"}
    assert {"sharpe_lo", "sharpe_hi", "cvar95"} <= set(main.columns)
    at.radio(key="plan_cost_level").set_value("25").run()
    assert not at.exception
    level = [d.value for d in at.dataframe][-1]
    assert level["sharpe"].to_list() == pytest.approx([0.05] * len(level))


def test_planner_error_is_explained(dashboard, full_home, fake_planner, monkeypatch):
    import sys

    from dynmix.errors import DynMIXError

    def broken(*args, **kwargs):
        raise DynMIXError("no world model in this run: train with the world model on")

    monkeypatch.setattr(sys.modules["dynmix.planning.service"], "plan_at", broken)
    at = open_page(dashboard, full_home, "screens/planner.py")
    at.button(key="plan_button").click().run()
    assert not at.exception
    assert "no world model" in at.error[0].value
