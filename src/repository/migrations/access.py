"""Schema of closed mode: device keys (digests only) with the meters and OMS devices each may write, and the
JOI meters linked to each user."""

from __future__ import annotations

import peewee


def _initial_schema(migrator, db: peewee.Database) -> None:
    class Base(peewee.Model):
        class Meta:
            database = db

    class User(Base):
        class Meta:
            table_name = "users"

    class DeviceKey(Base):
        name = peewee.CharField(max_length=100)
        key_lookup = peewee.CharField(max_length=8, index=True)  # the 8 hex characters after joi_
        digest = peewee.CharField(max_length=64, unique=True)  # SHA-256 of the whole key, hex
        any_oms_device = peewee.BooleanField(default=False)
        created_at = peewee.BigIntegerField()  # epoch seconds

        class Meta:
            table_name = "device_keys"

    class DeviceKeyMeter(Base):
        key = peewee.ForeignKeyField(DeviceKey, column_name="key_id", on_delete="CASCADE")
        meter_id = peewee.CharField(max_length=128)

        class Meta:
            table_name = "device_key_meters"
            primary_key = peewee.CompositeKey("key", "meter_id")

    class DeviceKeyOmsDevice(Base):
        key = peewee.ForeignKeyField(DeviceKey, column_name="key_id", on_delete="CASCADE")
        manufacturer = peewee.IntegerField()
        identnr = peewee.IntegerField()

        class Meta:
            table_name = "device_key_oms_devices"
            primary_key = peewee.CompositeKey("key", "manufacturer", "identnr")

    class UserMeter(Base):
        user = peewee.ForeignKeyField(User, column_name="user_id", on_delete="CASCADE")
        meter_id = peewee.CharField(max_length=128)

        class Meta:
            table_name = "user_meters"
            primary_key = peewee.CompositeKey("user", "meter_id")

    db.create_tables([DeviceKey, DeviceKeyMeter, DeviceKeyOmsDevice, UserMeter])


MIGRATIONS = [
    ("access_0001_device_keys_user_meters", _initial_schema),
]
