"""Closed mode's tables: device keys (digests only) with what each may write, and the meters linked to users.

`meter_ids_linked_to(user_id)` and `user_may_read_meter(user, meter_id)` are what every page and endpoint
asks before it shows a meter to a customer.
"""

from __future__ import annotations

from dataclasses import dataclass

import peewee

from domain.access import DeviceGrant, IssuedDeviceKey, OmsDeviceId, key_lookup, key_matches
from domain.accounts import User
from repository.db import BaseModel, write_transaction
from repository.users import UserRow

# Three bound parameters a row at most, below the smallest SQLite variable limit (999).
ROWS_PER_INSERT = 300


class DeviceKeyRow(BaseModel):
    name = peewee.CharField(max_length=100)
    key_lookup = peewee.CharField(max_length=8)
    digest = peewee.CharField(max_length=64, unique=True)
    any_oms_device = peewee.BooleanField(default=False)
    created_at = peewee.BigIntegerField()

    class Meta:
        table_name = "device_keys"


class DeviceKeyMeterRow(BaseModel):
    key = peewee.ForeignKeyField(DeviceKeyRow, column_name="key_id", on_delete="CASCADE")
    meter_id = peewee.CharField(max_length=128)

    class Meta:
        table_name = "device_key_meters"
        primary_key = peewee.CompositeKey("key", "meter_id")


class DeviceKeyOmsDeviceRow(BaseModel):
    key = peewee.ForeignKeyField(DeviceKeyRow, column_name="key_id", on_delete="CASCADE")
    manufacturer = peewee.IntegerField()
    identnr = peewee.IntegerField()

    class Meta:
        table_name = "device_key_oms_devices"
        primary_key = peewee.CompositeKey("key", "manufacturer", "identnr")


class UserMeterRow(BaseModel):
    user = peewee.ForeignKeyField(UserRow, column_name="user_id", on_delete="CASCADE")
    meter_id = peewee.CharField(max_length=128)

    class Meta:
        table_name = "user_meters"
        primary_key = peewee.CompositeKey("user", "meter_id")


@dataclass(frozen=True)
class DeviceKeySummary:
    """A key as listed: never the key nor its digest."""

    grant: DeviceGrant
    key_lookup: str
    created_at: int


# --- device keys --------------------------------------------------------------------------------------------------


def create_device_key(
    issued: IssuedDeviceKey,
    name: str,
    meter_ids: list[str],
    oms_devices: list[OmsDeviceId],
    any_oms_device: bool,
    now: int,
) -> int:
    with write_transaction():
        key_id = DeviceKeyRow.insert(
            name=name, key_lookup=issued.lookup, digest=issued.digest, any_oms_device=any_oms_device, created_at=now
        ).execute()
        for rows in peewee.chunked([(key_id, meter_id) for meter_id in meter_ids], ROWS_PER_INSERT):
            DeviceKeyMeterRow.insert_many(rows, fields=["key", "meter_id"]).execute()
        for rows in peewee.chunked([(key_id, *device) for device in oms_devices], ROWS_PER_INSERT):
            DeviceKeyOmsDeviceRow.insert_many(rows, fields=["key", "manufacturer", "identnr"]).execute()
    return key_id


def grant_for_key(key: str) -> DeviceGrant | None:
    """What the presented key may write; None for a key that is unknown or was revoked."""
    candidates = (
        DeviceKeyRow.select(DeviceKeyRow.id, DeviceKeyRow.digest)
        .where(DeviceKeyRow.key_lookup == key_lookup(key))
        .tuples()
    )
    for key_id, digest in candidates:
        if key_matches(key, digest):
            return _grants([key_id])[0].grant
    return None


def device_keys() -> list[DeviceKeySummary]:
    return _grants([row[0] for row in DeviceKeyRow.select(DeviceKeyRow.id).order_by(DeviceKeyRow.id).tuples()])


def device_key(key_id: int) -> DeviceKeySummary | None:
    found = _grants([key_id])
    return found[0] if found else None


def revoke_device_key(key_id: int) -> bool:
    with write_transaction():
        return DeviceKeyRow.delete().where(DeviceKeyRow.id == key_id).execute() > 0


def _grants(key_ids: list[int]) -> list[DeviceKeySummary]:
    if not key_ids:
        return []
    rows = list(
        DeviceKeyRow.select(
            DeviceKeyRow.id,
            DeviceKeyRow.name,
            DeviceKeyRow.any_oms_device,
            DeviceKeyRow.key_lookup,
            DeviceKeyRow.created_at,
        )
        .where(DeviceKeyRow.id.in_(key_ids))
        .order_by(DeviceKeyRow.id)
        .tuples()
    )
    meters: dict[int, set[str]] = {}
    for key_id, meter_id in (
        DeviceKeyMeterRow.select(DeviceKeyMeterRow.key, DeviceKeyMeterRow.meter_id)
        .where(DeviceKeyMeterRow.key.in_(key_ids))
        .tuples()
    ):
        meters.setdefault(key_id, set()).add(meter_id)
    devices: dict[int, set[OmsDeviceId]] = {}
    for key_id, manufacturer, identnr in (
        DeviceKeyOmsDeviceRow.select(
            DeviceKeyOmsDeviceRow.key, DeviceKeyOmsDeviceRow.manufacturer, DeviceKeyOmsDeviceRow.identnr
        )
        .where(DeviceKeyOmsDeviceRow.key.in_(key_ids))
        .tuples()
    ):
        devices.setdefault(key_id, set()).add((manufacturer, identnr))
    return [
        DeviceKeySummary(
            DeviceGrant(
                key_id, name, frozenset(meters.get(key_id, ())), frozenset(devices.get(key_id, ())), bool(any_device)
            ),
            lookup,
            created_at,
        )
        for key_id, name, any_device, lookup, created_at in rows
    ]


# --- meters linked to users -----------------------------------------------------------------------------------------


def meter_ids_linked_to(user_id: int) -> list[str]:
    query = (
        UserMeterRow.select(UserMeterRow.meter_id).where(UserMeterRow.user == user_id).order_by(UserMeterRow.meter_id)
    )
    return [row[0] for row in query.tuples()]


def user_may_read_meter(user: User, meter_id: str) -> bool:
    """Admins read every meter; anyone else the meters an admin linked to them."""
    if user.is_admin:
        return True
    return UserMeterRow.select().where((UserMeterRow.user == user.id) & (UserMeterRow.meter_id == meter_id)).exists()


def link_meters(user_id: int, meter_ids: list[str]) -> int:
    """Link the meters to the user (those linked already stay as they are). Returns how many were new."""
    if not meter_ids:
        return 0
    with write_transaction():
        before = UserMeterRow.select().where(UserMeterRow.user == user_id).count()
        for rows in peewee.chunked([(user_id, meter_id) for meter_id in meter_ids], ROWS_PER_INSERT):
            UserMeterRow.insert_many(rows, fields=["user", "meter_id"]).on_conflict_ignore().execute()
        return UserMeterRow.select().where(UserMeterRow.user == user_id).count() - before


def unlink_meters(user_id: int, meter_ids: list[str]) -> int:
    """Returns how many of them were linked."""
    if not meter_ids:
        return 0
    with write_transaction():
        return (
            UserMeterRow.delete().where((UserMeterRow.user == user_id) & UserMeterRow.meter_id.in_(meter_ids)).execute()
        )
