"""Schema of the Modbus polling area: the series a host measures, their samples, and each host's poll record.

Hosts are the SilesiaSolar hosts (silesia_hosts): deleting a host deletes its series, samples and poll
record, so a host id the database hands out again never inherits another host's data. A series is one
(host, measurement, unit): samples then carry only a small integer key, the read time in epoch
milliseconds and the value.
"""

from __future__ import annotations

import peewee


def _initial_schema(migrator, db: peewee.Database) -> None:
    clustered = isinstance(db, peewee.SqliteDatabase)

    class Base(peewee.Model):
        class Meta:
            database = db

    class Host(Base):  # the SilesiaSolar table, only as the target of the references below
        class Meta:
            table_name = "silesia_hosts"

    class ModbusSeries(Base):
        host = peewee.ForeignKeyField(Host, column_name="host_id", on_delete="CASCADE")
        measurement = peewee.CharField(max_length=100)
        unit = peewee.CharField(max_length=32)
        measurement_type = peewee.SmallIntegerField()  # 1 = instantaneous, 2 = cumulative counter

        class Meta:
            table_name = "modbus_series"
            indexes = ((("host", "measurement", "unit"), True),)

    class ModbusSample(Base):
        series = peewee.ForeignKeyField(ModbusSeries, column_name="series_id", on_delete="CASCADE")
        time_ms = peewee.BigIntegerField()  # when it was read, epoch milliseconds (UTC)
        value = peewee.DoubleField()

        class Meta:
            table_name = "modbus_samples"
            primary_key = peewee.CompositeKey("series", "time_ms")
            without_rowid = clustered

    class ModbusPollStatus(Base):
        host = peewee.ForeignKeyField(Host, column_name="host_id", primary_key=True, on_delete="CASCADE")
        last_poll_at_ms = peewee.BigIntegerField(null=True)
        last_success_at_ms = peewee.BigIntegerField(null=True)
        last_error = peewee.TextField(null=True)
        last_error_at_ms = peewee.BigIntegerField(null=True)
        consecutive_failures = peewee.IntegerField(default=0)
        last_outcome = peewee.CharField(max_length=8, null=True)
        measurements_read = peewee.IntegerField(default=0)
        measurements_failed = peewee.IntegerField(default=0)
        # A round claims a host until it has stored its outcome (or the claim expires): rounds never overlap
        # for one host, and a host is not polled again before due_at_ms (once per interval across workers).
        claimed_until_ms = peewee.BigIntegerField(null=True)
        claim_token = peewee.CharField(max_length=32, null=True)
        due_at_ms = peewee.BigIntegerField(null=True)

        class Meta:
            table_name = "modbus_poll_status"

    db.create_tables([ModbusSeries, ModbusSample, ModbusPollStatus])


def _failing_since(migrator, db: peewee.Database) -> None:
    """When the current run of failed polls began (the dashboard's "failing since")."""
    from playhouse.migrate import migrate

    migrate(migrator.add_column("modbus_poll_status", "failing_since_ms", peewee.BigIntegerField(null=True)))


MIGRATIONS = [
    ("modbus_0001_series_samples_poll_status", _initial_schema),
    ("modbus_0002_poll_status_failing_since", _failing_since),
]
