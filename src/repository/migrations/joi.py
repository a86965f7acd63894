"""Schema and reference data of the JOI Energy area (readings, hourly energy rollups, plans, accounts)."""

from __future__ import annotations

import json

import peewee

LONDON = "Europe/London"


def _initial_schema(migrator, db: peewee.Database) -> None:
    # Clustered by primary key on SQLite (a PostgreSQL primary key is its own index already).
    clustered = isinstance(db, peewee.SqliteDatabase)

    class Base(peewee.Model):
        class Meta:
            database = db

    class MeterReading(Base):
        meter_id = peewee.CharField(max_length=128)
        time = peewee.BigIntegerField()
        reading = peewee.DoubleField()

        class Meta:
            table_name = "meter_readings"
            primary_key = peewee.CompositeKey("meter_id", "time")
            without_rowid = clustered

    class EnergyHour(Base):
        meter_id = peewee.CharField(max_length=128)
        hour_start = peewee.BigIntegerField()
        kwh = peewee.DoubleField()

        class Meta:
            table_name = "energy_hours"
            primary_key = peewee.CompositeKey("meter_id", "hour_start")
            without_rowid = clustered

    class PricePlan(Base):
        plan_id = peewee.CharField(primary_key=True, max_length=64)
        supplier = peewee.CharField(max_length=200)
        unit_rate = peewee.DoubleField()
        standing_charge_per_day = peewee.DoubleField(default=0.0)
        time_zone = peewee.CharField(max_length=64, default="UTC")
        day_multipliers = peewee.TextField()

        class Meta:
            table_name = "price_plans"

    class Account(Base):
        meter_id = peewee.CharField(primary_key=True, max_length=128)
        owner = peewee.CharField(max_length=200)
        plan = peewee.ForeignKeyField(PricePlan, column_name="plan_id", on_delete="RESTRICT")

        class Meta:
            table_name = "accounts"

    class Setting(Base):
        key = peewee.CharField(primary_key=True, max_length=100)
        value = peewee.TextField()

        class Meta:
            table_name = "settings"

    db.create_tables([MeterReading, EnergyHour, PricePlan, Account, Setting])

    flat = json.dumps([1.0] * 7)
    PricePlan.insert_many(
        [
            dict(
                plan_id="price-plan-0",
                supplier="Dr Evil's Dark Energy",
                unit_rate=10.0,
                day_multipliers=flat,
                time_zone=LONDON,
            ),
            dict(
                plan_id="price-plan-1",
                supplier="The Green Eco",
                unit_rate=2.0,
                day_multipliers=flat,
                time_zone=LONDON,
            ),
            dict(
                plan_id="price-plan-2",
                supplier="Power for Everyone",
                unit_rate=1.0,
                day_multipliers=flat,
                time_zone=LONDON,
            ),
        ]
    ).execute()
    Account.insert_many(
        [
            dict(meter_id="smart-meter-0", owner="Sarah", plan="price-plan-0"),
            dict(meter_id="smart-meter-1", owner="Peter", plan="price-plan-1"),
            dict(meter_id="smart-meter-2", owner="Charlie", plan="price-plan-0"),
            dict(meter_id="smart-meter-3", owner="Andrea", plan="price-plan-2"),
            dict(meter_id="smart-meter-4", owner="Alex", plan="price-plan-1"),
        ]
    ).execute()


def _integer_meter_keys(migrator, db: peewee.Database) -> None:
    """Samples keyed by a small integer per meter instead of the meter's text id: SQLite inserts a
    1,000-sample batch in half the time (integer keys compare on a fast path and make smaller rows)."""
    clustered = isinstance(db, peewee.SqliteDatabase)

    class Base(peewee.Model):
        class Meta:
            database = db

    class Meter(Base):
        meter_key = peewee.AutoField()
        meter_id = peewee.CharField(max_length=128, unique=True)

        class Meta:
            table_name = "meters"

    class MeterSample(Base):
        # No foreign key: SQLite would look the meter up again for every sample inserted.
        meter_key = peewee.IntegerField()
        time = peewee.BigIntegerField()
        reading = peewee.DoubleField()

        class Meta:
            table_name = "meter_samples"
            primary_key = peewee.CompositeKey("meter_key", "time")
            without_rowid = clustered

    db.create_tables([Meter, MeterSample])
    db.execute_sql("INSERT INTO meters (meter_id) SELECT DISTINCT meter_id FROM meter_readings ORDER BY meter_id")
    db.execute_sql(
        'INSERT INTO meter_samples (meter_key, "time", reading)'
        ' SELECT meters.meter_key, r."time", r.reading'
        " FROM meter_readings AS r JOIN meters ON meters.meter_id = r.meter_id"
    )
    db.execute_sql("DROP TABLE meter_readings")


