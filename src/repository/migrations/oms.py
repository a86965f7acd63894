"""Schema of the OMS collector/exporter area: devices, the messages they sent, and every record of each message."""

from __future__ import annotations

import peewee


def _initial_schema(migrator, db: peewee.Database) -> None:
    sqlite = isinstance(db, peewee.SqliteDatabase)

    class Base(peewee.Model):
        class Meta:
            database = db

    class OmsDevice(Base):
        # The wireless M-Bus address: identnr is unique only per manufacturer, version and type.
        identnr = peewee.IntegerField()
        manufacturer = peewee.IntegerField()
        version = peewee.IntegerField()
        device_type = peewee.IntegerField()
        # Maintained at write time, so the export is one ordered scan of this table.
        latest_message_id = peewee.IntegerField(null=True)
        latest_message_time = peewee.DateTimeField(null=True)

        class Meta:
            table_name = "oms_devices"
            indexes = ((("identnr", "manufacturer", "version", "device_type"), True),)

    class OmsMessage(Base):
        device = peewee.ForeignKeyField(OmsDevice, column_name="device_id", on_delete="RESTRICT")
        message_time = peewee.DateTimeField()
        received_at = peewee.DateTimeField()
        fingerprint = peewee.CharField(max_length=64, unique=True)
        status = peewee.IntegerField()
        accessnr = peewee.IntegerField()

        class Meta:
            table_name = "oms_messages"

    class OmsRecord(Base):
        message = peewee.ForeignKeyField(OmsMessage, column_name="message_id", on_delete="CASCADE")
        position = peewee.IntegerField()
        dimension = peewee.CharField(max_length=128)
        storagenr = peewee.IntegerField()
        tariff = peewee.IntegerField()
        subunit = peewee.IntegerField()
        # Exact decimal text: SQLite's DECIMAL affinity would round through a double.
        number_value = peewee.TextField(null=True)
        time_value = peewee.DateTimeField(null=True)
        utc_offset_microseconds = peewee.BigIntegerField(null=True)  # the offset the device wrote; ISO allows µs

        class Meta:
            table_name = "oms_records"
            primary_key = peewee.CompositeKey("message", "position")
            without_rowid = sqlite
            constraints = [
                peewee.SQL(
                    "CHECK ((number_value IS NULL) <> (time_value IS NULL)"
                    " AND (time_value IS NULL) = (utc_offset_microseconds IS NULL))"
                )
            ]

    db.create_tables([OmsDevice, OmsMessage, OmsRecord])
    # Newest first, first stored among equal times: the message a device's export row comes from in a window.
    db.execute_sql("CREATE INDEX oms_messages_device_newest ON oms_messages (device_id, message_time DESC, id)")
    if not sqlite:  # SQLite cannot add a constraint to an existing table, and the two tables point at each other
        db.execute_sql(
            "ALTER TABLE oms_devices ADD CONSTRAINT oms_devices_latest_message_fk "
            "FOREIGN KEY (latest_message_id) REFERENCES oms_messages (id)"
        )


MIGRATIONS = [
    ("oms_0001_devices_messages_records", _initial_schema),
]
