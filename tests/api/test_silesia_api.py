"""The SilesiaSolar management API: every operation for each caller (anonymous, the owner, another user,
an admin), the seed's examples, validation, and bad input that must change nothing; SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from repository import db
from tests.support.accounts import Account, delete, location_body, register, register_admin

SILESIA_TABLES = [
    "users",
    "silesia_meters",
    "silesia_measurements",
    "silesia_registers",
    "silesia_locations",
    "silesia_hosts",
    "silesia_host_measurements",
]


@dataclass
class World:
    admin: Account
    alice: Account
    bob: Account
    location: int  # alice's, with her host
    spare_location: int  # alice's, without hosts
    host: int  # alice's, an sdm630 with active_power assigned
    sdm630: int
    sdm120: int
    free_register: int  # sdm120 frequency: no host reads it


def meter_ids(client, headers) -> dict[str, int]:
    return {meter["name"]: meter["id"] for meter in client.get("/meters", headers=headers).json()}


def a_host(world_or_ids, **fields) -> dict:
    return {"ip": "127.0.0.1", "port": 2137, "slave_address": 1, "description": "blah", **fields}


@pytest.fixture
def world(client) -> World:
    admin = register_admin(client)
    alice, bob = register(client, "alice"), register(client, "bob")
    location = client.post("/user/locations", headers=alice.headers, json=location_body()).json()["id"]
    spare = client.post("/user/locations", headers=alice.headers, json=location_body(number="64")).json()["id"]
    meters = meter_ids(client, admin.headers)
    host = client.post(
        "/admin/hosts",
        headers=admin.headers,
        json=a_host(None, user=alice.id, location=location, meter=meters["sdm630"]),
    )
    assert host.status_code == 201, host.text
    host_id = host.json()["id"]
    assigned = client.post(
        f"/user/hosts/{host_id}/measurements", headers=alice.headers, json={"measurements": ["active_power"]}
    )
    assert assigned.status_code == 201, assigned.text
    registers = client.get(f"/admin/registers?meter={meters['sdm120']}", headers=admin.headers).json()
    free = next(register["id"] for register in registers if register["measurement"] == "frequency")
    return World(admin, alice, bob, location, spare, host_id, meters["sdm630"], meters["sdm120"], free)


def snapshot() -> dict[str, list]:
    db.connect()
    try:
        return {
            table: sorted(map(tuple, db.database.execute_sql(f"SELECT * FROM {table}").fetchall()), key=repr)
            for table in SILESIA_TABLES
        }
    finally:
        db.close()


def call(client, method: str, path: str, headers: dict | None, body=None):
    if method == "DELETE":
        return delete(client, path, headers=headers, json=body)
    return client.request(method, path, headers=headers, json=body)


# --- the authorization matrix -------------------------------------------------------------------------------

ANONYMOUS, OWNER, OTHER, ADMIN = "anonymous", "alice", "bob", "admin"


@dataclass(frozen=True)
class Operation:
    method: str
    path: Callable[[World], str]
    body: Callable[[World], object] | None
    # Expected status per caller; alice owns the objects in the paths.
    expected: dict[str, int]

    def __str__(self):  # pytest ids
        return f"{self.method} {self.path(_PLACEHOLDER)}"


_NOBODY = Account("{id}", "nobody", "")  # type: ignore[arg-type]
_PLACEHOLDER = World(_NOBODY, _NOBODY, _NOBODY, *("{id}",) * 6)  # type: ignore[arg-type]


def user_op(method, path, body=None, *, owner, other, admin):
    return Operation(method, path, body, {ANONYMOUS: 401, OTHER: other, ADMIN: admin, OWNER: owner})


def admin_op(method, path, body=None, *, status):
    return Operation(method, path, body, {ANONYMOUS: 401, OWNER: 403, OTHER: 403, ADMIN: status})


MEASUREMENTS = {"measurements": ["voltage_ac"]}
OPERATIONS = [
    user_op("GET", lambda w: "/auth/info", owner=200, other=200, admin=200),
    user_op("GET", lambda w: "/user/locations", owner=200, other=200, admin=200),
    user_op("POST", lambda w: "/user/locations", lambda w: location_body(), owner=201, other=201, admin=201),
    user_op("GET", lambda w: f"/user/locations/{w.location}", owner=200, other=404, admin=404),
    user_op(
        "PATCH", lambda w: f"/user/locations/{w.location}", lambda w: {"number": "7a"}, owner=200, other=404, admin=404
    ),
    user_op("DELETE", lambda w: f"/user/locations/{w.spare_location}", owner=204, other=404, admin=404),
    user_op("GET", lambda w: "/user/hosts", owner=200, other=200, admin=200),
    user_op("GET", lambda w: f"/user/hosts/{w.host}", owner=200, other=404, admin=404),
    user_op("GET", lambda w: f"/user/hosts/{w.host}/measurements", owner=200, other=404, admin=404),
    user_op(
        "POST", lambda w: f"/user/hosts/{w.host}/measurements", lambda w: MEASUREMENTS, owner=201, other=404, admin=404
    ),
    user_op(
        "DELETE",
        lambda w: f"/user/hosts/{w.host}/measurements",
        lambda w: {"measurements": ["active_power"]},
        owner=204,
        other=404,
        admin=404,
    ),
    user_op("GET", lambda w: "/meters", owner=200, other=200, admin=200),
    user_op("GET", lambda w: f"/meters/{w.sdm630}/measurements", owner=200, other=200, admin=200),
    admin_op("GET", lambda w: "/admin/locations", status=200),
    admin_op("POST", lambda w: "/admin/locations", lambda w: location_body(user=w.bob.id), status=201),
    admin_op("GET", lambda w: f"/admin/locations/{w.location}", status=200),
    admin_op("PATCH", lambda w: f"/admin/locations/{w.location}", lambda w: {"city": "Gliwice"}, status=200),
    admin_op("DELETE", lambda w: f"/admin/locations/{w.spare_location}", status=204),
    admin_op("GET", lambda w: "/admin/hosts", status=200),
    admin_op(
        "POST",
        lambda w: "/admin/hosts",
        lambda w: a_host(w, port=2138, user=w.alice.id, location=w.location, meter=w.sdm120),
        status=201,
    ),
    admin_op("GET", lambda w: f"/admin/hosts/{w.host}", status=200),
    admin_op("PATCH", lambda w: f"/admin/hosts/{w.host}", lambda w: {"description": "garage"}, status=200),
    admin_op("DELETE", lambda w: f"/admin/hosts/{w.host}", status=204),
    admin_op("GET", lambda w: f"/admin/hosts/{w.host}/measurements", status=200),
    admin_op("POST", lambda w: f"/admin/hosts/{w.host}/measurements", lambda w: MEASUREMENTS, status=201),
    admin_op(
        "DELETE",
        lambda w: f"/admin/hosts/{w.host}/measurements",
        lambda w: {"measurements": ["active_power"]},
        status=204,
    ),
    admin_op("GET", lambda w: "/admin/meters", status=200),
    admin_op("POST", lambda w: "/admin/meters", lambda w: {"name": "sdm330", "type": 2}, status=201),
    admin_op("GET", lambda w: f"/admin/meters/{w.sdm120}", status=200),
    admin_op("PATCH", lambda w: f"/admin/meters/{w.sdm120}", lambda w: {"type": 1}, status=200),
    admin_op("DELETE", lambda w: f"/admin/meters/{w.sdm120}", status=204),
    admin_op("GET", lambda w: "/admin/measurements", status=200),
    admin_op("POST", lambda w: "/admin/measurements", lambda w: {"measurement": "temperature", "type": 1}, status=201),
    admin_op("GET", lambda w: "/admin/measurements/voltage_dc", status=200),
    admin_op("PATCH", lambda w: "/admin/measurements/voltage_dc", lambda w: {"type": 2}, status=200),
    admin_op("DELETE", lambda w: "/admin/measurements/voltage_dc", status=204),
    admin_op("GET", lambda w: "/admin/registers", status=200),
    admin_op(
        "POST",
        lambda w: "/admin/registers",
        lambda w: {
            "address": 100,
            "measurement": "voltage_dc",
            "unit": "V",
            "type": 3,
            "function_code": 4,
            "meter": w.sdm120,
        },
        status=201,
    ),
    admin_op("GET", lambda w: f"/admin/registers/{w.free_register}", status=200),
    admin_op("PATCH", lambda w: f"/admin/registers/{w.free_register}", lambda w: {"scale": 0.5}, status=200),
    admin_op("DELETE", lambda w: f"/admin/registers/{w.free_register}", status=204),
    admin_op("GET", lambda w: "/admin/users", status=200),
    admin_op("GET", lambda w: f"/admin/users/{w.alice.id}", status=200),
]


def headers_of(world: World, who: str) -> dict | None:
    return None if who == ANONYMOUS else getattr(world, who).headers


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
def test_each_caller_gets_the_documented_answer_and_refusals_change_nothing(client, world, operation):
    # Refusals first (each must leave everything as it was), then the callers who may.
    order = sorted(operation.expected, key=lambda who: operation.expected[who] < 400)
    for who in order:
        before = snapshot()
        body = operation.body(world) if operation.body else None
        response = call(client, operation.method, operation.path(world), headers_of(world, who), body)
        expected = operation.expected[who]
        assert response.status_code == expected, f"{who}: {response.text}"
        if expected >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["detail"]
            assert snapshot() == before, f"{who}'s refused request changed data"


def test_a_user_sees_only_their_own_locations_and_hosts(client, world):
    assert [loc["id"] for loc in client.get("/user/locations", headers=world.alice.headers).json()] == [
        world.location,
        world.spare_location,
    ]
    assert client.get("/user/locations", headers=world.bob.headers).json() == []
    assert [host["id"] for host in client.get("/user/hosts", headers=world.alice.headers).json()] == [world.host]
    assert client.get("/user/hosts", headers=world.bob.headers).json() == []
    assert len(client.get("/admin/locations", headers=world.admin.headers).json()) == 2
    assert len(client.get(f"/admin/locations?user={world.alice.id}", headers=world.admin.headers).json()) == 2
    assert client.get(f"/admin/locations?user={world.bob.id}", headers=world.admin.headers).json() == []
    assert [h["id"] for h in client.get(f"/admin/hosts?user={world.alice.id}", headers=world.admin.headers).json()] == [
        world.host
    ]
    assert client.get(f"/admin/hosts?user={world.bob.id}", headers=world.admin.headers).json() == []


def test_another_users_object_reads_as_missing_exactly_like_a_missing_one(client, world):
    theirs = client.get(f"/user/hosts/{world.host}", headers=world.bob.headers)
    missing = client.get("/user/hosts/999999", headers=world.bob.headers)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["title"] == missing.json()["title"]


def test_a_logged_out_token_is_refused_on_every_path(client, world):
    client.post("/auth/logout", headers=world.alice.headers)
    assert client.get("/user/locations", headers=world.alice.headers).status_code == 401
    client.post("/auth/logout", headers=world.admin.headers)
    assert client.get("/admin/users", headers=world.admin.headers).status_code == 401


def test_a_non_admin_is_refused_on_admin_paths_before_the_body_is_looked_at(client, world):
    response = client.post("/admin/meters", headers=world.alice.headers, json={"nonsense": True})
    assert response.status_code == 403
    assert "admin" in response.json()["detail"]


# --- the seed's examples -------------------------------------------------------------------------------------


def test_the_seeds_management_examples_work_as_written(client):
    admin = register_admin(client, "admin")  # user 1, as in the seed's admin host example
    john = register(client, "johndoe")
    # POST /user/locations with the caller's own id.
    body = {"user": john.id, "street": "SunnyStreet", "number": "68", "city": "SilliconCity", "zip_code": "11-420"}
    created = client.post("/user/locations", headers=john.headers, json=body)
    assert created.status_code == 201
    assert created.json() == {
        "id": created.json()["id"],
        "street": "SunnyStreet",
        "number": "68",
        "city": "SilliconCity",
        "zip_code": "11-420",
        "coord_x": None,
        "coord_y": None,
        "user": john.id,
    }
    assert client.get("/user/locations", headers=john.headers).json() == [created.json()]
    # /meters lists the seeded models in the seed's shape.
    meters = client.get("/meters", headers=john.headers).json()
    assert {"id": meters[0]["id"], "name": "sdm630", "type": 2} in meters
    # Admin adds a meter model, a measurement (one the seed data holds already) and a register.
    sdm330 = client.post("/admin/meters", headers=admin.headers, json={"name": "sdm330", "type": 2})
    assert sdm330.status_code == 201 and sdm330.json() == {"id": sdm330.json()["id"], "name": "sdm330", "type": 2}
    measurement = client.post("/admin/measurements", headers=admin.headers, json={"measurement": "current", "type": 1})
    assert measurement.status_code in (200, 201) and measurement.json() == {"measurement": "current", "type": 1}
    register_body = {"address": 12, "measurement": "current", "unit": "A", "type": 1, "function_code": 3}
    added = client.post("/admin/registers", headers=admin.headers, json={**register_body, "meter": sdm330.json()["id"]})
    assert added.status_code == 201
    assert {key: added.json()[key] for key in ("address", "unit", "type", "function_code", "meter", "measurement")} == {
        **register_body,
        "meter": sdm330.json()["id"],
    }
    # Admin adds a host at the user's location; the user sees it and assigns measurements.
    sdm630 = meters[0]["id"]
    host_body = {
        "ip": "127.0.0.1",
        "port": 2282,
        "slave_address": 1,
        "description": "test",
        "user": john.id,
        "location": created.json()["id"],
        "meter": sdm630,
    }
    host = client.post("/admin/hosts", headers=admin.headers, json=host_body)
    assert host.status_code == 201 and host.json() == {"id": host.json()["id"], **host_body}
    assert client.get("/user/hosts", headers=john.headers).json() == [host.json()]
    host_id = host.json()["id"]
    assigned = client.post(
        f"/user/hosts/{host_id}/measurements",
        headers=john.headers,
        json={"measurements": ["active_energy_produced", "active_energy_consumed"]},
    )
    assert assigned.status_code == 201
    assert [(a["host"], a["measurement"]) for a in assigned.json()] == [
        (host_id, "active_energy_produced"),
        (host_id, "active_energy_consumed"),
    ]
    assert client.get(f"/user/hosts/{host_id}/measurements", headers=john.headers).json() == assigned.json()
    # The measurements a model has registers for, in the seed's shape.
    listed = client.get(f"/meters/{sdm630}/measurements", headers=john.headers).json()
    assert {"measurement": "active_power", "type": 1} in listed
    assert {"measurement": "active_energy_produced", "type": 2} in listed
    # Admin reads users, one user, every location, one location.
    users = client.get("/admin/users", headers=admin.headers).json()
    assert {"id": john.id, "username": "johndoe", "email": "johndoe@example.com", "is_admin": False} in users
    assert client.get(f"/admin/users/{john.id}", headers=admin.headers).json()["username"] == "johndoe"
    assert client.get(f"/admin/locations/{created.json()['id']}", headers=admin.headers).json() == created.json()


# --- assignments -------------------------------------------------------------------------------------------


def test_assigning_twice_is_harmless_and_answers_the_same_assignments(client, world):
    path = f"/user/hosts/{world.host}/measurements"
    first = client.post(path, headers=world.alice.headers, json={"measurements": ["voltage_ac", "frequency"]})
    again = client.post(path, headers=world.alice.headers, json={"measurements": ["voltage_ac", "frequency"]})
    assert first.status_code == 201 and again.status_code == 200
    assert first.json() == again.json()
    assert len(client.get(path, headers=world.alice.headers).json()) == 3


def test_a_measurement_without_a_register_on_the_hosts_meter_answers_400_naming_it_and_assigns_nothing(client, world):
    path = f"/user/hosts/{world.host}/measurements"
    before = snapshot()
    response = client.post(path, headers=world.alice.headers, json={"measurements": ["voltage_ac", "voltage_dc"]})
    assert response.status_code == 400
    assert "voltage_dc" in response.json()["detail"] and "voltage_ac" not in response.json()["detail"]
    assert snapshot() == before


@pytest.mark.parametrize("names", [["no_such_thing"], [], ["Active_Power"], ["a" * 65], ["x\n"], "active_power"])
def test_unknown_or_malformed_measurement_names_answer_400(client, world, names):
    before = snapshot()
    for method in ("POST", "DELETE"):
        response = call(
            client, method, f"/user/hosts/{world.host}/measurements", world.alice.headers, {"measurements": names}
        )
        assert response.status_code == 400, response.text
    assert snapshot() == before


def test_unassigning_a_measurement_that_is_not_assigned_is_no_error(client, world):
    response = delete(
        client, f"/user/hosts/{world.host}/measurements", world.alice.headers, {"measurements": ["frequency"]}
    )
    assert response.status_code == 204
    assert len(client.get(f"/user/hosts/{world.host}/measurements", headers=world.alice.headers).json()) == 1


# --- locations -----------------------------------------------------------------------------------------------


def test_a_location_for_another_users_id_answers_403_and_without_user_it_is_the_callers(client, world):
    other = client.post("/user/locations", headers=world.alice.headers, json=location_body(user=world.bob.id))
    assert other.status_code == 403 and other.json()["field"] == "user"
    own = client.post("/user/locations", headers=world.bob.headers, json=location_body())
    assert own.status_code == 201 and own.json()["user"] == world.bob.id


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"zip_code": "!!"}, "zip_code"),
        ({"zip_code": "11-420-12345"}, "zip_code"),
        ({"zip_code": "-11"}, "zip_code"),
        ({"coord_x": 180.5}, "coord_x"),
        ({"coord_y": -91}, "coord_y"),
        ({"street": ""}, "street"),
        ({"street": "   "}, "street"),
        ({"street": "a" * 201}, "street"),
        ({"city": "Gli\nwice"}, "city"),
        ({"number": "1" * 21}, "number"),
        ({"coord_x": "18.6"}, "coord_x"),
    ],
)
def test_invalid_location_fields_answer_400_and_store_nothing(client, world, fields, field):
    before = snapshot()
    created = client.post("/user/locations", headers=world.alice.headers, json=location_body(**fields))
    changed = client.patch(f"/user/locations/{world.location}", headers=world.alice.headers, json=fields)
    for response in (created, changed):
        assert response.status_code == 400, response.text
        assert field in response.text
    assert snapshot() == before


@pytest.mark.parametrize("zip_code", ["11-420", "SW1A 1AA", "1012 AB", "12345-6789", "75008", "K1A 0B1"])
def test_zip_codes_of_many_countries_are_accepted(client, world, zip_code):
    response = client.post("/user/locations", headers=world.alice.headers, json=location_body(zip_code=zip_code))
    assert response.status_code == 201 and response.json()["zip_code"] == zip_code


@pytest.mark.parametrize("field", ["id", "user", "is_admin", "is_staff", "owner"])
def test_patching_a_read_only_or_unknown_location_field_answers_400(client, world, field):
    before = snapshot()
    response = client.patch(
        f"/user/locations/{world.location}", headers=world.alice.headers, json={field: world.bob.id}
    )
    assert response.status_code == 400
    assert field in response.json()["detail"]
    assert snapshot() == before


def test_patch_changes_only_the_fields_sent_and_null_clears_a_coordinate(client, world):
    path = f"/user/locations/{world.location}"
    client.patch(path, headers=world.alice.headers, json={"coord_x": 18.68, "coord_y": 50.29})
    changed = client.patch(path, headers=world.alice.headers, json={"coord_x": None, "city": "Gliwice"}).json()
    assert changed["coord_x"] is None and changed["coord_y"] == 50.29
    assert changed["city"] == "Gliwice" and changed["street"] == "SunnyStreet"
    assert client.patch(path, headers=world.alice.headers, json={}).json() == changed


def test_a_location_with_hosts_cannot_be_deleted(client, world):
    response = client.delete(f"/user/locations/{world.location}", headers=world.alice.headers)
    assert response.status_code == 409
    assert str(world.host) in response.json()["detail"]


# --- hosts ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"ip": "999.1.1.1"}, "ip"),
        ({"ip": "not a host"}, "ip"),
        ({"ip": ""}, "ip"),
        ({"ip": "-bad-.example"}, "ip"),
        ({"ip": "a" * 64 + ".example"}, "ip"),
        ({"port": 0}, "port"),
        ({"port": 65536}, "port"),
        ({"slave_address": 248}, "slave_address"),
        ({"slave_address": -1}, "slave_address"),
        ({"description": "d" * 501}, "description"),
        ({"description": "bad\u0000"}, "description"),
        ({"meter": 99999}, "meter"),
        ({"location": 99999}, "location"),
        ({"user": 99999}, "user"),
        ({"user": 2147483648}, "user"),
        ({"is_admin": True}, "is_admin"),
        ({"id": 5}, "id"),
    ],
)
def test_invalid_host_fields_answer_400_and_store_nothing(client, world, fields, field):
    before = snapshot()
    body = a_host(world, port=3000, user=world.alice.id, location=world.location, meter=world.sdm630) | fields
    created = client.post("/admin/hosts", headers=world.admin.headers, json=body)
    changed = client.patch(f"/admin/hosts/{world.host}", headers=world.admin.headers, json=fields)
    for response in (created, changed):
        assert response.status_code == 400, response.text
        assert field in response.text
    assert snapshot() == before


@pytest.mark.parametrize(
    ("ip", "stored"),
    [("192.168.1.10", "192.168.1.10"), ("2001:DB8::0:1", "2001:db8::1"), ("Meter-1.Local", "meter-1.local")],
)
def test_host_addresses_may_be_ipv4_ipv6_or_names_and_are_stored_canonically(client, world, ip, stored):
    body = a_host(world, ip=ip, port=3000, user=world.alice.id, location=world.location, meter=world.sdm630)
    response = client.post("/admin/hosts", headers=world.admin.headers, json=body)
    assert response.status_code == 201 and response.json()["ip"] == stored


def test_a_second_host_with_the_same_ip_port_and_slave_address_answers_400(client, world):
    body = a_host(world, ip="127.0.0.1", user=world.bob.id, location=world.location, meter=world.sdm630)
    bob_location = client.post("/user/locations", headers=world.bob.headers, json=location_body()).json()["id"]
    response = client.post("/admin/hosts", headers=world.admin.headers, json={**body, "location": bob_location})
    assert response.status_code == 400 and response.json()["field"] == "slave_address"
    other_unit = client.post(
        "/admin/hosts", headers=world.admin.headers, json={**body, "location": bob_location, "slave_address": 2}
    )
    assert other_unit.status_code == 201


def test_a_hosts_location_must_belong_to_the_hosts_user(client, world):
    body = a_host(world, port=3000, user=world.bob.id, location=world.location, meter=world.sdm630)
    response = client.post("/admin/hosts", headers=world.admin.headers, json=body)
    assert response.status_code == 400 and response.json()["field"] == "location"
    moved = client.patch(f"/admin/hosts/{world.host}", headers=world.admin.headers, json={"user": world.bob.id})
    assert moved.status_code == 400 and moved.json()["field"] == "location"


def test_a_host_cannot_move_to_a_meter_model_without_registers_for_its_assigned_measurements(client, world):
    sdm330 = client.post("/admin/meters", headers=world.admin.headers, json={"name": "sdm330", "type": 2}).json()["id"]
    response = client.patch(f"/admin/hosts/{world.host}", headers=world.admin.headers, json={"meter": sdm330})
    assert response.status_code == 400 and "active_power" in response.json()["detail"]
    to_sdm120 = client.patch(f"/admin/hosts/{world.host}", headers=world.admin.headers, json={"meter": world.sdm120})
    assert to_sdm120.status_code == 200 and to_sdm120.json()["meter"] == world.sdm120


def test_deleting_a_host_deletes_its_assignments(client, world):
    assert client.delete(f"/admin/hosts/{world.host}", headers=world.admin.headers).status_code == 204
    assert snapshot()["silesia_host_measurements"] == []
    assert client.get(f"/user/hosts/{world.host}", headers=world.alice.headers).status_code == 404


# --- meter models, measurements, registers -----------------------------------------------------------------


def test_meter_names_are_unique_regardless_of_case(client, world):
    response = client.post("/admin/meters", headers=world.admin.headers, json={"name": "SDM630", "type": 2})
    assert response.status_code == 400 and response.json()["field"] == "name"
    renamed = client.patch(f"/admin/meters/{world.sdm120}", headers=world.admin.headers, json={"name": "Sdm630"})
    assert renamed.status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {"name": "sdm 330", "type": 2},
        {"name": "sdm330", "type": 3},
        {"name": "", "type": 1},
        {"name": "x" * 65, "type": 1},
        {"name": "sdm330"},
    ],
)
def test_invalid_meter_models_answer_400(client, world, body):
    before = snapshot()
    assert client.post("/admin/meters", headers=world.admin.headers, json=body).status_code == 400
    assert snapshot() == before


def test_a_meter_model_in_use_cannot_be_deleted_and_an_unused_one_goes_with_its_registers(client, world):
    in_use = client.delete(f"/admin/meters/{world.sdm630}", headers=world.admin.headers)
    assert in_use.status_code == 409 and str(world.host) in in_use.json()["detail"]
    assert client.delete(f"/admin/meters/{world.sdm120}", headers=world.admin.headers).status_code == 204
    assert client.get(f"/admin/registers?meter={world.sdm120}", headers=world.admin.headers).json() == []


def test_a_measurement_with_another_type_than_the_existing_one_answers_400(client, world):
    response = client.post(
        "/admin/measurements", headers=world.admin.headers, json={"measurement": "current", "type": 2}
    )
    assert response.status_code == 400 and response.json()["field"] == "measurement"


def test_a_measurement_that_a_register_describes_cannot_be_deleted(client, world):
    response = client.delete("/admin/measurements/active_power", headers=world.admin.headers)
    assert response.status_code == 409


def test_renaming_a_measurement_keeps_its_registers_and_assignments(client, world):
    renamed = client.patch(
        "/admin/measurements/active_power", headers=world.admin.headers, json={"measurement": "power_total"}
    )
    assert renamed.json() == {"measurement": "power_total", "type": 1}
    assigned = client.get(f"/user/hosts/{world.host}/measurements", headers=world.alice.headers).json()
    assert [a["measurement"] for a in assigned] == ["power_total"]
    taken = client.patch(
        "/admin/measurements/power_total", headers=world.admin.headers, json={"measurement": "current"}
    )
    assert taken.status_code == 400


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"address": 65535, "type": 3}, "address"),
        ({"address": 65535, "type": 2}, "address"),
        ({"address": 65536}, "address"),
        ({"address": -1}, "address"),
        ({"function_code": 1}, "function_code"),
        ({"function_code": 6}, "function_code"),
        ({"type": 0}, "type"),
        ({"type": 4}, "type"),
        ({"word_order": "middle"}, "word_order"),
        ({"scale": 0}, "scale"),
        ({"scale": 1e13}, "scale"),
        ({"unit": "u" * 17}, "unit"),
        ({"measurement": "no_such_measurement"}, "measurement"),
        ({"meter": 99999}, "meter"),
        ({"id": 3}, "id"),
    ],
)
def test_invalid_registers_answer_400_and_store_nothing(client, world, fields, field):
    before = snapshot()
    body = {
        "address": 100,
        "measurement": "voltage_dc",
        "unit": "V",
        "type": 3,
        "function_code": 4,
        "meter": world.sdm120,
    }
    created = client.post("/admin/registers", headers=world.admin.headers, json=body | fields)
    changed = client.patch(f"/admin/registers/{world.free_register}", headers=world.admin.headers, json=fields)
    for response in (created, changed):
        assert response.status_code == 400, response.text
        assert field in response.text
    assert snapshot() == before


def test_the_last_address_fits_a_one_register_type(client, world):
    body = {
        "address": 65535,
        "measurement": "voltage_dc",
        "unit": "V",
        "type": 1,
        "function_code": 3,
        "meter": world.sdm120,
    }
    response = client.post("/admin/registers", headers=world.admin.headers, json=body)
    assert response.status_code == 201
    assert response.json()["word_order"] == "big" and response.json()["scale"] == 1.0


def test_a_second_register_for_one_meter_and_measurement_answers_400(client, world):
    body = {
        "address": 500,
        "measurement": "frequency",
        "unit": "Hz",
        "type": 3,
        "function_code": 4,
        "meter": world.sdm120,
    }
    response = client.post("/admin/registers", headers=world.admin.headers, json=body)
    assert response.status_code == 400 and response.json()["field"] == "measurement"


def test_a_register_that_hosts_read_cannot_be_deleted_or_moved(client, world):
    registers = client.get(f"/admin/registers?meter={world.sdm630}", headers=world.admin.headers).json()
    power = next(r["id"] for r in registers if r["measurement"] == "active_power")
    assert client.delete(f"/admin/registers/{power}", headers=world.admin.headers).status_code == 409
    moved = client.patch(f"/admin/registers/{power}", headers=world.admin.headers, json={"measurement": "voltage_dc"})
    assert moved.status_code == 409
    relaid = client.patch(
        f"/admin/registers/{power}", headers=world.admin.headers, json={"word_order": "little", "scale": 0.001}
    )
    assert relaid.status_code == 200 and relaid.json()["word_order"] == "little"


# --- pagination ----------------------------------------------------------------------------------------------


def test_lists_answer_plain_arrays_and_page_with_limit_and_offset(client, world):
    everything = client.get("/admin/measurements", headers=world.admin.headers)
    total = len(everything.json())
    assert everything.headers["X-Total-Count"] == str(total) and "Link" not in everything.headers
    page = client.get("/admin/measurements?limit=5&offset=5", headers=world.admin.headers)
    assert page.json() == everything.json()[5:10]
    assert page.headers["X-Total-Count"] == str(total)
    assert 'rel="next"' in page.headers["Link"] and 'rel="prev"' in page.headers["Link"]
    last = client.get(f"/admin/measurements?limit=5&offset={total - 2}", headers=world.admin.headers)
    assert len(last.json()) == 2 and 'rel="next"' not in last.headers["Link"]
    beyond = client.get("/user/locations?offset=100", headers=world.alice.headers)
    assert beyond.json() == [] and beyond.headers["X-Total-Count"] == "2"


LIST_OPERATIONS = [
    op
    for op in OPERATIONS
    if op.method == "GET"
    and op.path(_PLACEHOLDER).split("/")[-1] in {"locations", "hosts", "meters", "measurements", "registers", "users"}
]
BAD_QUERIES = ["limit=0", "limit=1001", "offset=-1", "limit=abc", "offset=99999999999999999999", "limit=1.5"]


@pytest.mark.parametrize("operation", LIST_OPERATIONS, ids=str)
def test_bad_pagination_answers_400_on_every_list(client, world, operation):
    who = next(who for who, status in operation.expected.items() if status < 400 and who != ANONYMOUS)
    for query in BAD_QUERIES:
        response = client.get(f"{operation.path(world)}?{query}", headers=headers_of(world, who))
        assert response.status_code == 400, f"{query}: {response.text}"


@pytest.mark.parametrize("query", ["user=0", "user=abc", "user=99999999999999999999"])
def test_bad_list_filters_answer_400(client, world, query):
    for path in ("/admin/locations", "/admin/hosts"):
        assert client.get(f"{path}?{query}", headers=world.admin.headers).status_code == 400
    assert (
        client.get(f"/admin/registers?{query.replace('user', 'meter')}", headers=world.admin.headers).status_code == 400
    )


# --- bad path ids and names ----------------------------------------------------------------------------------

PATH_OPERATIONS = [operation for operation in OPERATIONS if "{id}" in str(operation) or "voltage_dc" in str(operation)]


BAD_PATH_SEGMENTS = ["{id}%0A", "99999999999999999999", "0", "-1", "abc", "1.5", "%00", "{id}%20", "{id}%0D%0A"]


@pytest.mark.parametrize("operation", PATH_OPERATIONS, ids=str)
def test_malformed_or_out_of_range_path_ids_answer_4xx_and_change_nothing(client, world, operation):
    who = next(who for who, status in operation.expected.items() if status < 400 and who != ANONYMOUS)
    segments = operation.path(world).split("/")
    # The id (or name) is the last segment, or the one before /measurements.
    index = len(segments) - 2 if segments[-1] == "measurements" else len(segments) - 1
    before = snapshot()
    for bad in BAD_PATH_SEGMENTS:
        path = "/".join([*segments[:index], bad.replace("{id}", segments[index]), *segments[index + 1 :]])
        body = operation.body(world) if operation.body else None
        response = call(client, operation.method, path, headers_of(world, who), body)
        assert 400 <= response.status_code < 500, f"{path}: {response.text}"
    assert snapshot() == before


@pytest.mark.parametrize("operation", [op for op in OPERATIONS if op.body], ids=str)
def test_malformed_bodies_answer_400_and_change_nothing(client, world, operation):
    who = next(who for who, status in operation.expected.items() if status < 400 and who != ANONYMOUS)
    before = snapshot()
    for body in ([], "text", None, 5, {"unexpected": 1}, {"id": 1}):
        response = call(client, operation.method, operation.path(world), headers_of(world, who), body)
        assert response.status_code == 400, f"{body!r}: {response.text}"
    headers = {**headers_of(world, who), "Content-Type": "application/json"}
    response = client.request(operation.method, operation.path(world), headers=headers, content=b"{not json")
    assert response.status_code == 400
    assert snapshot() == before
