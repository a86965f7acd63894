"""The data-administration API (admins only): DSMR installation keys made and revoked, test data removed
with the statistics recomputed; the authorization matrix and bad input that changes nothing. SQLite and
PostgreSQL."""

from __future__ import annotations

import pytest

from config import Config
from tests.support.accounts import delete, register, register_admin

INSTALLATIONS = "/admin/dsmr/installations"
READINGS = "/api/v2/datalogger/dsmrreading"
DAYS = "/api/v2/statistics/day"
PRICES_PATH = "/api/v2/consumption/energy-supplier-prices"
PRICES = {
    "start": "2024-10-01",
    "end": "2024-10-31",
    "description": "test contract",
    "electricity_delivered_1_price": "0.20",
    "electricity_delivered_2_price": "0.25",
    "electricity_returned_1_price": "0.10",
    "electricity_returned_2_price": "0.10",
    "gas_price": "0.80",
    "fixed_daily_cost": "0.50",
}


@pytest.fixture
def config(database_url) -> Config:
    return Config(database_url=database_url, validate_responses=True, dsmr_api_enabled=True)


@pytest.fixture
def admin(client):
    return register_admin(client).headers


@pytest.fixture
def user(client):
    return register(client, "alice").headers


def make_key(client, headers, name="home", query=""):
    return client.post(f"{INSTALLATIONS}{query}", json={"name": name}, headers=headers)


def reading(timestamp: str, delivered_1: float) -> dict:
    return {
        "electricity_currently_delivered": 1.5,
        "electricity_currently_returned": 0,
        "electricity_delivered_1": delivered_1,
        "electricity_delivered_2": 3000,
        "electricity_returned_1": 0,
        "electricity_returned_2": 0,
        "timestamp": timestamp,
    }


def post_readings(client, key: str, rows) -> None:
    for timestamp, delivered in rows:
        response = client.post(READINGS, json=reading(timestamp, delivered), headers={"X-AUTHKEY": key})
        assert response.status_code == 201, response.text


TWO_DAYS = [
    ("2024-10-10T08:00:00Z", 1000),
    ("2024-10-10T09:00:00Z", 1001),
    ("2024-10-11T08:00:00Z", 1005),
    ("2024-10-11T09:00:00Z", 1007),
]


def days(client, key: str) -> list[tuple[str, str]]:
    body = client.get(f"{DAYS}?day__gte=2024-10-01&day__lte=2024-10-31", headers={"X-AUTHKEY": key}).json()
    return [(day["day"], day["electricity1"]) for day in body["results"]]


def store_joi(client, meter: str, readings) -> None:
    body = {"smartMeterId": meter, "electricityReadings": [{"time": t, "reading": r} for t, r in readings]}
    assert client.post("/readings/store", json=body).status_code == 200


# --- the authorization matrix --------------------------------------------------------------------------------

OPERATIONS = [
    ("GET", INSTALLATIONS, None, 200),
    ("POST", INSTALLATIONS, {"name": "fresh"}, 201),
    ("DELETE", f"{INSTALLATIONS}/home/key", None, 204),
    ("DELETE", f"{INSTALLATIONS}/home/readings?all=true", None, 200),
    ("DELETE", f"{INSTALLATIONS}/home/contracts/{{contract}}", None, 204),
    ("DELETE", f"{INSTALLATIONS}/home", None, 204),
    ("DELETE", "/admin/joi/meters/m-1/readings?from=0&to=100", None, 200),
    ("DELETE", "/admin/joi/meters/m-1", None, 204),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), OPERATIONS, ids=lambda value: str(value)[:40])
def test_every_operation_is_refused_to_anonymous_callers_and_users_and_done_for_an_admin(
    client, admin, user, method, path, body, status
):
    key = make_key(client, admin).json()["key"]
    post_readings(client, key, TWO_DAYS)
    contract = client.post(PRICES_PATH, json=PRICES, headers={"X-AUTHKEY": key}).json()["id"]
    store_joi(client, "m-1", [(0, 1.0), (3600, 2.0)])
    path = path.replace("{contract}", str(contract))
    assert client.request(method, path, json=body).status_code == 401
    refused = client.request(method, path, json=body, headers=user)
    assert refused.status_code == 403, refused.text
    assert client.request(method, path, json=body, headers=admin).status_code == status


# --- keys -----------------------------------------------------------------------------------------------------


