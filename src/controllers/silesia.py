"""SilesiaSolar management: a user's own locations, hosts and host measurements; meter models; and the
admin side (every object, meter models, measurements, registers, users).

User paths see only the caller's objects (another user's answers 404); admin paths are refused to
non-admins by the security function (403) before anything here runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from flask import request

from controllers.accounts import current_user
from controllers.responses import json_response
from domain import silesia as rules
from domain.accounts import User
from domain.errors import Forbidden, NotFound
from domain.silesia import Assignment, Host, Location, Measurement, Meter, Register
from repository import silesia as repo
from repository import users as users_repo

# --- JSON, in the seed's shapes --------------------------------------------------------------------------------


def location_json(location: Location) -> dict:
    return {
        "id": location.id,
        "street": location.street,
        "number": location.number,
        "city": location.city,
        "zip_code": location.zip_code,
        "coord_x": location.coord_x,
        "coord_y": location.coord_y,
        "user": location.user,
    }


def host_json(host: Host) -> dict:
    return {
        "id": host.id,
        "ip": host.ip,
        "port": host.port,
        "slave_address": host.slave_address,
        "description": host.description,
        "user": host.user,
        "location": host.location,
        "meter": host.meter,
    }


def meter_json(meter: Meter) -> dict:
    return {"id": meter.id, "name": meter.name, "type": meter.type}


def measurement_json(measurement: Measurement) -> dict:
    return {"measurement": measurement.name, "type": measurement.type}


def register_json(register: Register) -> dict:
    return {
        "id": register.id,
        "address": register.address,
        "unit": register.unit,
        "type": register.data_type,
        "function_code": register.function_code,
        "meter": register.meter,
        "measurement": register.measurement,
        "word_order": register.word_order,
        "scale": register.scale,
    }


def assignment_json(assignment: Assignment) -> dict:
    return {"id": assignment.id, "host": assignment.host, "measurement": assignment.measurement}


def user_json(user: User) -> dict:
    return {"id": user.id, "username": user.username, "email": user.email, "is_admin": user.is_admin}


def listing(items: Sequence, total: int, to_json: Callable, limit: int | None, offset: int):
    """The seed's plain array; `X-Total-Count` says how many there are in all and, when paginated, `Link`
    points at the next and previous pages."""
    headers = {"X-Total-Count": str(total)}
    if limit is not None:
        links = []
        if offset + limit < total:
            links.append(f'<{_page_url(limit, offset + limit)}>; rel="next"')
        if offset > 0:
            links.append(f'<{_page_url(limit, max(0, offset - limit))}>; rel="prev"')
        if links:
            headers["Link"] = ", ".join(links)
    return json_response([to_json(item) for item in items], headers=headers)


def _page_url(limit: int, offset: int) -> str:
    return f"{request.base_url}?limit={limit}&offset={offset}"


def _page(limit: int | None, offset: int) -> repo.Page:
    return limit, offset


def _user_filter() -> int | None:
    """The `?user=` filter. Read here, not as an argument: Connexion hands a handler argument named `user`
    the authenticated user's id, which would silently replace the filter. The spec has validated it."""
    value = request.args.get("user")
    return int(value) if value is not None else None


def _sliced(items: list, limit: int | None, offset: int) -> list:
    return items[offset : None if limit is None else offset + limit]


# --- the caller's own objects ----------------------------------------------------------------------------------


def list_my_locations(limit: int | None = None, offset: int = 0):
    found, total = repo.locations(current_user().id, _page(limit, offset))
    return listing(found, total, location_json, limit, offset)


def create_my_location(body: dict):
    caller = current_user()
    owner = body.get("user", caller.id)
    if owner != caller.id:
        raise Forbidden(f"user must be your own id ({caller.id}); admins add locations for others.", field="user")
    return json_response(location_json(repo.create_location(rules.new_location(owner, body))), 201)


def get_my_location(location_id: int):
    return json_response(location_json(repo.location(location_id, current_user().id)))


def update_my_location(location_id: int, body: dict):
    changes = rules.location_changes(body)
    return json_response(location_json(repo.update_location(location_id, current_user().id, changes)))


def delete_my_location(location_id: int):
    repo.delete_location(location_id, current_user().id)
    return "", 204


def list_my_hosts(limit: int | None = None, offset: int = 0):
    found, total = repo.hosts(current_user().id, _page(limit, offset))
    return listing(found, total, host_json, limit, offset)


def get_my_host(host_id: int):
    return json_response(host_json(repo.host(host_id, current_user().id)))


def list_my_host_measurements(host_id: int, limit: int | None = None, offset: int = 0):
    return _host_measurements(host_id, current_user().id, limit, offset)


def assign_my_host_measurements(host_id: int, body: dict):
    return _assign(host_id, current_user().id, body)


def unassign_my_host_measurements(host_id: int, body: dict):
    repo.unassign(host_id, current_user().id, rules.measurement_names(body))
    return "", 204


