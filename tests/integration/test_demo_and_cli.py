"""`make run` loads the demo week once; running it again adds nothing."""

import pytest

from demo import DEMO_METERS, WEEK_MINUTES, load_demo_readings
from repository import readings as readings_repo


def test_the_demo_week_is_loaded_once_with_a_reading_per_minute(database):
    now = 1_700_000_000
    assert load_demo_readings(now, 3600) is True
    assert load_demo_readings(now + 86_400, 3600) is False
    for meter_id in DEMO_METERS:
        samples = readings_repo.samples_between(meter_id)
        assert len(samples) == WEEK_MINUTES
        assert samples[-1].time - samples[0].time == (WEEK_MINUTES - 1) * 60


def test_demo_meters_are_priced_right_after_loading(client):
    from demo import load_demo_readings as load

    load(1_700_000_000, 3600)
    body = client.get("/price-plans/compare-all/smart-meter-0").json()
    costs = [next(iter(entry.values())) for entry in body["pricePlanComparisons"]]
    assert body["pricePlanId"] == "price-plan-0"
    assert costs == sorted(costs) and costs[0] > 0
    assert costs[2] == pytest.approx(10 * costs[0])


def test_the_cli_migrates_and_loads_the_demo(tmp_path, monkeypatch, capsys):
    import cli

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    assert cli.main(["demo"]) == 0
    assert cli.main(["demo"]) == 0
    assert capsys.readouterr().out.splitlines() == ["demo readings loaded", "demo readings already present"]
