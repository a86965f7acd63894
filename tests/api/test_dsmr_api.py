"""The DSMR-reader API as the seed documents it, through HTTP, on SQLite and PostgreSQL."""

import io
import random
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

import cli
from app import create_app
from config import PROJECT_ROOT, Config
from controllers import dsmr_v2
from domain.telegram import parse_telegram
from repository import db
from tests.support.telegrams import SEED_TELEGRAM, make_telegram

KEY = "test-key"
AUTH = {"X-AUTHKEY": KEY}
V1 = "/api/v1/datalogger/dsmrreading"
READINGS = "/api/v2/datalogger/dsmrreading"
SEED_READING = {
    "electricity_currently_delivered": 1.500,
    "electricity_currently_returned": 0.025,
    "electricity_delivered_1": 2000,
    "electricity_delivered_2": 3000,
    "electricity_returned_1": 0,
    "electricity_returned_2": 0,
    "timestamp": "2017-04-15T00:00:00+02",
}
# What the seed answers for SEED_READING (all but its id), plus the fields we add.
SEED_RESULT = {
    "timestamp": "2017-04-15T00:00:00+02:00",
    "electricity_delivered_1": "2000.000",
    "electricity_returned_1": "0.000",
    "electricity_delivered_2": "3000.000",
    "electricity_returned_2": "0.000",
    "electricity_currently_delivered": "1.500",
    "electricity_currently_returned": "0.025",
    "phase_currently_delivered_l1": None,
    "phase_currently_delivered_l2": None,
    "phase_currently_delivered_l3": None,
    "extra_device_timestamp": None,
    "extra_device_delivered": None,
}


@pytest.fixture
def config(database_url) -> Config:
    return Config(database_url=database_url, validate_responses=True, dsmr_api_enabled=True, dsmr_api_key=KEY)


@pytest.fixture
def app_with(database_url):
    """Build the app with other DSMR settings on the same test database."""

    def build(**settings):
        defaults = dict(database_url=database_url, validate_responses=True, dsmr_api_enabled=True, dsmr_api_key=KEY)
        return create_app(Config(**{**defaults, **settings})).test_client()

    yield build
    db.close_all()


@pytest.fixture
def clock(monkeypatch):
    """Fix the controllers' "now" (today's consumption, readings from the future)."""

    class FixedDatetime(datetime):
        moment = datetime(2024, 10, 28, 9, 0, tzinfo=UTC)

        @classmethod
        def now(cls, tz=None):
            return cls.moment.astimezone(tz) if tz else cls.moment.replace(tzinfo=None)

    monkeypatch.setattr(dsmr_v2, "datetime", FixedDatetime)
    return FixedDatetime


def post_reading(client, moment: datetime, **values):
    body = {**SEED_READING, "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"), **values}
    return client.post(READINGS, json=body, headers=AUTH)


def telegram(moment: datetime, meter: str = "E0012345678901234", seed: int = 1, **values) -> str:
    return make_telegram("v4", random.Random(seed), timestamp=moment, equipment_id=meter, **values)


# --- v1 ------------------------------------------------------------------------------------------------------


def test_the_seed_v1_example_is_stored_with_crc_checks_off_and_answered_201_with_an_empty_body(app_with):
    client = app_with(dsmr_verify_crc=False)
    response = client.post(V1, headers=AUTH, data={"telegram": SEED_TELEGRAM})
    assert response.status_code == 201
    assert response.text == ""
    latest = client.get(f"{READINGS}?ordering=-timestamp&limit=1", headers=AUTH).json()["results"][0]
    assert latest["timestamp"] == "2016-03-03T15:43:47Z"  # 16:43:47 winter time
    assert (latest["electricity_delivered_1"], latest["electricity_delivered_2"]) == ("1073.079", "1263.199")
    assert latest["meter"] == "default"  # the seed masks the equipment id


def test_the_seed_telegram_fails_its_crc_when_checks_are_on_and_nothing_is_stored(client):
    response = client.post(V1, headers=AUTH, data={"telegram": SEED_TELEGRAM})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "CRC mismatch: computed A97E, telegram states 74B0"
    assert client.get(READINGS, headers=AUTH).json()["count"] == 0
    assert client.get("/api/v2/datalogger/meter-statistics", headers=AUTH).json()["rejected_telegrams"] == 1


def test_a_telegram_that_cannot_be_parsed_is_refused_naming_the_line(client):
    broken = telegram(datetime(2024, 1, 1, 12, tzinfo=UTC)).replace("1-0:1.8.1(", "1-0:1.8.1(x", 1)
    response = client.post(V1, headers=AUTH, data={"telegram": broken})
    assert response.status_code == 400
    assert "CRC mismatch" in response.text  # the CRC covers the changed line
    unchecked = client.post(V1, headers={"Authorization": f"Token {KEY}"}, data={"telegram": "/X\r\n\r\nnonsense\r\n!"})
    assert unchecked.status_code == 400
    assert unchecked.text.startswith("line 3 'nonsense'")