def _host_measurements(host_id: int, owner: int | None, limit: int | None, offset: int):
    repo.host(host_id, owner)
    found = repo.assignments(host_id)
    return listing(_sliced(found, limit, offset), len(found), assignment_json, limit, offset)


def _assign(host_id: int, owner: int | None, body: dict):
    assigned, any_new = repo.assign(host_id, owner, rules.measurement_names(body))
    return json_response([assignment_json(assignment) for assignment in assigned], 201 if any_new else 200)


# --- meter models (every user) -----------------------------------------------------------------------------


def list_meters(limit: int | None = None, offset: int = 0):
    found, total = repo.meters(_page(limit, offset))
    return listing(found, total, meter_json, limit, offset)


def list_meter_measurements(meter_id: int, limit: int | None = None, offset: int = 0):
    found, total = repo.meter_measurements(meter_id, _page(limit, offset))
    return listing(found, total, measurement_json, limit, offset)


# --- admin: locations and hosts of every user ------------------------------------------------------------------


def admin_list_locations(limit: int | None = None, offset: int = 0):
    found, total = repo.locations(_user_filter(), _page(limit, offset))
    return listing(found, total, location_json, limit, offset)


def admin_create_location(body: dict):
    return json_response(location_json(repo.create_location(rules.new_location(body["user"], body))), 201)


def admin_get_location(location_id: int):
    return json_response(location_json(repo.location(location_id, None)))


def admin_update_location(location_id: int, body: dict):
    return json_response(location_json(repo.update_location(location_id, None, rules.location_changes(body))))


def admin_delete_location(location_id: int):
    repo.delete_location(location_id, None)
    return "", 204


def admin_list_hosts(limit: int | None = None, offset: int = 0):
    found, total = repo.hosts(_user_filter(), _page(limit, offset))
    return listing(found, total, host_json, limit, offset)


def admin_create_host(body: dict):
    return json_response(host_json(repo.create_host(rules.new_host(body))), 201)


def admin_get_host(host_id: int):
    return json_response(host_json(repo.host(host_id, None)))


def admin_update_host(host_id: int, body: dict):
    return json_response(host_json(repo.update_host(host_id, rules.host_changes(body))))


def admin_delete_host(host_id: int):
    repo.delete_host(host_id)
    return "", 204


def admin_list_host_measurements(host_id: int, limit: int | None = None, offset: int = 0):
    return _host_measurements(host_id, None, limit, offset)


def admin_assign_host_measurements(host_id: int, body: dict):
    return _assign(host_id, None, body)


def admin_unassign_host_measurements(host_id: int, body: dict):
    repo.unassign(host_id, None, rules.measurement_names(body))
    return "", 204


# --- admin: meter models, measurements, registers --------------------------------------------------------------


def admin_list_meters(limit: int | None = None, offset: int = 0):
    return list_meters(limit, offset)


def admin_create_meter(body: dict):
    return json_response(meter_json(repo.create_meter(rules.new_meter(body))), 201)


def admin_get_meter(meter_id: int):
    return json_response(meter_json(repo.meter(meter_id)))


def admin_update_meter(meter_id: int, body: dict):
    return json_response(meter_json(repo.update_meter(meter_id, rules.meter_changes(body))))


def admin_delete_meter(meter_id: int):
    repo.delete_meter(meter_id)
    return "", 204


def admin_list_measurements(limit: int | None = None, offset: int = 0):
    found, total = repo.measurements(_page(limit, offset))
    return listing(found, total, measurement_json, limit, offset)


def admin_create_measurement(body: dict):
    measurement, created = repo.create_measurement(rules.new_measurement(body))
    return json_response(measurement_json(measurement), 201 if created else 200)


def admin_get_measurement(measurement: str):
    return json_response(measurement_json(repo.measurement(rules.measurement_name(measurement))))


def admin_update_measurement(measurement: str, body: dict):
    name = rules.measurement_name(measurement)
    return json_response(measurement_json(repo.update_measurement(name, rules.measurement_changes(body))))


def admin_delete_measurement(measurement: str):
    repo.delete_measurement(rules.measurement_name(measurement))
    return "", 204


def admin_list_registers(limit: int | None = None, offset: int = 0, meter: int | None = None):
    found, total = repo.registers(_page(limit, offset), meter)
    return listing(found, total, register_json, limit, offset)


def admin_create_register(body: dict):
    return json_response(register_json(repo.create_register(rules.new_register(body))), 201)


def admin_get_register(register_id: int):
    return json_response(register_json(repo.register(register_id)))


def admin_update_register(register_id: int, body: dict):
    return json_response(register_json(repo.update_register(register_id, body)))


def admin_delete_register(register_id: int):
    repo.delete_register(register_id)
    return "", 204


# --- admin: users --------------------------------------------------------------------------------------------


def admin_list_users(limit: int | None = None, offset: int = 0):
    found, total = users_repo.users(limit, offset)
    return listing(found, total, user_json, limit, offset)


def admin_get_user(user_id: int):
    found = users_repo.user(user_id)
    if found is None:
        raise NotFound(f"There is no user {user_id}.")
    return json_response(user_json(found))
