"""Closed mode (REQUIRE_AUTH=1): the authorization matrix of every closed JOI and OMS endpoint (no key, a wrong
key, a key for another meter or device, another user's token, the linked user's, an admin's), the admin API
for device keys and linked meters, and the metrics page. SQLite and PostgreSQL."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest

from config import Config
from tests.support.accounts import Account, delete, register, register_admin

METER, OTHER_METER = "smart-meter-0", "smart-meter-1"
UNKNOWN_KEY = "joi_" + "0" * 64
MESSAGE = {
    "data": [
        {
            "value": "2020-06-26T06:49:00.000000",
            "tariff": 0,
            "subunit": 0,
            "dimension": "Time Point (time & date)",
            "storagenr": 0,
        },
        {"value": 29690, "tariff": 0, "subunit": 0, "dimension": "Energy (kWh)", "storagenr": 0},
    ],
    "device": {"type": 4, "status": 0, "identnr": 83251076, "version": 0, "accessnr": 156, "manufacturer": 5317},
}


@dataclass
class World:
    client: object
    admin: Account
    alice: Account  # smart-meter-0 is linked to her
    bob: Account
    meter_key: str  # may write smart-meter-0
    other_meter_key: str  # may write smart-meter-1
    device_key: str  # may write OMS device EFE:83251076
    other_device_key: str  # may write OMS device EFE:11111111
    gateway_key: str  # may write any OMS device

    def as_(self, who: str) -> dict[str, str]:
        return {
            "nobody": {},
            "unknown key": {"X-API-Key": UNKNOWN_KEY},
            "malformed key": {"X-API-Key": "not-a-key"},
            "unknown token": {"Authorization": "Token " + "0" * 64},
            "meter key": {"X-API-Key": self.meter_key},
            "other meter key": {"X-API-Key": self.other_meter_key},
            "device key": {"X-API-Key": self.device_key},
            "other device key": {"X-API-Key": self.other_device_key},
            "gateway key": {"X-API-Key": self.gateway_key},
            "alice": self.alice.headers,
            "bob": self.bob.headers,
            "admin": self.admin.headers,
        }[who]


@pytest.fixture
def config(database_url) -> Config:
    return Config(database_url=database_url, validate_responses=True, require_auth=True)


def make_key(client, admin: Account, **binding) -> str:
    response = client.post("/admin/device-keys", json=binding, headers=admin.headers)
    assert response.status_code == 201, response.text
    return response.json()["key"]


@pytest.fixture
def world(client) -> World:
    admin, alice, bob = register_admin(client), register(client, "alice"), register(client, "bob")
    linked = client.post(f"/admin/users/{alice.id}/meters", json={"meter_ids": [METER]}, headers=admin.headers)
    assert linked.status_code == 200 and linked.json() == {"user_id": alice.id, "meter_ids": [METER]}
    world = World(
        client,
        admin,
        alice,
        bob,
        meter_key=make_key(client, admin, name="Sarah's meter", meter_ids=[METER]),
        other_meter_key=make_key(client, admin, meter_ids=[OTHER_METER]),
        device_key=make_key(client, admin, oms_devices=["EFE:83251076"]),
        other_device_key=make_key(client, admin, oms_devices=["5317:11111111"]),
        gateway_key=make_key(client, admin, any_oms_device=True),
    )
    for meter in (METER, OTHER_METER):
        stored = client.post("/readings/store", json=readings(meter, 1606636800), headers=admin.headers)
        assert stored.status_code == 200, stored.text
    return world


def readings(meter: str, start: int) -> dict:
    return {
        "smartMeterId": meter,
        "electricityReadings": [{"time": start, "reading": 35}, {"time": start + 1800, "reading": 5}],
    }


def check_matrix(world: World, send, expected: dict[str, int]) -> dict:
    """Sends the request as each caller; every answer must have the expected status. Returns the answers."""
    answers = {}
    for who, status in expected.items():
        response = send(world.as_(who))
        assert response.status_code == status, f"{who}: {response.status_code} {response.text}"
        if status == 401:
            assert response.headers["www-authenticate"], who
        if status >= 400:
            assert response.headers["content-type"].startswith("application/problem+json"), who
        answers[who] = response
    return answers


REFUSED_WRITERS = {
    "nobody": 401,
    "unknown key": 401,
    "malformed key": 401,
    "unknown token": 401,
    "other meter key": 403,
    "device key": 403,
    "alice": 403,
    "bob": 403,
}


def test_readings_are_stored_with_the_meters_key_or_an_admins_token_only(world):
    client = world.client
    batch = readings(METER, 1606640400)

    def send(headers):
        return client.post("/readings/store", json=batch, headers=headers)

    answers = check_matrix(world, send, REFUSED_WRITERS)
    assert "X-API-Key" in answers["nobody"].headers["www-authenticate"]
    assert "not bound to meter 'smart-meter-0'" in answers["other meter key"].json()["detail"]
    assert "unknown or was revoked" in answers["unknown key"].json()["detail"]
    assert "malformed" in answers["malformed key"].json()["detail"]
    read = client.get(f"/readings/read/{METER}?from=1606640400", headers=world.admin.headers)
    assert read.json() == []  # no refused request stored anything
    check_matrix(world, send, {"meter key": 200, "admin": 200})
    assert len(client.get(f"/readings/read/{METER}?from=1606640400", headers=world.admin.headers).json()) == 2


READERS = {
    "nobody": 401,
    "unknown key": 401,
    "unknown token": 401,
    "meter key": 401,  # device keys write, they never read
    "bob": 404,
    "alice": 200,
    "admin": 200,
}


@pytest.mark.parametrize(
    "path",
    [
        f"/readings/read/{METER}",
        f"/price-plans/compare-all/{METER}",
        f"/price-plans/recommend/{METER}?limit=2",
    ],
)
def test_a_meter_is_read_by_the_user_it_is_linked_to_and_admins_and_is_not_found_for_others(world, path):
    answers = check_matrix(world, lambda headers: world.client.get(path, headers=headers), READERS)
    assert answers["alice"].json() == answers["admin"].json()
    assert answers["bob"].json()["detail"] == f"meter {METER!r} has no readings"
    # Another user's meter and a meter that does not exist answer alike.
    unknown = world.client.get(path.replace(METER, "no-such-meter"), headers=world.bob.headers)
    assert unknown.status_code == 404 and unknown.json()["detail"] == "meter 'no-such-meter' has no readings"


def test_alice_does_not_see_the_meter_that_is_not_linked_to_her(world):
    response = world.client.get(f"/price-plans/compare-all/{OTHER_METER}", headers=world.alice.headers)
    assert response.status_code == 404


def test_an_unlinked_meter_and_a_revoked_key_stop_working(world):
    client, admin = world.client, world.admin
    gone = delete(client, f"/admin/users/{world.alice.id}/meters/{METER}", headers=admin.headers)
    assert gone.status_code == 204
    assert client.get(f"/readings/read/{METER}", headers=world.alice.headers).status_code == 404
    assert delete(client, f"/admin/users/{world.alice.id}/meters/{METER}", headers=admin.headers).status_code == 404

    key_id = next(
        key["id"]
        for key in client.get("/admin/device-keys", headers=admin.headers).json()
        if key["meter_ids"] == [METER]
    )
    assert delete(client, f"/admin/device-keys/{key_id}", headers=admin.headers).status_code == 204
    refused = client.post("/readings/store", json=readings(METER, 1606640400), headers={"X-API-Key": world.meter_key})
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    assert delete(client, f"/admin/device-keys/{key_id}", headers=admin.headers).status_code == 404


def test_oms_messages_are_committed_with_the_devices_key_a_gateway_key_or_an_admins_token(world):
    def send(headers):
        return world.client.post("/commit", json=MESSAGE, headers=headers)

    refused = {**REFUSED_WRITERS, "meter key": 403, "other device key": 403}
    del refused["device key"]
    answers = check_matrix(world, send, refused)
    assert "not bound to OMS device EFE:83251076" in answers["other device key"].json()["detail"]
    devices = world.client.get("/oms/devices", headers=world.admin.headers).json()
    assert devices["total"] == 0  # nothing was stored
    check_matrix(world, send, {"device key": 200, "gateway key": 200, "admin": 200})
    other = copy.deepcopy(MESSAGE)
    other["device"]["identnr"] = 22222222
    check_matrix(
        world,
        lambda headers: world.client.post("/commit", json=other, headers=headers),
        {"device key": 403, "gateway key": 200},
    )
    assert world.client.get("/oms/devices", headers=world.admin.headers).json()["total"] == 2


@pytest.mark.parametrize("path", ["/export", "/oms/devices"])
def test_the_oms_export_and_device_list_are_for_admins(world, path):
    world.client.post("/commit", json=MESSAGE, headers=world.admin.headers)
    expected = {"nobody": 401, "unknown key": 401, "gateway key": 401, "alice": 403, "bob": 403, "admin": 200}
    answers = check_matrix(world, lambda headers: world.client.get(path, headers=headers), expected)
    assert "83251076" in answers["admin"].text


def test_device_keys_are_shown_once_and_listed_without_the_key(world):
    client, admin = world.client, world.admin
    made = client.post(
        "/admin/device-keys", json={"name": "gateway 7", "any_oms_device": True}, headers=admin.headers
    ).json()
    assert made["key"].startswith(made["key_prefix"]) and len(made["key"]) == 68
    listed = client.get("/admin/device-keys", headers=admin.headers)
    assert listed.status_code == 200 and made["key"] not in listed.text
    entry = next(key for key in listed.json() if key["id"] == made["id"])
    assert entry == {k: v for k, v in made.items() if k != "key"}
    assert entry["any_oms_device"] is True and entry["name"] == "gateway 7"
    assert next(key for key in listed.json() if key["oms_devices"] == ["EFE:83251076"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "meter_ids"),
        ({"name": "nothing bound", "meter_ids": []}, "meter_ids"),
        ({"oms_devices": ["EFE"]}, None),
        ({"oms_devices": ["99999:1"]}, "oms_devices"),
        ({"oms_devices": ["EFE:1"], "any_oms_device": True}, "oms_devices"),
        ({"meter_ids": ["has space"]}, None),
        ({"meter_ids": [METER], "extra": 1}, None),
    ],
)
def test_a_device_key_bound_to_nothing_valid_is_refused_and_nothing_is_made(world, body, field):
    before = world.client.get("/admin/device-keys", headers=world.admin.headers).json()
    response = world.client.post("/admin/device-keys", json=body, headers=world.admin.headers)
    assert response.status_code == 400, response.text
    if field:
        assert response.json()["field"] == field
    assert world.client.get("/admin/device-keys", headers=world.admin.headers).json() == before


def test_the_access_admin_api_is_for_admins_only(world):
    client = world.client
    for method, path, body in [
        ("GET", "/admin/device-keys", None),
        ("POST", "/admin/device-keys", {"meter_ids": [METER]}),
        ("DELETE", "/admin/device-keys/1", None),
        ("GET", f"/admin/users/{world.bob.id}/meters", None),
        ("POST", f"/admin/users/{world.bob.id}/meters", {"meter_ids": [METER]}),
        ("DELETE", f"/admin/users/{world.alice.id}/meters/{METER}", None),
    ]:
        for who, status in {"nobody": 401, "meter key": 401, "alice": 403}.items():
            response = client.request(method, path, json=body, headers=world.as_(who))
            assert response.status_code == status, (method, path, who, response.text)
    assert client.get(f"/readings/read/{METER}", headers=world.alice.headers).status_code == 200
    assert client.get(f"/admin/users/{world.bob.id}/meters", headers=world.admin.headers).json()["meter_ids"] == []
    assert client.get("/admin/users/999999/meters", headers=world.admin.headers).status_code == 404


def test_linking_again_keeps_one_link_and_answers_every_linked_meter(world):
    client, admin, alice = world.client, world.admin, world.alice
    path = f"/admin/users/{alice.id}/meters"
    answer = client.post(path, json={"meter_ids": [OTHER_METER, METER, OTHER_METER]}, headers=admin.headers)
    assert answer.status_code == 200 and answer.json()["meter_ids"] == [METER, OTHER_METER]
    assert client.get(f"/readings/read/{OTHER_METER}", headers=alice.headers).status_code == 200


def test_closed_metrics_without_a_scrape_token_are_for_admins(world):
    for who, status in {"nobody": 401, "alice": 401, "meter key": 401, "admin": 200}.items():
        response = world.client.get("/metrics", headers=world.as_(who))
        assert response.status_code == status, who
    assert "joi_build_info" in world.client.get("/metrics", headers=world.admin.headers).text


def test_the_served_document_declares_the_schemes_only_in_closed_mode(world, database_url):
    from app import create_app

    closed = world.client.get("/openapi.json").json()
    assert closed["components"]["securitySchemes"]["deviceKey"]["name"] == "X-API-Key"
    assert closed["paths"]["/readings/store"]["post"]["security"][0] == {"deviceKey": []}
    assert closed["paths"]["/price-plans/compare-all/{smartMeterId}"]["get"]["security"] == [
        {"bearer": []},
        {"token": []},
    ]
    with create_app(Config(database_url=database_url)).test_client() as open_client:
        served = open_client.get("/openapi.json").json()
        assert "security" not in served["paths"]["/readings/store"]["post"]
        assert "security" not in served["paths"]["/export"]["get"]
        assert open_client.post("/readings/store", json=readings("open-meter", 1606636800)).status_code == 200
        assert open_client.get("/price-plans/compare-all/open-meter").status_code == 200


def test_the_pages_follow_closed_mode_a_linked_user_sees_their_meter_and_only_admins_the_oms_page(world):
    from tests.api.test_pages_foundation import log_in

    client = world.client
    assert client.get(f"/dashboard/meters/{METER}").status_code == 404  # a visitor sees no meter
    assert client.get("/dashboard/oms").status_code == 404
    assert log_in(client, "alice").status_code == 303
    assert client.get(f"/dashboard/meters/{METER}").status_code == 200
    assert client.get(f"/dashboard/meters/{OTHER_METER}").status_code == 404
    listed = client.get("/dashboard/meters").text
    assert METER in listed and OTHER_METER not in listed
    assert client.get("/dashboard/oms").status_code == 404
    client.cookies.clear()  # another browser
    assert log_in(client, "admin").status_code == 303
    assert client.get(f"/dashboard/meters/{OTHER_METER}").status_code == 200
    assert client.get("/dashboard/oms").status_code == 200


CLIENT = {"phone": "78218173218", "operator_code": "123", "timezone": "Europe/Moscow"}
MAILING = {
    "start_time": "2030-01-01T00:00:00Z",
    "end_time": "2030-01-02T00:00:00Z",
    "text": "Your meter reading is due",
}
MAILINGS_CALLERS = {
    "nobody": 401,
    "unknown token": 401,
    "meter key": 401,
    "gateway key": 401,
    "alice": 403,
    "bob": 403,
}


def test_every_client_and_mailing_operation_is_for_admins_and_a_refused_one_changes_nothing(world):
    client = world.client
    admin = world.admin.headers
    made = client.post("/api/v1/clients/", json=CLIENT, headers=admin)
    assert made.status_code == 201, made.text
    client_id = made.json()["id"]
    mailing = client.post("/api/v1/mailings/", json=MAILING, headers=admin)
    assert mailing.status_code == 201, mailing.text
    mailing_id = mailing.json()["id"]
    other_client = {**CLIENT, "phone": "78218173219"}
    operations = [
        (lambda h: client.post("/api/v1/clients/", json=other_client, headers=h), 201),
        (lambda h: client.get("/api/v1/clients/", headers=h), 200),
        (lambda h: client.get(f"/api/v1/clients/{client_id}", headers=h), 200),
        (lambda h: client.put(f"/api/v1/clients/{client_id}", json={**CLIENT, "tag": "vip"}, headers=h), 200),
        (lambda h: client.post("/api/v1/mailings/", json=MAILING, headers=h), 201),
        (lambda h: client.get("/api/v1/mailings/", headers=h), 200),
        (lambda h: client.get(f"/api/v1/mailings/{mailing_id}", headers=h), 200),
        (lambda h: client.put(f"/api/v1/mailings/{mailing_id}", json={**MAILING, "text": "x"}, headers=h), 200),
        (lambda h: client.get(f"/api/v1/mailings/{mailing_id}/messages", headers=h), 200),
        (lambda h: client.delete(f"/api/v1/mailings/{mailing_id}", headers=h), 204),
        (lambda h: client.delete(f"/api/v1/clients/{client_id}", headers=h), 204),
    ]
    for send, admins_status in operations:
        check_matrix(world, send, MAILINGS_CALLERS)
        # the refusals changed nothing: the admin's own call still finds what it expects
        assert send(admin).status_code == admins_status
    assert client.get("/api/v1/clients/", headers=admin).json()["count"] == 1  # only the admin's second client
    assert client.get("/api/v1/clients", headers={}).status_code == 401  # the path without its slash too


def test_the_served_document_declares_the_mailings_security_only_in_closed_mode(world, database_url):
    from app import create_app

    closed = world.client.get("/openapi.json").json()
    assert closed["paths"]["/api/v1/mailings/"]["post"]["security"] == [{"bearer": []}, {"token": []}]
    with create_app(Config(database_url=database_url)).test_client() as open_client:
        served = open_client.get("/openapi.json").json()
        assert "security" not in served["paths"]["/api/v1/mailings/"]["post"]
        assert open_client.post("/api/v1/clients/", json=CLIENT).status_code == 201
