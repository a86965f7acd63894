"""Stored statistics follow the settings they were built with, and `verify-statistics` checks them."""

import io
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

import cli
from app import prepare_database
from config import Config
from domain.dsmr import DsmrReading, Installation
from repository import db
from repository import dsmr as dsmr_repo
from repository import readings as readings_repo

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
HOME = Installation(name="home", meter="home")
START = datetime(2024, 6, 12, 8, 0, tzinfo=UTC)


def reading(moment: datetime, low: str) -> DsmrReading:
    return DsmrReading(
        meter="home",
        timestamp=moment,
        electricity_delivered_1=Decimal(low),
        electricity_returned_1=Decimal(0),
        electricity_delivered_2=Decimal(0),
        electricity_returned_2=Decimal(0),
        electricity_currently_delivered=Decimal(1),
        electricity_currently_returned=Decimal(0),
    )


@pytest.fixture
def stored(database, config):
    dsmr_repo.set_key("home", "sha256$home", replace=False)
    for minutes, low in ((0, "100.000"), (20, "100.200"), (40, "100.400"), (60, "100.600")):
        dsmr_repo.store_reading(HOME, reading(START + timedelta(minutes=minutes), low), AMSTERDAM)
    readings_repo.store("smart-meter-0", [(1718179200, 2.0), (1718181000, 4.0)], 3600)
    db.close()
    return config


def hour_starts() -> list[datetime]:
    db.connect()
    try:
        return [hour.value.hour_start.astimezone(UTC) for hour in _hours()]
    finally:
        db.close()


def _hours():
    from domain.dsmr import PageRequest, TimeWindow

    return dsmr_repo.hour_statistics_page("home", TimeWindow(), PageRequest(limit=100))[1]


def test_another_time_zone_rebuilds_the_stored_hours_at_start(stored):
    assert hour_starts() == [START]
    prepare_database(Config(database_url=stored.database_url, dsmr_time_zone="Asia/Kolkata"))
    # 13:30 to 14:30 in Kolkata: half in its local hour 13:00 (07:30Z), half in 14:00 (08:30Z).
    assert hour_starts() == [START - timedelta(minutes=30), START + timedelta(minutes=30)]
    prepare_database(Config(database_url=stored.database_url))
    assert hour_starts() == [START]


def test_a_shorter_gap_setting_rebuilds_the_statistics_and_reports_the_gaps_at_start(stored):
    prepare_database(Config(database_url=stored.database_url, dsmr_max_gap_seconds=600))
    assert hour_starts() == []
    db.connect()
    try:
        assert dsmr_repo.meter_statistics("home").gaps.count == 3
    finally:
        db.close()


def run_cli(*argv: str) -> tuple[int, str]:
    output = io.StringIO()
    with redirect_stdout(output):
        status = cli.main(list(argv))
    return status, output.getvalue()


def test_verify_statistics_names_what_differs_and_fix_rebuilds_it(stored, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", stored.database_url)
    assert run_cli("verify-statistics") == (0, "statistics agree with a recomputation from the readings\n")
    db.connect()
    dsmr_repo.HourRow.update(electricity1=Decimal("9.999")).execute()
    readings_repo.EnergyHour.update(kwh=readings_repo.EnergyHour.kwh + 1).execute()
    db.close()

    status, said = run_cli("verify-statistics")
    assert status == 1
    assert "DSMR installation home (meter home): 2 differences" in said  # the hour, and its JOI kWh
    assert "JOI meter smart-meter-0: 1 differences" in said
    assert said.endswith("2 meters differ; run with --fix to rebuild them\n")
    assert run_cli("verify-statistics", "--fix")[0] == 0
    assert run_cli("verify-statistics")[0] == 0