def test_a_key_made_by_an_admin_is_shown_once_works_and_stops_working_when_revoked(client, admin):
    made = make_key(client, admin)
    assert made.status_code == 201
    assert made.json()["name"] == "home" and made.json()["created"] is True
    key = made.json()["key"]
    auth = {"X-AUTHKEY": key}
    assert client.post(READINGS, json=reading("2024-10-10T08:00:00Z", 1000), headers=auth).status_code == 201
    assert client.get(READINGS, headers=auth).json()["count"] == 1

    listed = client.get(INSTALLATIONS, headers=admin).json()
    assert [(row["name"], row["has_key"], row["readings"]) for row in listed] == [("home", True, 1)]
    assert key not in client.get(INSTALLATIONS, headers=admin).text

    again = make_key(client, admin)
    assert again.status_code == 409 and "rotate" in again.json()["detail"]
    assert client.get(READINGS, headers=auth).status_code == 200  # the refused request changed nothing

    assert delete(client, f"{INSTALLATIONS}/home/key", admin).status_code == 204
    assert client.get(READINGS, headers=auth).status_code == 403
    assert client.get(INSTALLATIONS, headers=admin).json()[0]["has_key"] is False
    assert delete(client, f"{INSTALLATIONS}/home/key", admin).status_code == 404  # no key left to revoke

    renewed = make_key(client, admin).json()  # a new key reads the data that stayed
    assert renewed["created"] is False
    assert client.get(READINGS, headers={"X-AUTHKEY": renewed["key"]}).json()["count"] == 1


def test_rotating_a_key_replaces_it_at_once(client, admin):
    old = make_key(client, admin).json()["key"]
    new = make_key(client, admin, query="?rotate=true")
    assert new.status_code == 201
    assert client.get(READINGS, headers={"X-AUTHKEY": old}).status_code == 403
    assert client.get(READINGS, headers={"X-AUTHKEY": new.json()["key"]}).status_code == 200


def test_the_default_installation_is_dsmr_api_keys_while_that_is_set(client, admin, app):
    app.app.config["SETTINGS"] = Config(**{**vars(app.app.config["SETTINGS"]), "dsmr_api_key": "env-key"})
    refused = make_key(client, admin, name="default")
    assert refused.status_code == 409 and "DSMR_API_KEY" in refused.json()["detail"]
    assert client.get(INSTALLATIONS, headers=admin).json() == []


@pytest.mark.parametrize(
    "body", [{"name": "home\n"}, {"name": "a b"}, {"name": ""}, {"name": "x" * 129}, {}, {"name": 7}, {"n": "x"}]
)
def test_a_bad_installation_name_is_a_400_and_makes_nothing(client, admin, body):
    response = client.post(INSTALLATIONS, json=body, headers=admin)
    assert response.status_code == 400, response.text
    assert client.get(INSTALLATIONS, headers=admin).json() == []


@pytest.mark.parametrize(
    "path",
    [
        f"{INSTALLATIONS}/home%0A/key",
        f"{INSTALLATIONS}/home%0A",
        f"{INSTALLATIONS}/home%0A/readings?all=true",
        f"{INSTALLATIONS}/home%0A/contracts/1",
        f"{INSTALLATIONS}/home/contracts/x",
        f"{INSTALLATIONS}/home/contracts/0",
        "/admin/joi/meters/m-1%0A",
        "/admin/joi/meters/m-1%0A/readings?all=true",
    ],
)
def test_a_name_or_id_with_a_control_character_or_of_the_wrong_kind_is_a_4xx_and_changes_nothing(client, admin, path):
    key = make_key(client, admin).json()["key"]
    post_readings(client, key, TWO_DAYS)
    store_joi(client, "m-1", [(0, 1.0), (3600, 2.0)])
    response = delete(client, path, admin)
    assert 400 <= response.status_code < 500 and response.status_code != 401, response.text
    assert client.get(READINGS, headers={"X-AUTHKEY": key}).json()["count"] == 4
    assert len(client.get("/readings/read/m-1").json()) == 2


@pytest.mark.parametrize(
    "path",
    [
        f"{INSTALLATIONS}/nobody/key",
        f"{INSTALLATIONS}/nobody",
        f"{INSTALLATIONS}/nobody/readings?all=true",
        f"{INSTALLATIONS}/nobody/contracts/1",
        f"{INSTALLATIONS}/home/contracts/999",
        "/admin/joi/meters/nobody",
        "/admin/joi/meters/nobody/readings?all=true",
    ],
)
def test_an_unknown_installation_contract_or_meter_is_a_404(client, admin, path):
    make_key(client, admin)
    response = delete(client, path, admin)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"


# --- removing test data ---------------------------------------------------------------------------------------


def test_deleting_a_window_of_readings_recomputes_the_day_statistics(client, admin):
    key = make_key(client, admin).json()["key"]
    post_readings(client, key, TWO_DAYS)
    before = days(client, key)
    assert [day for day, _ in before] == ["2024-10-10", "2024-10-11"]

    window = "from=2024-10-11T00:00:00%2B02:00&to=2024-10-11T23:59:59%2B02:00"
    response = delete(client, f"{INSTALLATIONS}/home/readings?{window}", admin)
    assert response.status_code == 200 and response.json() == {"deleted": 2}
    assert days(client, key) == before[:1]
    assert client.get(READINGS, headers={"X-AUTHKEY": key}).json()["count"] == 2

    again = delete(client, f"{INSTALLATIONS}/home/readings?{window}", admin)
    assert again.json() == {"deleted": 0}