def test_a_valid_telegram_is_stored_once_however_often_it_is_sent(client):
    text = telegram(datetime(2024, 1, 1, 12, tzinfo=UTC))
    for _ in range(3):
        assert client.post(V1, headers=AUTH, data={"telegram": text}).status_code == 201
    assert client.get(READINGS, headers=AUTH).json()["count"] == 1
    statistics = client.get("/api/v2/datalogger/meter-statistics", headers=AUTH).json()
    assert (statistics["accepted_telegrams"], statistics["duplicate_telegrams"]) == (1, 2)
    assert statistics["meter"] == "E0012345678901234" and statistics["dsmr_version"] == "42"
    assert statistics["latest_telegram"] == text


def test_a_telegram_is_answered_by_the_fast_path_with_the_answers_of_dsmr_reader(client, monkeypatch):
    from controllers import dsmr_v1

    def not_flask(*args, **kwargs):
        raise AssertionError("a v1 telegram went through Flask")

    monkeypatch.setattr(dsmr_v1, "create_reading", not_flask)
    text = telegram(datetime(2024, 1, 1, 12, tzinfo=UTC))
    stored = client.post(V1, headers=AUTH, data={"telegram": text, "ignored": "x"})
    assert (stored.status_code, stored.text) == (201, "")
    assert stored.headers["content-type"] == "text/plain; charset=utf-8"
    refused = client.post(V1, headers={"X-AUTHKEY": "wrong"}, data={"telegram": text})
    assert (refused.status_code, refused.text) == (403, "Invalid auth key")
    assert client.get(READINGS, headers=AUTH).json()["count"] == 1