def _rollups_by_kind_with_quarters(migrator, db: peewee.Database) -> None:
    """Hourly energy keyed by the kind of meter as well as its id, so a JOI meter (kW samples) and a P1
    meter (DSMR registers) that share an id never mix; each hour also keeps the kWh of its first 15, 30 and
    45 minutes, so a local midnight at a quarter hour (Asia/Kolkata, Asia/Kathmandu, Australia/Adelaide)
    splits it exactly. Existing rows are kept (ids with kW samples as JOI, the others as P1); the recorded
    rules are cleared, so both kinds are rebuilt from their samples and readings at start, which fills the
    quarters and separates ids that both kinds used."""
    clustered = isinstance(db, peewee.SqliteDatabase)

    class Base(peewee.Model):
        class Meta:
            database = db

    class EnergyRollup(Base):
        meter_kind = peewee.CharField(max_length=8)  # "joi" or "p1"
        meter_id = peewee.CharField(max_length=128)
        hour_start = peewee.BigIntegerField()
        kwh = peewee.DoubleField()
        first_15 = peewee.DoubleField(default=0.0)
        first_30 = peewee.DoubleField(default=0.0)
        first_45 = peewee.DoubleField(default=0.0)

        class Meta:
            table_name = "energy_rollups"
            primary_key = peewee.CompositeKey("meter_kind", "meter_id", "hour_start")
            without_rowid = clustered

    db.create_tables([EnergyRollup])
    db.execute_sql(
        "INSERT INTO energy_rollups (meter_kind, meter_id, hour_start, kwh, first_15, first_30, first_45)"
        " SELECT CASE WHEN EXISTS (SELECT 1 FROM meters JOIN meter_samples"
        " ON meter_samples.meter_key = meters.meter_key WHERE meters.meter_id = energy_hours.meter_id)"
        " THEN 'joi' ELSE 'p1' END, meter_id, hour_start, kwh, 0, 0, 0 FROM energy_hours"
    )
    db.execute_sql("DROP TABLE energy_hours")
    db.execute_sql("DELETE FROM settings WHERE key IN ('rollup_max_gap_seconds', 'dsmr_statistics_rule')")


def _hour_pages(migrator, db: peewee.Database) -> None:
    """SQLite only: each meter's kW samples of a past UTC hour packed into one row, which readings/read of a
    day fetches 24 of instead of 1,440 sample rows (repository/sample_pages.py). Empty at first: the queue
    worker pages existing samples within a minute, and until then reads take the rows."""
    if not isinstance(db, peewee.SqliteDatabase):
        return
    db.execute_sql(
        "CREATE TABLE sample_pages (meter_key INTEGER NOT NULL, hour_start INTEGER NOT NULL,"
        " times BLOB NOT NULL, readings BLOB NOT NULL, PRIMARY KEY (meter_key, hour_start))"
    )
    db.execute_sql("CREATE TABLE sample_page_marks (meter_key INTEGER PRIMARY KEY, paged_until INTEGER NOT NULL)")


MIGRATIONS = [
    ("joi_0001_readings_rollups_plans_accounts", _initial_schema),
    ("joi_0002_integer_meter_keys", _integer_meter_keys),
    ("joi_0003_rollups_by_kind_with_quarters", _rollups_by_kind_with_quarters),
    ("joi_0004_hour_pages", _hour_pages),
]