def test_a_naive_window_is_local_time_and_epoch_seconds_are_accepted(client, admin):
    key = make_key(client, admin).json()["key"]
    post_readings(client, key, TWO_DAYS)
    response = delete(client, f"{INSTALLATIONS}/home/readings?from=2024-10-11T10:00:00", admin)  # 08:00Z in Amsterdam
    assert response.json() == {"deleted": 2}
    response = delete(client, f"{INSTALLATIONS}/home/readings?to=1728547200", admin)  # 2024-10-10T08:00:00Z
    assert response.json() == {"deleted": 1}
    assert client.get(READINGS, headers={"X-AUTHKEY": key}).json()["count"] == 1


@pytest.mark.parametrize(
    "query", ["", "?from=soon", "?all=true&from=2024-10-10T00:00:00Z", "?to=2024-13-01", "?from=1%0A", "?all=maybe"]
)
def test_a_readings_deletion_without_a_clear_window_is_a_400_and_deletes_nothing(client, admin, query):
    key = make_key(client, admin).json()["key"]
    post_readings(client, key, TWO_DAYS)
    response = delete(client, f"{INSTALLATIONS}/home/readings{query}", admin)
    assert response.status_code == 400, response.text
    assert client.get(READINGS, headers={"X-AUTHKEY": key}).json()["count"] == 4


def test_all_true_deletes_every_reading_and_the_statistics(client, admin):
    key = make_key(client, admin).json()["key"]
    post_readings(client, key, TWO_DAYS)
    assert delete(client, f"{INSTALLATIONS}/home/readings?all=true", admin).json() == {"deleted": 4}
    assert days(client, key) == []


def test_deleting_an_installation_removes_its_key_and_data(client, admin):
    key = make_key(client, admin).json()["key"]
    post_readings(client, key, TWO_DAYS)
    assert delete(client, f"{INSTALLATIONS}/home", admin).status_code == 204
    assert client.get(INSTALLATIONS, headers=admin).json() == []
    assert client.get(READINGS, headers={"X-AUTHKEY": key}).status_code == 403
    fresh = make_key(client, admin).json()["key"]  # the name is free again, with no data behind it
    assert client.get(READINGS, headers={"X-AUTHKEY": fresh}).json()["count"] == 0
    assert days(client, fresh) == []


def test_deleting_a_contract_reprices_its_days(client, admin):
    key = make_key(client, admin).json()["key"]
    auth = {"X-AUTHKEY": key}
    post_readings(client, key, TWO_DAYS)
    contract = client.post(PRICES_PATH, json=PRICES, headers=auth).json()["id"]
    body = client.get(f"{DAYS}?day__gte=2024-10-10&day__lte=2024-10-10", headers=auth).json()
    assert body["results"][0]["total_cost"] == "0.70"  # 1 kWh × 0.20 + 0.50
    assert delete(client, f"{INSTALLATIONS}/home/contracts/{contract}", admin).status_code == 204
    assert client.get(PRICES_PATH, headers=auth).json()["count"] == 0
    body = client.get(f"{DAYS}?day__gte=2024-10-10&day__lte=2024-10-10", headers=auth).json()
    assert body["results"][0]["total_cost"] == "0.00"
    assert delete(client, f"{INSTALLATIONS}/home/contracts/{contract}", admin).status_code == 404


def test_deleting_a_joi_window_drops_its_energy_from_compare_all(client, admin):
    store_joi(client, "m-1", [(0, 10.0), (3600, 10.0), (7200, 10.0)])
    before = client.get("/price-plans/compare-all/m-1").json()["pricePlanComparisons"]
    response = delete(client, "/admin/joi/meters/m-1/readings?from=3601&to=7200", admin)
    assert response.status_code == 200 and response.json() == {"deleted": 1}
    after = client.get("/price-plans/compare-all/m-1").json()["pricePlanComparisons"]
    assert [next(iter(plan.values())) * 2 for plan in after] == [next(iter(plan.values())) for plan in before]
    assert client.get("/readings/read/m-1").json() == [{"time": 0, "reading": 10.0}, {"time": 3600, "reading": 10.0}]


def test_deleting_a_joi_meter_removes_all_its_readings(client, admin):
    store_joi(client, "m-1", [(0, 10.0), (3600, 10.0)])
    assert delete(client, "/admin/joi/meters/m-1", admin).status_code == 204
    assert client.get("/readings/read/m-1").status_code == 404
    assert delete(client, "/admin/joi/meters/m-1", admin).status_code == 404


@pytest.mark.parametrize("query", ["", "?from=soon", "?from=-1", "?all=true&to=5", "?to=99999999999"])
def test_a_joi_deletion_without_a_clear_window_is_a_400_and_deletes_nothing(client, admin, query):
    store_joi(client, "m-1", [(0, 10.0), (3600, 10.0)])
    response = delete(client, f"/admin/joi/meters/m-1/readings{query}", admin)
    assert response.status_code == 400, response.text
    assert len(client.get("/readings/read/m-1").json()) == 2
