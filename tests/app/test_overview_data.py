"""Overview and Data pages on the fixture workspace, the refresh button driven with a fake Yahoo adapter."""

from __future__ import annotations

import polars as pl

from dynmix.data.store import Store


def test_overview_shows_coverage_and_runs(dashboard, full_home, facts):
    at = dashboard(full_home).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Tickers"] == str(len(facts.sectors))
    assert metrics["Failed tickers"] == "1"
    assert metrics["First date"] == "2020-01-01" and metrics["Last date"] == "2021-02-23"
    runs = at.dataframe[0].value
    assert list(runs["run"]) == [facts.full_run, facts.partial_run]  # newest first
    assert runs["kNN sector acc"].iloc[0] == 0.9
    assert runs["kNN sector acc"].isna().iloc[1]  # the partial run is not evaluated
    assert any("Best sector recovery" in s.value for s in at.success)


def test_data_page_tables_charts_and_ticker_choice(dashboard, full_home, facts):
    at = dashboard(full_home).run()
    at.switch_page("screens/data.py").run()
    assert not at.exception
    listing = at.dataframe[0].value
    assert sorted(listing["ticker"]) == sorted(facts.sectors)
    assert dict(zip(listing["ticker"], listing["sector"], strict=True))["BBA"] == "Energy"
    assert int(listing.set_index("ticker").loc["CCB", "missing_days"]) > 15  # the June gap
    assert "failed" in at.warning[0].value
    assert list(at.dataframe[1].value["ticker"]) == ["CCB"]
    picker = at.multiselect(key="data_tickers")
    assert picker.value == ["AAA", "AAB", "AAC"]
    picker.set_value(["BBB", "CCA"]).run()
    assert not at.exception
    assert at.multiselect(key="data_tickers").value == ["BBB", "CCA"]
    picker.set_value([]).run()
    assert not at.exception


def test_refresh_button_adds_a_ticker(dashboard, writable_home, fake_yahoo):
    fake = fake_yahoo(False)
    at = dashboard(writable_home).run()
    at.switch_page("screens/data.py").run()
    at.text_input(key="refresh_tickers").set_value("newco")
    at.button(key="refresh_button").click().run()
    assert not at.exception
    assert fake.calls and fake.calls[0] == ["NEWCO"]
    assert any("added 1" in s.value for s in at.success), [s.value for s in at.success]
    store = Store(writable_home / "store")
    assert "NEWCO" in store.tickers()
    assert store.read_meta().filter(pl.col("ticker") == "NEWCO")["sector"].item() == "Tech"
    at.run()  # the next rerun reads the new store version
    assert "NEWCO" in list(at.dataframe[0].value["ticker"])


def test_refresh_offline_says_so_and_keeps_data(dashboard, writable_home, fake_yahoo):
    fake_yahoo(True)
    before = Store(writable_home / "store").read_prices()
    at = dashboard(writable_home).run()
    at.switch_page("screens/data.py").run()
    at.button(key="refresh_button").click().run()  # the default list: the store's tickers
    assert not at.exception
    assert any("offline" in s.label for s in at.status)
    assert any("last good data is kept" in e.value for e in at.error)
    assert Store(writable_home / "store").read_prices().equals(before)


def test_refresh_rejects_a_bad_ticker(dashboard, writable_home, fake_yahoo):
    fake = fake_yahoo(False)
    at = dashboard(writable_home).run()
    at.switch_page("screens/data.py").run()
    at.text_input(key="refresh_tickers").set_value("BAD TICKER!")
    at.button(key="refresh_button").click().run()
    assert not at.exception
    assert "not valid" in at.error[0].value
    assert fake.calls == []


def test_refresh_while_another_command_writes_says_busy(dashboard, writable_home, fake_yahoo, monkeypatch):
    import threading

    import app.refresh
    from dynmix.lock import writer_lock

    fake = fake_yahoo(False)
    monkeypatch.setattr(app.refresh, "LOCK_WAIT", 0.2)
    held, release = threading.Event(), threading.Event()

    def hold():
        with writer_lock(writable_home, "dynmix train"):
            held.set()
            release.wait(30)

    t = threading.Thread(target=hold)
    t.start()
    try:
        held.wait(5)
        at = dashboard(writable_home).run()
        at.switch_page("screens/data.py").run()
        at.text_input(key="refresh_tickers").set_value("newco")
        at.button(key="refresh_button").click().run()
    finally:
        release.set()
        t.join()
    assert not at.exception
    assert any("busy" in e.value and "dynmix train" in e.value for e in at.error), [e.value for e in at.error]
    assert fake.calls == [] and "NEWCO" not in Store(writable_home / "store").tickers()
