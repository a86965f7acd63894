"""Closed mode (REQUIRE_AUTH=1): the `deviceKey` security scheme, who the caller of a JOI, OMS or mailing
operation is, the checks those operations make, and the admin endpoints for device keys and the meters linked
to users.

The spec declares the closed-mode security on each JOI, OMS and mailing operation it closes
(`x-require-auth: true`); in the default open mode closed_mode.py drops those requirements from the spec, so
nobody is asked for anything and `caller()` is OPEN. With REQUIRE_AUTH=1 Connexion's security middleware has
authenticated the caller (401 otherwise) before an operation runs; the operation then asks may_… for the
meter or device named.
"""

from __future__ import annotations

import time

import anyio.to_thread
from connexion.context import context
from connexion.lifecycle import ConnexionRequest

from config import Config
from controllers.context import settings
from controllers.responses import json_response
from domain.access import (
    OPEN,
    Caller,
    DeviceGrant,
    OmsDeviceId,
    check_bindings,
    check_presented_key,
    issue_device_key,
    may_export_oms,
    may_operate_mailings,
    may_read_meter,
    may_write_meter,
    may_write_oms_device,
    oms_device_text,
    valid_key_name,
    valid_meter_ids,
    valid_oms_devices,
    write_refusal,
)
from domain.accounts import presented_token
from domain.errors import Forbidden, NotFound, Unauthorized
from repository import access as access_repo
from repository import db
from repository import users as users_repo

DEVICE_CHALLENGE = 'ApiKey realm="joi", header="X-API-Key", Token realm="joi"'
TOKEN_CHALLENGE = 'Token realm="joi"'
DEVICE_WRITE_PATHS = ("/readings/store", "/commit")


def challenge(path: str) -> str:
    """What a 401 asks for (WWW-Authenticate): device writes take a device key or a token, the rest a token."""
    return DEVICE_CHALLENGE if path in DEVICE_WRITE_PATHS else TOKEN_CHALLENGE


# --- security ---------------------------------------------------------------------------------------------------


async def device_key_info(api_key: str, request: ConnexionRequest) -> dict:
    """The `deviceKey` scheme: `X-API-Key: joi_<64 hex>`."""
    key = _checked(api_key, request)
    grant = await anyio.to_thread.run_sync(_grant, key)
    if grant is None:
        raise Unauthorized(
            "Invalid device key: it is unknown or was revoked.",
            headers={"WWW-Authenticate": challenge(request.scope.get("path", ""))},
        )
    return {"sub": f"device-key:{grant.key_id}", "grant": grant}


def _checked(api_key: str, request: ConnexionRequest) -> str:
    try:
        return check_presented_key(api_key)
    except Unauthorized as error:
        error.headers = {"WWW-Authenticate": challenge(request.scope.get("path", ""))}
        raise


def _grant(key: str) -> DeviceGrant | None:
    db.connect()
    try:
        return access_repo.grant_for_key(key)
    finally:
        db.close()


# --- who is asking, and may they --------------------------------------------------------------------------------


def caller_of(token_info: dict | None, config: Config) -> Caller:
    """The caller from what the security middleware found (token_info), OPEN while REQUIRE_AUTH is off."""
    if not config.require_auth:
        return OPEN
    if not token_info:
        raise Unauthorized("This operation needs credentials (REQUIRE_AUTH is on)")
    return Caller(user=token_info.get("user"), grant=token_info.get("grant"))


def caller_in_scope(scope: dict, config: Config) -> Caller:
    """For the ASGI fast path, which runs outside Flask: the security middleware's result is in the scope."""
    token_info = scope.get("extensions", {}).get("connexion_context", {}).get("token_info")
    return caller_of(token_info, config)


def caller() -> Caller:
    return caller_of(context.get("token_info") if context else None, settings())


def require_meter_write(who: Caller, meter_id: str) -> None:
    if not may_write_meter(who, meter_id):
        raise Forbidden(write_refusal(who, f"meter {meter_id!r}"))


