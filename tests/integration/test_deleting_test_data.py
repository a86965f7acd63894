"""Test data can be removed with the CLI (`cli.py delete …`): readings in a window, a whole meter or
installation, a supplier contract; rollups and statistics equal a recomputation from what is left."""

import io
import random
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta

import pytest

import cli
from domain.usage import Reading, energy_by_hour
from repository import db
from repository import readings as readings_repo

GAP = 3600


def rollups_of(meter: str) -> dict[int, float]:
    query = readings_repo.EnergyHour.select().where(readings_repo.EnergyHour.meter_id == meter)
    return {row.hour_start: row.kwh for row in query}


def recomputed(meter: str) -> dict[int, float]:
    stored = readings_repo.samples_between(meter)
    if not stored:
        return {}
    first, last = stored[0].time, stored[-1].time
    return {
        hour: kwh for hour, kwh in energy_by_hour(stored, GAP, first - first % 3600, last - last % 3600 + 3600).items()
    }


def assert_rollups_match(meter: str) -> None:
    expected = recomputed(meter)
    stored = rollups_of(meter)
    assert stored.keys() >= {hour for hour, kwh in expected.items() if kwh}
    for hour in stored.keys() | expected.keys():
        assert stored.get(hour, 0.0) == pytest.approx(expected.get(hour, 0.0), abs=1e-9)


@pytest.mark.parametrize("seed", range(12))
def test_deleting_a_joi_meters_readings_in_a_window_leaves_rollups_equal_to_a_recomputation(database, seed):
    rng = random.Random(seed)
    times = sorted(rng.sample(range(0, 30 * 3600), 120))
    readings_repo.store("m", [Reading(time, round(rng.uniform(0, 9), 3)) for time in times], GAP)
    readings_repo.store("other", [Reading(0, 1.0), Reading(600, 1.0)], GAP)
    start = rng.randrange(0, 25 * 3600)
    end = start + rng.choice([1, 600, 3600, 5 * 3600])
    deleted = readings_repo.delete_samples("m", start, end, GAP)
    assert deleted == len([time for time in times if start <= time <= end])
    assert all(not start <= sample.time <= end for sample in readings_repo.samples_between("m"))
    assert_rollups_match("m")
    assert rollups_of("other") == {0: pytest.approx(1 / 6)}


def test_a_deleted_joi_meter_answers_as_unknown_and_can_store_again(database):
    readings_repo.store("m", [Reading(0, 1.0), Reading(600, 2.0)], GAP)
    assert readings_repo.delete_meter("m") == 2
    assert readings_repo.period("m") is None and rollups_of("m") == {}
    readings_repo.store("m", [Reading(7200, 1.0), Reading(7800, 1.0)], GAP)  # under the key it kept
    assert readings_repo.samples_between("m") == [Reading(7200, 1.0), Reading(7800, 1.0)]
    assert_rollups_match("m")


def run_cli(*argv: str) -> tuple[int, str]:
    output = io.StringIO()
    with redirect_stdout(output):
        status = cli.main(list(argv))
    return status, output.getvalue()


@pytest.fixture
def cli_env(database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("DSMR_API_KEY", raising=False)
    yield
    db.close_all()


def test_the_cli_deletes_test_data_of_an_installation_and_of_a_joi_meter(app, cli_env, capsys):
    from app import create_app
    from config import Config

    status, key = run_cli("dsmr-key", "--installation", "try-out")
    assert status == 0
    client = create_app(Config.from_env(dsmr_api_enabled=True, validate_responses=True)).test_client()
    headers = {"X-AUTHKEY": key.strip()}
    start = datetime(2017, 4, 14, 22, 0, tzinfo=UTC)
    for minutes, delivered in ((0, 2000), (30, 2000.5), (60, 2001), (90, 2001.5)):
        moment = (start + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "timestamp": moment,
            "electricity_delivered_1": delivered,
            "electricity_delivered_2": 3000,
            "electricity_returned_1": 0,
            "electricity_returned_2": 0,
            "electricity_currently_delivered": 1,
            "electricity_currently_returned": 0,
        }
        assert client.post("/api/v2/datalogger/dsmrreading", headers=headers, json=body).status_code == 201
    contract = {"start": "2017-01-01", "description": "test", "fixed_daily_cost": "1"}
    contract_id = client.post("/api/v2/consumption/energy-supplier-prices", headers=headers, json=contract).json()["id"]

    status, said = run_cli(
        "delete", "dsmr-readings", "try-out", "--from", "2017-04-15T00:45", "--to", "2017-04-15T01:00"
    )
    assert (status, said.split()[:2]) == (0, ["deleted", "1"])
    hours = client.get("/api/v2/statistics/hour", headers=headers).json()["results"]
    assert [(hour["hour_start"], hour["electricity1"]) for hour in hours] == [
        ("2017-04-14T22:00:00Z", "1.000"),  # 0.500, and half of 22:30 → 23:30 (the 23:00 reading gone)
        ("2017-04-14T23:00:00Z", "0.500"),
    ]
    assert run_cli("delete", "dsmr-contract", "try-out", str(contract_id))[0] == 0
    day = client.get("/api/v2/statistics/day", headers=headers).json()["results"][0]
    assert day["total_cost"] == "0.00"
    assert run_cli("delete", "dsmr-readings", "try-out")[0] == 1  # no window: --all must be said
    assert "--all" in capsys.readouterr().err
    assert run_cli("delete", "dsmr-installation", "try-out")[0] == 0
    assert client.get("/api/v2/application/version", headers=headers).status_code == 403

    readings_repo.store("smart-meter-9", [Reading(0, 1.0), Reading(600, 2.0), Reading(1200, 2.0)], GAP)
    assert run_cli("delete", "joi-readings", "smart-meter-9", "--from", "1000", "--to", "1970-01-01T00:30")[0] == 0
    assert readings_repo.samples_between("smart-meter-9") == [Reading(0, 1.0), Reading(600, 2.0)]
    assert run_cli("delete", "joi-meter", "smart-meter-9")[0] == 0
    assert client.get("/readings/read/smart-meter-9").status_code == 404
    assert run_cli("delete", "dsmr-installation", "nobody")[0] == 1
    assert "no installation is named 'nobody'" in capsys.readouterr().err