def test_v1_without_a_telegram_is_a_400_in_plain_text(client):
    response = client.post(V1, headers=AUTH, data={"other": "x"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert "telegram" in response.text


def test_v1_answers_as_dsmr_reader_when_disabled_or_given_a_bad_key(app_with):
    disabled = app_with(dsmr_api_enabled=False).post(V1, headers=AUTH, data={"telegram": SEED_TELEGRAM})
    assert (disabled.status_code, disabled.text, disabled.headers["allow"]) == (405, "API is disabled", "POST")
    client = app_with()
    for headers in ({"X-AUTHKEY": "wrong"}, {"Authorization": "Token wrong"}, {}):
        response = client.post(V1, headers=headers, data={"telegram": SEED_TELEGRAM})
        assert (response.status_code, response.text) == (403, "Invalid auth key")


# --- access on v2 and the generated key ----------------------------------------------------------------------


def test_v2_answers_403_with_a_detail_when_disabled_or_given_a_bad_key(app_with):
    disabled = app_with(dsmr_api_enabled=False).get(READINGS, headers=AUTH)
    assert (disabled.status_code, disabled.json()) == (403, {"detail": "API is disabled"})
    bad_key = app_with().get("/api/v2/application/version", headers={"X-AUTHKEY": "nope"})
    assert (bad_key.status_code, bad_key.json()) == (403, {"detail": "Invalid auth key"})


def test_the_key_make_dsmr_key_prints_is_the_one_the_api_accepts(app_with, database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("DSMR_API_KEY", raising=False)
    assert cli.main(["dsmr-key"]) == 0
    key = capsys.readouterr().out.strip()
    assert cli.main(["dsmr-key"]) == 1  # shown once: the stored hash cannot be shown again
    client = app_with(dsmr_api_key=None)
    assert client.get("/api/v2/application/version", headers={"X-AUTHKEY": key}).status_code == 200
    assert client.get("/api/v2/application/version", headers={"Authorization": f"Token {key}"}).status_code == 200
    assert client.get("/api/v2/application/version", headers={"X-AUTHKEY": KEY}).status_code == 403


# --- v2 readings ---------------------------------------------------------------------------------------------


def test_the_seed_v2_example_is_echoed_in_dsmr_readers_format(client):
    response = client.post(READINGS, headers=AUTH, data=SEED_READING)
    assert response.status_code == 201
    body = response.json()
    assert isinstance(body.pop("id"), int)
    assert {name: body[name] for name in SEED_RESULT} == SEED_RESULT
    assert body["meter"] == "default"


def test_a_json_reading_with_a_naive_timestamp_is_read_in_local_time(client):
    body = {**SEED_READING, "timestamp": "2017-01-15 08:30:00", "extra_device_delivered": "956.212"}
    body["extra_device_timestamp"] = "2017-01-15T08:00:00+01:00"
    response = client.post(READINGS, headers={"Authorization": f"Token {KEY}"}, json=body)
    assert response.status_code == 201
    assert response.json()["timestamp"] == "2017-01-15T08:30:00+01:00"
    listed = client.get(READINGS, headers=AUTH).json()["results"][0]
    assert listed["timestamp"] == "2017-01-15T07:30:00Z"
    assert (listed["extra_device_timestamp"], listed["extra_device_delivered"]) == ("2017-01-15T07:00:00Z", "956.212")


def test_invalid_v2_fields_are_answered_per_field_and_nothing_is_stored(client):
    response = client.post(READINGS, headers=AUTH, data={**SEED_READING, "electricity_delivered_1": "1.2345"})
    assert response.status_code == 400
    assert response.json() == {"electricity_delivered_1": ["Ensure that there are no more than 3 decimal places."]}
    missing = client.post(READINGS, headers=AUTH, json={"timestamp": "2017-04-15T00:00:00+02"})
    assert missing.json()["electricity_returned_2"] == ["This field is required."]
    assert client.get(READINGS, headers=AUTH).json()["count"] == 0


def test_a_body_that_is_not_json_is_a_400_with_a_detail(client):
    response = client.post(READINGS, headers={**AUTH, "Content-Type": "application/json"}, content=b'{"timestamp": ')
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert "not valid JSON" in response.json()["detail"]


def test_a_repeated_reading_is_answered_again_and_a_different_one_for_that_instant_is_a_conflict(client):
    first = client.post(READINGS, headers=AUTH, json=SEED_READING)
    again = client.post(READINGS, headers=AUTH, json={**SEED_READING, "electricity_delivered_1": "2000.000"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    other = client.post(READINGS, headers=AUTH, json={**SEED_READING, "electricity_delivered_1": 2001})
    assert other.status_code == 409
    assert "already has another reading" in other.json()["detail"]
    assert client.get(READINGS, headers=AUTH).json()["count"] == 1


def test_the_seed_list_examples_answer_pages_with_absolute_links(client, clock):
    start = datetime(2017, 1, 31, 22, 0, tzinfo=UTC)
    for index in range(30):
        post_reading(client, start + index * timedelta(hours=2), electricity_delivered_1=2000 + index)
    everything = client.get(READINGS, headers=AUTH).json()
    assert everything["count"] == 30 and len(everything["results"]) == 25 and everything["previous"] is None
    link = urlsplit(everything["next"])
    assert (link.scheme, link.path) == ("http", READINGS)
    assert parse_qs(link.query)["limit"] == ["25"] and parse_qs(link.query)["offset"] == ["25"]
    latest = client.get(f"{READINGS}?ordering=-timestamp&limit=1", headers=AUTH).json()
    assert latest["results"][0]["electricity_delivered_1"] == "2029.000"
    assert parse_qs(urlsplit(latest["next"]).query)["ordering"] == ["-timestamp"]
    # Example 3: a month in local time; the first reading, 2017-01-31T22:00Z, is January 31 23:00 local.
    february = client.get(
        f"{READINGS}?timestamp__gte=2017-02-01 00:00:00&timestamp__lte=2017-03-01 00:00:00", headers=AUTH
    ).json()
    assert february["count"] == 29
    assert february["results"][0]["timestamp"] == "2017-02-01T00:00:00Z"
    assert "timestamp__gte=2017-02-01+00%3A00%3A00" in february["next"]


@pytest.mark.parametrize("ordering", ["timestamp", "-timestamp"])
def test_following_next_links_visits_every_reading_once_and_previous_links_lead_back(client, clock, ordering):
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for index in range(23):
        post_reading(client, start + index * timedelta(minutes=10), electricity_delivered_1=3000 + index)
    seen, pages, url = [], [], f"{READINGS}?limit=5&ordering={ordering}"
    while url:
        page = client.get(url, headers=AUTH).json()
        seen += [row["id"] for row in page["results"]]
        pages.append(page)
        url = page["next"]
    assert len(seen) == len(set(seen)) == 23
    assert seen == sorted(seen, reverse=ordering.startswith("-"))
    back = client.get(pages[-1]["previous"], headers=AUTH).json()
    assert back["results"] == pages[-2]["results"]


def test_unreadable_list_parameters_fall_back_like_dsmr_reader_and_bad_filters_are_named(client):
    response = client.get(f"{READINGS}?limit=abc&offset=-1&ordering=id", headers=AUTH)
    assert response.status_code == 200
    bad = client.get(f"{READINGS}?timestamp__gte=yesterday&after=x", headers=AUTH)
    assert bad.status_code == 400
    assert bad.json() == {"timestamp__gte": ["Enter a valid date/time."]}


# --- statistics on a day with a DST change, figured by hand --------------------------------------------------


def dst_day_readings():
    """27 October 2024, Amsterdam: 00:00 CEST (22:00Z on the 26th) to 24:00 CET (23:00Z), 25 hours.

    A reading every 30 minutes: +0.100 kWh low tariff, +0.250 normal, +0.050 returned normal; the gas meter
    (DSMR v4) captures on every hour, +0.300 m³ an hour."""
    start = datetime(2024, 10, 26, 22, 0, tzinfo=UTC)
    readings = []
    for index in range(51):
        moment = start + index * timedelta(minutes=30)
        hour = moment.replace(minute=0)
        readings.append(
            {
                **SEED_READING,
                "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "electricity_delivered_1": str(Decimal("100.000") + index * Decimal("0.100")),
                "electricity_delivered_2": str(Decimal("200.000") + index * Decimal("0.250")),
                "electricity_returned_2": str(Decimal("10.000") + index * Decimal("0.050")),
                "extra_device_timestamp": hour.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "extra_device_delivered": str(
                    Decimal("50.000") + (hour - start) // timedelta(hours=1) * Decimal("0.300")
                ),
            }
        )
    return readings


PRICES = {
    "start": "2024-10-01",
    "end": "2024-10-31",
    "description": "DST test contract",
    "electricity_delivered_1_price": "0.20",
    "electricity_delivered_2_price": "0.25",
    "electricity_returned_1_price": "0.10",
    "electricity_returned_2_price": "0.10",
    "gas_price": "0.80",
    "fixed_daily_cost": "0.50",
}


def test_the_dst_day_statistics_match_figures_worked_out_by_hand_whatever_the_arrival_order(client, clock):
    readings = dst_day_readings()
    random.Random(27).shuffle(readings)  # late and out-of-order readings update the hours they belong to
    for number, reading in enumerate(readings):
        if number == 20:  # the contract arrives halfway: the day is repriced
            assert (
                client.post("/api/v2/consumption/energy-supplier-prices", headers=AUTH, json=PRICES).status_code == 201
            )
        assert client.post(READINGS, headers=AUTH, json=reading).status_code == 201

    days = client.get("/api/v2/statistics/day", headers=AUTH).json()
    assert days["count"] == 1
    day = days["results"][0]
    # 50 half hours: 50 × 0.1 = 5 kWh low, 50 × 0.25 = 12.5 normal, 50 × 0.05 = 2.5 returned; 25 h × 0.3 = 7.5 m³.
    # Costs: 5 × 0.20 = 1.00; 12.5 × 0.25 − 2.5 × 0.10 = 2.875 → 2.88; 7.5 × 0.80 = 6.00; + 0.50 fixed = 10.38.
    assert {name: day[name] for name in day if name not in ("id",)} == {
        "day": "2024-10-27",
        "total_cost": "10.38",
        "electricity1": "5.000",
        "electricity2": "12.500",
        "electricity1_returned": "0.000",
        "electricity2_returned": "2.500",
        "electricity1_cost": "1.00",
        "electricity2_cost": "2.88",
        "gas": "7.500",
        "gas_cost": "6.00",
        "fixed_cost": "0.50",
        "lowest_temperature": None,
        "highest_temperature": None,
        "average_temperature": None,
        "meter": "default",
    }
    hours = client.get("/api/v2/statistics/hour?limit=100", headers=AUTH).json()
    assert hours["count"] == 25  # the day has 25 local hours; 02:00-03:00 happens twice
    assert [hour["hour_start"] for hour in hours["results"][2:5]] == [
        "2024-10-27T00:00:00Z",  # 02:00 CEST
        "2024-10-27T01:00:00Z",  # 02:00 CET
        "2024-10-27T02:00:00Z",  # 03:00 CET
    ]
    assert {
        (hour["electricity1"], hour["electricity2"], hour["electricity2_returned"], hour["gas"])
        for hour in hours["results"]
    } == {("0.200", "0.500", "0.100", "0.300")}
    local_filter = client.get(
        "/api/v2/statistics/hour?hour_start__gte=2024-10-27 03:00:00&hour_start__lte=2024-10-27 04:00", headers=AUTH
    ).json()
    assert [hour["hour_start"] for hour in local_filter["results"]] == ["2024-10-27T02:00:00Z", "2024-10-27T03:00:00Z"]
    per_meter = client.get("/api/v2/statistics/day?meter=default&day__gte=2024-10-27&day__lte=2024-10-27", headers=AUTH)
    assert per_meter.json()["results"][0]["total_cost"] == "10.38"


def test_todays_consumption_is_answered_in_numbers_from_local_midnight(client, clock):
    clock.moment = datetime(2024, 10, 27, 14, 0, tzinfo=UTC)  # 15:00 CET on the 25-hour day
    for reading in dst_day_readings()[:33]:  # up to 14:00Z
        client.post(READINGS, headers=AUTH, json=reading)
    client.post("/api/v2/consumption/energy-supplier-prices", headers=AUTH, json=PRICES)
    response = client.get("/api/v2/consumption/today", headers=AUTH)
    assert response.status_code == 200
    # 16 hours since local midnight (22:00Z): 32 half hours × 0.1 = 3.2, × 0.25 = 8, × 0.05 returned = 1.6;
    # gas 16 × 0.3 = 4.8. Costs 3.2 × 0.2 = 0.64; 8 × 0.25 − 1.6 × 0.1 = 1.84; 4.8 × 0.8 = 3.84; + 0.5 = 6.82.
    assert response.json() == {
        "day": "2024-10-27",
        "electricity1": 3.2,
        "electricity1_cost": 0.64,
        "electricity1_returned": 0,
        "electricity2": 8,
        "electricity2_cost": 1.84,
        "electricity2_returned": 1.6,
        "gas": 4.8,
        "gas_cost": 3.84,
        "fixed_cost": 0.5,
        "total_cost": 6.82,
        "meter": "default",
    }
    assert b'"electricity1":3.2,' in response.content  # the Decimal's digits, never a float's


def test_today_without_readings_is_a_404_naming_the_day(client, clock):
    response = client.get("/api/v2/consumption/today", headers=AUTH)
    assert (response.status_code, response.json()) == (404, {"detail": "No electricity readings found for: 2024-10-28"})


# --- prices, version, meter statistics -----------------------------------------------------------------------


def test_energy_supplier_prices_are_listed_with_six_decimals_and_checked_per_field(client):
    created = client.post("/api/v2/consumption/energy-supplier-prices", headers=AUTH, data=PRICES)
    assert created.status_code == 201
    listed = client.get("/api/v2/consumption/energy-supplier-prices", headers=AUTH).json()
    assert listed["count"] == 1
    contract = listed["results"][0]
    assert contract == {**created.json(), "id": contract["id"]}
    assert (contract["gas_price"], contract["end"], contract["fixed_daily_cost"]) == (
        "0.800000",
        "2024-10-31",
        "0.500000",
    )
    bad = client.post("/api/v2/consumption/energy-supplier-prices", headers=AUTH, json={"start": "soon"})
    assert bad.status_code == 400
    assert bad.json() == {
        "start": ["Date has wrong format. Use one of these formats instead: YYYY-MM-DD."],
        "description": ["This field is required."],
    }


def test_the_version_is_answered_as_dsmr_reader_does(client):
    response = client.get("/api/v2/application/version", headers=AUTH)
    assert response.status_code == 200
    assert response.json()["version"].count(".") == 2


def test_meter_statistics_before_any_telegram_are_empty_and_an_unknown_meter_is_404(client):
    empty = client.get("/api/v2/datalogger/meter-statistics", headers=AUTH).json()
    assert empty["id"] is None and empty["rejected_telegrams"] == 0 and empty["latest_telegram"] is None
    unknown = client.get("/api/v2/datalogger/meter-statistics?meter=E999", headers=AUTH)
    assert unknown.status_code == 404


# --- installations ------------------------------------------------------------------------------------------


def make_key(name: str, *extra: str) -> str:
    """`python src/cli.py dsmr-key --installation NAME`: the key it prints, on stdout alone."""
    output = io.StringIO()
    with redirect_stdout(output):
        assert cli.main(["dsmr-key", "--installation", name, *extra]) == 0
    return output.getvalue().strip()


@pytest.fixture
def cli_database(database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("DSMR_API_KEY", raising=False)


def hourly_telegrams(meter: str, start: datetime, hours: int, step: Decimal) -> list[str]:
    return [
        telegram(
            start + timedelta(hours=hour),
            meter,
            electricity_delivered_1=Decimal("100.000") + hour * step,
            electricity_delivered_2=Decimal("200.000"),
            electricity_returned_1=Decimal("0.000"),
            electricity_returned_2=Decimal("0.000"),
        )
        for hour in range(hours)
    ]


def test_two_installations_each_see_only_their_own_data(app_with, cli_database, clock):
    home, cabin = make_key("home"), make_key("cabin")
    client = app_with(dsmr_api_key=None)
    start = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    for key, meter, step in (
        (home, "E0000000000000001", Decimal("1.000")),
        (cabin, "E0000000000000002", Decimal("0.250")),
    ):
        for text in hourly_telegrams(meter, start, 4, step):
            assert client.post(V1, headers={"X-AUTHKEY": key}, data={"telegram": text}).status_code == 201
    # The seed's own v2 example, which names no meter, goes to the key's installation.
    assert client.post(READINGS, headers={"X-AUTHKEY": cabin}, data=SEED_READING).status_code == 201
    readings = client.get(READINGS, headers={"X-AUTHKEY": home}).json()
    assert readings["count"] == 4 and {item["meter"] for item in readings["results"]} == {"E0000000000000001"}
    assert client.get(READINGS, headers={"X-AUTHKEY": cabin}).json()["count"] == 5
    hours = client.get("/api/v2/statistics/hour", headers={"X-AUTHKEY": home}).json()["results"]
    assert [(hour["electricity1"], hour["meter"]) for hour in hours] == [("1.000", "E0000000000000001")] * 3
    # Another installation's meter cannot be asked for: its data is not this key's.
    other = client.get(f"{READINGS}?meter=E0000000000000002", headers={"X-AUTHKEY": home}).json()
    assert other["count"] == 0 and other["results"] == []
    own = client.get(f"{READINGS}?meter=E0000000000000001", headers={"X-AUTHKEY": home}).json()
    assert own["count"] == 4
    meter_statistics = client.get(
        "/api/v2/datalogger/meter-statistics?meter=E0000000000000002", headers={"X-AUTHKEY": home}
    )
    assert meter_statistics.status_code == 404
    assert (
        client.get("/api/v2/datalogger/meter-statistics", headers={"X-AUTHKEY": cabin}).json()["meter"]
        == "E0000000000000002"
    )
    contract = {**PRICES, "start": "2024-01-01"}
    assert (
        client.post(
            "/api/v2/consumption/energy-supplier-prices", headers={"X-AUTHKEY": home}, json=contract
        ).status_code
        == 201
    )
    assert client.get("/api/v2/consumption/energy-supplier-prices", headers={"X-AUTHKEY": cabin}).json()["count"] == 0
    bad_filter = client.get(f"{READINGS}?meter=not a meter", headers={"X-AUTHKEY": home})
    assert bad_filter.status_code == 400 and "meter" in bad_filter.json()


def test_a_telegram_from_another_meter_than_the_installations_is_refused_and_nothing_is_stored(client):
    first, *_ = hourly_telegrams("E0000000000000001", datetime(2024, 5, 1, 10, 0, tzinfo=UTC), 1, Decimal(1))
    intruder, *_ = hourly_telegrams("E0000000000000002", datetime(2024, 5, 1, 11, 0, tzinfo=UTC), 1, Decimal(1))
    assert client.post(V1, headers=AUTH, data={"telegram": first}).status_code == 201
    refused = client.post(V1, headers=AUTH, data={"telegram": intruder})
    assert refused.status_code == 400 and refused.headers["content-type"].startswith("text/plain")
    assert "from meter E0000000000000002" in refused.text and "is meter E0000000000000001" in refused.text
    assert client.get(READINGS, headers=AUTH).json()["count"] == 1
    named = post_reading(client, datetime(2024, 5, 1, 12, 0, tzinfo=UTC), meter="E0000000000000002")
    assert named.status_code == 400 and "installation default" in named.json()["meter"][0]
    statistics = client.get("/api/v2/datalogger/meter-statistics", headers=AUTH).json()
    assert statistics["rejected_telegrams"] == 1


def test_a_meter_of_another_installation_is_refused_even_on_a_new_installations_first_telegram(app_with, cli_database):
    home, cabin = make_key("home"), make_key("cabin")
    client = app_with(dsmr_api_key=None)
    text, *_ = hourly_telegrams("E0000000000000001", datetime(2024, 5, 1, 10, 0, tzinfo=UTC), 1, Decimal(1))
    assert client.post(V1, headers={"X-AUTHKEY": home}, data={"telegram": text}).status_code == 201
    refused = client.post(V1, headers={"X-AUTHKEY": cabin}, data={"telegram": text})
    assert refused.status_code == 400 and "belongs to another installation" in refused.text


def test_keys_are_made_per_installation_and_the_repeatable_sequence_rotates(app_with, cli_database, capsys):
    key = make_key("home")
    assert cli.main(["dsmr-key", "--installation", "home"]) == 1  # shown once: only its hash is stored
    assert "--rotate" in capsys.readouterr().err
    client = app_with(dsmr_api_key=None)
    version = "/api/v2/application/version"
    assert client.get(version, headers={"X-AUTHKEY": key}).status_code == 200
    assert client.get(version, headers={"Authorization": f"Token {key}"}).status_code == 200
    rotated = make_key("home", "--rotate")  # what `KEY=$(make -s dsmr-key NAME=home ROTATE=1)` runs, any time
    again = make_key("home", "--rotate")
    assert client.get(version, headers={"X-AUTHKEY": key}).status_code == 403
    assert client.get(version, headers={"X-AUTHKEY": rotated}).status_code == 403
    assert client.get(version, headers={"X-AUTHKEY": again}).status_code == 200
    assert cli.main(["dsmr-key", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "home" in listing and key not in listing and again not in listing
    assert cli.main(["dsmr-key", "--revoke", "home"]) == 0
    assert client.get(version, headers={"X-AUTHKEY": again}).status_code == 403
    assert cli.main(["dsmr-key", "--installation", "bad name"]) == 1


def test_dsmr_api_key_is_the_default_installations_key(app_with, database_url, monkeypatch):
    client = app_with()
    assert post_reading(client, datetime(2024, 5, 1, 10, 0, tzinfo=UTC)).status_code == 201
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DSMR_API_KEY", KEY)
    assert cli.main(["dsmr-key"]) == 1  # the default installation's key is DSMR_API_KEY then
    monkeypatch.delenv("DSMR_API_KEY")
    generated = make_key("default")
    assert client.get(READINGS, headers={"X-AUTHKEY": generated}).status_code == 403  # the configured key wins
    unconfigured = app_with(dsmr_api_key=None)
    assert unconfigured.get(READINGS, headers={"X-AUTHKEY": generated}).json()["count"] == 1


def test_an_enabled_api_that_no_key_can_reach_warns_at_start(app_with, caplog):
    with caplog.at_level("WARNING", logger="joi.dsmr"):
        app_with(dsmr_api_key=None)
    assert "no DSMR API key" in caplog.text and "make dsmr-key" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="joi.dsmr"):
        app_with()
    assert caplog.text == ""


def test_a_v1_telegram_with_other_values_for_a_stored_instant_is_a_409_and_changes_nothing(client):
    moment = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    first = telegram(moment, seed=1)
    other = telegram(moment, seed=2)
    assert client.post(V1, headers=AUTH, data={"telegram": first}).status_code == 201
    assert client.post(V1, headers=AUTH, data={"telegram": first}).status_code == 201  # the same again
    conflict = client.post(V1, headers=AUTH, data={"telegram": other})
    assert conflict.status_code == 409 and conflict.headers["content-type"].startswith("text/plain")
    assert "already has another reading at 2024-05-01T10:00:00+00:00" in conflict.text
    stored = client.get(READINGS, headers=AUTH).json()
    assert stored["count"] == 1
    statistics = client.get("/api/v2/datalogger/meter-statistics", headers=AUTH).json()
    assert (statistics["accepted_telegrams"], statistics["duplicate_telegrams"]) == (1, 1)


def test_an_overlapping_supplier_contract_is_a_409_naming_the_contract_it_overlaps(client):
    prices = "/api/v2/consumption/energy-supplier-prices"
    first = client.post(prices, headers=AUTH, json={**PRICES, "start": "2024-01-01", "end": "2024-12-31"}).json()
    overlap = client.post(
        prices, headers=AUTH, json={**PRICES, "start": "2024-06-01", "end": None, "description": "new"}
    )
    assert overlap.status_code == 409
    assert f"overlaps contract {first['id']}" in overlap.json()["detail"]
    assert client.post(prices, headers=AUTH, json={**PRICES, "start": "2025-01-01", "end": None}).status_code == 201
    assert client.get(prices, headers=AUTH).json()["count"] == 2


def test_a_register_that_decreases_is_a_reset_booked_as_nothing_and_reported(client, clock):
    start = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    for minutes, delivered in ((0, "500.000"), (20, "501.000"), (40, "10.000"), (60, "12.000"), (80, "13.500")):
        response = post_reading(
            client, start + timedelta(minutes=minutes), electricity_delivered_1=delivered, electricity_delivered_2=0
        )
        assert response.status_code == 201
    hours = client.get("/api/v2/statistics/hour", headers=AUTH).json()["results"]
    # 10:00-11:00: 1.000 before the swap, nothing across it, 2.000 after it; 11:00-12:00: 1.500.
    assert [hour["electricity1"] for hour in hours] == ["3.000", "1.500"]
    statistics = client.get("/api/v2/datalogger/meter-statistics", headers=AUTH).json()
    assert statistics["resets"] == 1 and statistics["latest_reset"] == "2024-05-01T12:40:00+02:00"


def test_a_p1_meter_is_priced_on_every_plan_from_its_registers(client, clock):
    start = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    for hour in range(3):  # 1.5 kWh an hour over 2 hours: 3 kWh
        text = telegram(
            start + timedelta(hours=hour),
            "E0000000000000009",
            electricity_delivered_1=Decimal("100.000") + hour * Decimal("1.000"),
            electricity_delivered_2=Decimal("200.000") + hour * Decimal("0.500"),
        )
        assert client.post(V1, headers=AUTH, data={"telegram": text}).status_code == 201
    comparison = client.get("/price-plans/compare-all/E0000000000000009")
    assert comparison.status_code == 200
    assert comparison.json() == {
        "pricePlanId": None,
        "pricePlanComparisons": [{"price-plan-2": 3.0}, {"price-plan-1": 6.0}, {"price-plan-0": 30.0}],
    }
    assert client.get("/price-plans/recommend/E0000000000000009?limit=1").json() == [{"price-plan-2": 3.0}]


def test_a_p1_meter_is_priced_from_its_second_reading_even_inside_its_first_hour(client, clock):
    start = datetime(2024, 5, 1, 10, 5, tzinfo=UTC)
    for minutes, delivered in ((0, "100.000"), (30, "102.500")):
        text = telegram(
            start + timedelta(minutes=minutes),
            "E0044404018311117",
            electricity_delivered_1=Decimal(delivered),
            electricity_delivered_2=Decimal("200.000"),
        )
        assert client.post(V1, headers=AUTH, data={"telegram": text}).status_code == 201
    comparison = client.get("/price-plans/compare-all/E0044404018311117")
    assert comparison.status_code == 200
    assert comparison.json()["pricePlanComparisons"] == [
        {"price-plan-2": 2.5},
        {"price-plan-1": 5.0},
        {"price-plan-0": 25.0},
    ]
    hours = client.get("/api/v2/statistics/hour", headers=AUTH).json()["results"]
    assert [(hour["hour_start"], hour["electricity1"]) for hour in hours] == [("2024-05-01T10:00:00Z", "2.500")]


def test_reading_a_p1_meter_as_a_joi_meter_says_where_its_readings_are(client, clock):
    text = telegram(datetime(2024, 5, 1, 10, 5, tzinfo=UTC), "E0044404018311117")
    assert client.post(V1, headers=AUTH, data={"telegram": text}).status_code == 201
    response = client.get("/readings/read/E0044404018311117")
    assert response.status_code == 404
    assert (
        "P1 (DSMR) meter" in response.json()["detail"] and "/api/v2/datalogger/dsmrreading" in response.json()["detail"]
    )
    assert client.get("/readings/read/nobody").json()["detail"] == "meter 'nobody' has no readings"


EXAMPLE_TELEGRAM = PROJECT_ROOT / "examples" / "telegram.txt"


def test_the_shipped_example_telegram_is_a_v5_telegram_with_a_valid_crc_and_crlf_line_ends():
    raw = EXAMPLE_TELEGRAM.read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n") > 20
    parsed = parse_telegram(raw.decode("ascii"), verify_crc=True)
    assert parsed.version == "50" and parsed.equipment_id == "E0044404018311117"
    assert parsed.timestamp == datetime(2017, 4, 14, 22, 30, tzinfo=UTC)


def test_the_readme_examples_answer_on_the_data_they_create(client):
    """The README's sequence: the seed's v2 example, examples/telegram.txt, then its queries."""
    assert client.post(READINGS, headers=AUTH, data=SEED_READING).status_code == 201
    telegram_text = EXAMPLE_TELEGRAM.read_bytes().decode("ascii")
    assert client.post(V1, headers=AUTH, data={"telegram": telegram_text}).status_code == 201
    contract = (
        "start=2017-01-01&end=2017-12-31&description=Fixed 2017&electricity_delivered_1_price=0.21"
        "&electricity_delivered_2_price=0.25&electricity_returned_1_price=0.08&electricity_returned_2_price=0.08"
        "&gas_price=1.35&fixed_daily_cost=0.92"
    )
    form = {"content-type": "application/x-www-form-urlencoded", **AUTH}
    assert client.post("/api/v2/consumption/energy-supplier-prices", headers=form, content=contract).status_code == 201
    window = "timestamp__gte=2017-04-14%2000:00:00&timestamp__lte=2017-04-16%2000:00:00"
    assert client.get(f"{READINGS}?{window}", headers=AUTH).json()["count"] == 2
    latest = client.get(f"{READINGS}?ordering=-timestamp&limit=1", headers=AUTH).json()["results"][0]
    assert latest["timestamp"] == "2017-04-14T22:30:00Z"
    days = client.get("/api/v2/statistics/day?day__gte=2017-04-14&day__lte=2017-04-16", headers=AUTH).json()
    assert [(day["day"], day["electricity1"], day["total_cost"]) for day in days["results"]] == [
        ("2017-04-15", "0.500", "1.09")  # 0.5 × 0.21 + 0.25 × 0.25 = 0.1675 → 0.17, + 0.92
    ]
    hours = client.get("/api/v2/statistics/hour?hour_start__gte=2017-04-14%2000:00:00&limit=48", headers=AUTH).json()
    assert [hour["hour_start"] for hour in hours["results"]] == ["2017-04-14T22:00:00Z"]
    assert client.get("/price-plans/compare-all/E0044404018311117").json()["pricePlanComparisons"][0] == {
        "price-plan-2": 0.75
    }
    assert client.get("/api/v2/consumption/today", headers=AUTH).status_code == 404  # no reading today


def test_the_served_document_declares_the_dsmr_key_schemes_for_every_dsmr_operation(client):
    document = client.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["DsmrAuthKey"] | {"description": None} == {
        "type": "apiKey",
        "in": "header",
        "name": "X-AUTHKEY",
        "description": None,
        "x-apikeyInfoFunc": "controllers.dsmr_common.accept_any_key",
    }
    assert (schemes["DsmrToken"]["in"], schemes["DsmrToken"]["name"]) == ("header", "Authorization")
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method not in {"get", "put", "post", "delete", "patch"}:
                continue
            if path.startswith(("/api/v1/datalogger/", "/api/v2/")):
                assert operation["security"] == [{"DsmrAuthKey": []}, {"DsmrToken": []}, {}], (path, method)
                assert all(parameter["name"] != "X-AUTHKEY" for parameter in operation.get("parameters", []))
            else:
                assert all("DsmrAuthKey" not in scheme for scheme in operation.get("security", [])), (path, method)