def require_oms_write(who: Caller, device: OmsDeviceId) -> None:
    if not may_write_oms_device(who, device):
        raise Forbidden(write_refusal(who, f"OMS device {oms_device_text(device)}"))


def require_meter_read(meter_id: str, who: Caller | None = None) -> None:
    """Another user's meter (or one linked to nobody) answers as a meter that does not exist would.
    `who` is the caller when known (the ASGI fast path runs outside Connexion's request context)."""
    who = who or caller()
    if who.open_mode or who.is_admin:
        return
    linked = access_repo.meter_ids_linked_to(who.user.id) if who.user is not None else []
    if not may_read_meter(who, meter_id, linked):
        raise NotFound(f"meter {meter_id!r} has no readings")


def require_oms_export() -> None:
    who = caller()
    if not may_export_oms(who):
        raise Forbidden("the OMS export and device list are for admins (billing staff log in with an admin account)")


def require_mailings_operator() -> None:
    if not may_operate_mailings(caller()):
        raise Forbidden("the clients and mailings are for admins (operators log in with an admin account)")


def may_scrape_as_admin(authorization: str | None) -> bool:
    """Closed mode without METRICS_TOKEN: the metrics page is for an admin's token only."""
    try:
        _, token = presented_token(authorization or "")
    except Unauthorized:
        return False
    found = users_repo.authenticate(token, int(time.time()))
    return isinstance(found, users_repo.Authenticated) and found.user.is_admin


# --- admin: device keys -----------------------------------------------------------------------------------------


def _key_json(summary: access_repo.DeviceKeySummary) -> dict:
    grant = summary.grant
    return {
        "id": grant.key_id,
        "name": grant.name,
        "key_prefix": f"joi_{summary.key_lookup}",
        "meter_ids": sorted(grant.meter_ids),
        "oms_devices": [oms_device_text(device) for device in sorted(grant.oms_devices)],
        "any_oms_device": grant.any_oms_device,
        "created_at": summary.created_at,
    }


def list_device_keys():
    return json_response([_key_json(summary) for summary in access_repo.device_keys()])


def create_device_key(body: dict):
    name = valid_key_name(body.get("name", ""))
    meter_ids = valid_meter_ids(body.get("meter_ids", []))
    oms_devices = valid_oms_devices(body.get("oms_devices", []))
    any_oms_device = bool(body.get("any_oms_device", False))
    check_bindings(meter_ids, oms_devices, any_oms_device)
    issued = issue_device_key()
    key_id = access_repo.create_device_key(issued, name, meter_ids, oms_devices, any_oms_device, int(time.time()))
    return json_response({**_key_json(access_repo.device_key(key_id)), "key": issued.key}, 201)


def revoke_device_key(key_id: int):
    if not access_repo.revoke_device_key(key_id):
        raise NotFound(f"there is no device key {key_id}")
    return "", 204


# --- admin: meters linked to users ------------------------------------------------------------------------------


def _existing_user(user_id: int):
    found = users_repo.user(user_id)
    if found is None:
        raise NotFound(f"there is no user {user_id}")
    return found


def _linked_json(user_id: int) -> dict:
    return {"user_id": user_id, "meter_ids": access_repo.meter_ids_linked_to(user_id)}


def list_user_meters(user_id: int):
    _existing_user(user_id)
    return json_response(_linked_json(user_id))


def link_user_meters(user_id: int, body: dict):
    _existing_user(user_id)
    access_repo.link_meters(user_id, valid_meter_ids(body["meter_ids"]))
    return json_response(_linked_json(user_id))


def unlink_user_meter(user_id: int, meter_id: str):
    _existing_user(user_id)
    if not access_repo.unlink_meters(user_id, valid_meter_ids([meter_id], "meter_id")):
        raise NotFound(f"meter {meter_id!r} is not linked to user {user_id}")
    return "", 204
