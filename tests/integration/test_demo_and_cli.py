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


@pytest.mark.parametrize(
    "database_url, demo, asked, wanted",
    [
        (None, None, False, True),  # the embedded default database: the demo week, as make run promises
        ("postgresql://joi@db/joi", None, False, False),  # a database the user named: never by default
        ("postgresql://joi@db/joi", True, False, True),  # DEMO=1 loads it anywhere
        (None, False, False, False),  # DEMO=0 skips it everywhere
        ("postgresql://joi@db/joi", None, True, True),  # the explicit `cli.py demo`
        ("postgresql://joi@db/joi", False, True, False),  # ... but not against DEMO=0
    ],
)
def test_the_demo_goes_only_where_it_is_wanted(database_url, demo, asked, wanted):
    from config import DEFAULT_DATABASE_URL, Config
    from demo import demo_wanted

    config = Config(database_url=database_url or DEFAULT_DATABASE_URL, demo=demo)
    assert demo_wanted(config, asked=asked) is wanted


@pytest.mark.parametrize("value, expected", [("", None), ("1", True), ("yes", True), ("0", False), ("off", False)])
def test_demo_is_read_from_the_environment(monkeypatch, value, expected):
    from config import Config

    monkeypatch.setenv("DEMO", value)
    assert Config.from_env().demo is expected


def test_a_demo_setting_that_means_nothing_fails_at_start_up(monkeypatch):
    from config import Config

    monkeypatch.setenv("DEMO", "maybe")
    with pytest.raises(ValueError, match="DEMO"):
        Config.from_env()


def run_cli(monkeypatch, url, *argv, demo=None):
    import cli
    from repository import db

    monkeypatch.setenv("DATABASE_URL", url)
    if demo is None:
        monkeypatch.delenv("DEMO", raising=False)
    else:
        monkeypatch.setenv("DEMO", demo)
    try:
        return cli.main(list(argv))
    finally:
        db.close_all()


def stored_demo_readings(url) -> int:
    from repository import db

    db.open_database(url)
    db.connect()
    try:
        return len(readings_repo.samples_between("smart-meter-0"))
    finally:
        db.close_all()


def test_make_runs_prepare_leaves_a_named_database_without_demo_readings_but_with_the_plans_and_accounts(
    database_url, monkeypatch, capsys
):
    from repository import accounts, db

    assert run_cli(monkeypatch, database_url, "prepare") == 0
    assert "not loaded" in capsys.readouterr().out
    assert stored_demo_readings(database_url) == 0
    db.open_database(database_url)
    db.connect()
    try:
        assert [plan.plan_id for plan in accounts.price_plans()] == ["price-plan-0", "price-plan-1", "price-plan-2"]
        assert [accounts.plan_id_for_meter(meter) for meter in DEMO_METERS] == [
            "price-plan-0",
            "price-plan-1",
            "price-plan-0",
            "price-plan-2",
            "price-plan-1",
        ]
    finally:
        db.close_all()


def test_prepare_with_demo_1_loads_the_demo_week_into_a_named_database(database_url, monkeypatch, capsys):
    assert run_cli(monkeypatch, database_url, "prepare", demo="1") == 0
    assert capsys.readouterr().out.splitlines() == ["demo readings loaded"]
    assert stored_demo_readings(database_url) == WEEK_MINUTES


def test_demo_0_skips_even_the_explicit_demo_command(database_url, monkeypatch, capsys):
    assert run_cli(monkeypatch, database_url, "demo", demo="0") == 0
    assert capsys.readouterr().out.splitlines() == ["demo readings not loaded (DEMO=0)"]
    assert stored_demo_readings(database_url) == 0
