"""Schema of the DSMR-reader area: readings, hour and day statistics, supplier prices, meters, counters."""

from __future__ import annotations

import datetime

import peewee

# Meter positions and power in kWh/kW with 3 decimals, as DSMR-reader (exact NUMERIC on PostgreSQL).
REGISTER = {"max_digits": 12, "decimal_places": 3}
MONEY = {"max_digits": 12, "decimal_places": 2}
PRICE = {"max_digits": 11, "decimal_places": 6}


def _initial_schema(migrator, db: peewee.Database) -> None:
    class Base(peewee.Model):
        class Meta:
            database = db

    class DsmrReading(Base):
        id = peewee.BigAutoField()
        meter = peewee.CharField(max_length=128)
        timestamp = peewee.BigIntegerField()  # epoch seconds, UTC
        electricity_delivered_1 = peewee.DecimalField(**REGISTER)
        electricity_returned_1 = peewee.DecimalField(**REGISTER)
        electricity_delivered_2 = peewee.DecimalField(**REGISTER)
        electricity_returned_2 = peewee.DecimalField(**REGISTER)
        electricity_currently_delivered = peewee.DecimalField(**REGISTER)
        electricity_currently_returned = peewee.DecimalField(**REGISTER)
        phase_currently_delivered_l1 = peewee.DecimalField(null=True, **REGISTER)
        phase_currently_delivered_l2 = peewee.DecimalField(null=True, **REGISTER)
        phase_currently_delivered_l3 = peewee.DecimalField(null=True, **REGISTER)
        phase_currently_returned_l1 = peewee.DecimalField(null=True, **REGISTER)
        phase_currently_returned_l2 = peewee.DecimalField(null=True, **REGISTER)
        phase_currently_returned_l3 = peewee.DecimalField(null=True, **REGISTER)
        extra_device_timestamp = peewee.BigIntegerField(null=True)
        extra_device_delivered = peewee.DecimalField(null=True, **REGISTER)

        class Meta:
            table_name = "dsmr_readings"
            indexes = (
                # One reading per meter and instant; also the per-meter list, seek and count index.
                (("meter", "timestamp"), True),
                # The whole installation's list in (timestamp, id) order.
                (("timestamp", "id"), False),
                # The last gas capture at or before an hour boundary.
                (("meter", "extra_device_timestamp"), False),
            )

    class DsmrHourStatistic(Base):
        id = peewee.BigAutoField()
        meter = peewee.CharField(max_length=128)  # "" = the installation (every meter added up)
        hour_start = peewee.BigIntegerField()
        electricity1 = peewee.DecimalField(**REGISTER)
        electricity2 = peewee.DecimalField(**REGISTER)
        electricity1_returned = peewee.DecimalField(**REGISTER)
        electricity2_returned = peewee.DecimalField(**REGISTER)
        gas = peewee.DecimalField(null=True, **REGISTER)

        class Meta:
            table_name = "dsmr_hour_statistics"
            indexes = ((("meter", "hour_start"), True),)

    class DsmrDayStatistic(Base):
        id = peewee.BigAutoField()
        meter = peewee.CharField(max_length=128)  # "" = the installation
        day = peewee.DateField()
        electricity1 = peewee.DecimalField(**REGISTER)
        electricity2 = peewee.DecimalField(**REGISTER)
        electricity1_returned = peewee.DecimalField(**REGISTER)
        electricity2_returned = peewee.DecimalField(**REGISTER)
        gas = peewee.DecimalField(null=True, **REGISTER)
        electricity1_cost = peewee.DecimalField(**MONEY)
        electricity2_cost = peewee.DecimalField(**MONEY)
        gas_cost = peewee.DecimalField(**MONEY)
        fixed_cost = peewee.DecimalField(**MONEY)
        total_cost = peewee.DecimalField(**MONEY)

        class Meta:
            table_name = "dsmr_day_statistics"
            indexes = ((("meter", "day"), True),)

    class DsmrEnergySupplierPrice(Base):
        id = peewee.BigAutoField()
        start = peewee.DateField()
        end = peewee.DateField(null=True)
        description = peewee.CharField(max_length=255)
        electricity_delivered_1_price = peewee.DecimalField(**PRICE)
        electricity_delivered_2_price = peewee.DecimalField(**PRICE)
        electricity_returned_1_price = peewee.DecimalField(**PRICE)
        electricity_returned_2_price = peewee.DecimalField(**PRICE)
        gas_price = peewee.DecimalField(**PRICE)
        fixed_daily_cost = peewee.DecimalField(**PRICE)

        class Meta:
            table_name = "dsmr_energy_supplier_prices"
            indexes = ((("start", "id"), False),)

    class DsmrMeter(Base):
        """Every meter that sent a reading, with DSMR-reader's meter statistics of its latest telegram."""

        id = peewee.BigAutoField()
        meter = peewee.CharField(max_length=128, unique=True)
        timestamp = peewee.BigIntegerField(null=True)
        dsmr_version = peewee.CharField(max_length=16, null=True)
        electricity_tariff = peewee.IntegerField(null=True)
        power_failure_count = peewee.IntegerField(null=True)
        long_power_failure_count = peewee.IntegerField(null=True)
        voltage_sag_count_l1 = peewee.IntegerField(null=True)
        voltage_sag_count_l2 = peewee.IntegerField(null=True)
        voltage_sag_count_l3 = peewee.IntegerField(null=True)
        voltage_swell_count_l1 = peewee.IntegerField(null=True)
        voltage_swell_count_l2 = peewee.IntegerField(null=True)
        voltage_swell_count_l3 = peewee.IntegerField(null=True)
        latest_telegram = peewee.TextField(null=True)
        accepted_telegrams = peewee.BigIntegerField(default=0)
        duplicate_telegrams = peewee.BigIntegerField(default=0)

        class Meta:
            table_name = "dsmr_meters"

    class DsmrCounter(Base):
        name = peewee.CharField(primary_key=True, max_length=64)
        value = peewee.BigIntegerField(default=0)

        class Meta:
            table_name = "dsmr_counters"

    db.create_tables(
        [DsmrReading, DsmrHourStatistic, DsmrDayStatistic, DsmrEnergySupplierPrice, DsmrMeter, DsmrCounter]
    )
    # "ingest" is the row every DSMR write locks first (PostgreSQL), so statistics are recomputed one at a time.
    DsmrCounter.insert_many([{"name": "ingest", "value": 0}, {"name": "rejected_telegrams", "value": 0}]).execute()


def _reading_counts(migrator, db: peewee.Database) -> None:
    """Each meter's number of readings, kept at ingest, so an unfiltered list counts without a scan."""
    from playhouse.migrate import migrate

    migrate(migrator.add_column("dsmr_meters", "reading_count", peewee.BigIntegerField(default=0)))
    count_readings(db)


def count_readings(db: peewee.Database) -> None:
    db.execute_sql(
        "UPDATE dsmr_meters SET reading_count ="
        " (SELECT COUNT(*) FROM dsmr_readings WHERE dsmr_readings.meter = dsmr_meters.meter)"
    )


LEGACY_INSTALLATION = "default"  # the installation of DSMR_API_KEY and of the key stored before installations


def _installations(migrator, db: peewee.Database) -> None:
    """One installation (one electricity meter with its gas meter) per API key.

    Before, one key read and wrote every meter. Each meter becomes an installation of its own: the one that
    sent the newest telegram (the logger; the one meter-statistics showed) is named "default" and takes the
    stored key (DSMR_API_KEY names it too); every other meter (e.g. a test reading posted as meter `default`)
    gets a key-less installation named after it, whose data can be read with a key made for it or deleted.
    The installation totals rows (meter "") go: an installation has one meter. Contracts, which priced every
    meter, are copied to each installation; the rejected-telegram count goes to the default one. Readings
    get a reset flag: the interval ending at the reading saw an electricity register decrease.
    """
    from playhouse.migrate import migrate

    class Base(peewee.Model):
        class Meta:
            database = db

    class DsmrInstallation(Base):
        id = peewee.BigAutoField()
        name = peewee.CharField(max_length=128, unique=True)
        meter = peewee.CharField(max_length=128, unique=True)  # what its rows are stored under
        equipment_id = peewee.CharField(max_length=128, null=True, unique=True)  # learnt from its telegrams
        key_hash = peewee.CharField(max_length=100, null=True, unique=True)
        key_created_at = peewee.BigIntegerField(null=True)
        created_at = peewee.BigIntegerField()

        class Meta:
            table_name = "dsmr_installations"

    db.create_tables([DsmrInstallation])
    migrate(
        migrator.add_column("dsmr_readings", "reset", peewee.BooleanField(default=False)),
        migrator.add_column("dsmr_meters", "rejected_telegrams", peewee.BigIntegerField(default=0)),
        migrator.add_column("dsmr_energy_supplier_prices", "meter", peewee.CharField(max_length=128, default="")),
        migrator.add_index("dsmr_readings", ("meter", "reset", "timestamp"), False),
        migrator.add_index("dsmr_energy_supplier_prices", ("meter", "start", "id"), False),
    )
    db.execute_sql("DELETE FROM dsmr_hour_statistics WHERE meter = ''")
    db.execute_sql("DELETE FROM dsmr_day_statistics WHERE meter = ''")
    registers = [f"electricity_{way}_{tariff}" for way in ("delivered", "returned") for tariff in (1, 2)]
    dropped = " OR ".join(f"{name} < LAG({name}) OVER (PARTITION BY meter ORDER BY timestamp)" for name in registers)
    db.execute_sql(
        "UPDATE dsmr_readings SET reset = TRUE WHERE id IN"
        f" (SELECT id FROM (SELECT id, ({dropped}) AS dropped FROM dsmr_readings) AS flagged WHERE dropped)"
    )
    now = int(datetime.datetime.now(datetime.UTC).timestamp())
    meters = db.execute_sql(
        "SELECT meter, latest_telegram IS NOT NULL FROM dsmr_meters ORDER BY timestamp IS NULL, timestamp DESC, id DESC"
    ).fetchall()
    key_hash = db.execute_sql("SELECT value FROM settings WHERE key = 'dsmr_api_key_hash'").fetchone()
    if not meters and key_hash is not None:
        db.execute_sql(
            "INSERT INTO dsmr_meters (meter, accepted_telegrams, duplicate_telegrams, reading_count,"
            " rejected_telegrams) VALUES ('default', 0, 0, 0, 0)"
        )
        meters = [("default", False)]
    names: set[str] = set()
    for position, (meter, from_telegrams) in enumerate(meters):
        name = LEGACY_INSTALLATION if position == 0 else meter
        while name in names or (position > 0 and name == LEGACY_INSTALLATION):
            name = f"{name}-2"[:128]
        names.add(name)
        DsmrInstallation.insert(
            name=name,
            meter=meter,
            # A meter named `default` got readings whose telegrams named none.
            equipment_id=meter if from_telegrams and meter != LEGACY_INSTALLATION else None,
            key_hash=key_hash[0] if position == 0 and key_hash is not None else None,
            key_created_at=now if position == 0 and key_hash is not None else None,
            created_at=now,
        ).execute()
    if meters:
        primary = meters[0][0]
        db.execute_sql(
            "UPDATE dsmr_meters SET rejected_telegrams ="
            f" (SELECT value FROM dsmr_counters WHERE name = 'rejected_telegrams') WHERE meter = {db.param}",
            (primary,),
        )
        columns = ", ".join(CONTRACT_COLUMNS)
        for meter, _ in meters[1:]:
            db.execute_sql(
                f"INSERT INTO dsmr_energy_supplier_prices (meter, {columns})"
                f" SELECT {db.param}, {columns} FROM dsmr_energy_supplier_prices WHERE meter = ''",
                (meter,),
            )
        db.execute_sql(f"UPDATE dsmr_energy_supplier_prices SET meter = {db.param} WHERE meter = ''", (primary,))
    db.execute_sql("DELETE FROM settings WHERE key = 'dsmr_api_key_hash'")


CONTRACT_COLUMNS = (
    "start",
    '"end"',
    "description",
    "electricity_delivered_1_price",
    "electricity_delivered_2_price",
    "electricity_returned_1_price",
    "electricity_returned_2_price",
    "gas_price",
    "fixed_daily_cost",
)


def _gaps(migrator, db: peewee.Database) -> None:
    """Outages: consecutive readings further apart than the maximum gap book nothing and are kept here, with
    the rise they hold per register. The stored statistics are rebuilt at start (their recorded settings
    are missing), so the gaps of existing readings are found then."""

    class Base(peewee.Model):
        class Meta:
            database = db

    class DsmrGap(Base):
        id = peewee.BigAutoField()
        meter = peewee.CharField(max_length=128)
        kind = peewee.CharField(max_length=16)  # "electricity" or "gas" (the gas meter's own captures)
        start = peewee.BigIntegerField()
        end = peewee.BigIntegerField()
        electricity1 = peewee.DecimalField(null=True, **REGISTER)
        electricity2 = peewee.DecimalField(null=True, **REGISTER)
        electricity1_returned = peewee.DecimalField(null=True, **REGISTER)
        electricity2_returned = peewee.DecimalField(null=True, **REGISTER)
        gas = peewee.DecimalField(null=True, **REGISTER)

        class Meta:
            table_name = "dsmr_gaps"
            indexes = ((("meter", "kind", "start"), True),)

    db.create_tables([DsmrGap])


def _gas_capture_index(migrator, db: peewee.Database) -> None:
    """Gas captures looked up per telegram (the one before and after a capture, and the latest telegram
    carrying one) read an index in (capture time, telegram time) order: with (meter, capture time) alone,
    finding a capture's latest telegram scanned the meter's readings backwards, more with every day."""
    from playhouse.migrate import migrate

    migrate(migrator.add_index("dsmr_readings", ("meter", "extra_device_timestamp", "timestamp"), False))


MIGRATIONS = [
    ("dsmr_0001_readings_statistics_prices_meters", _initial_schema),
    ("dsmr_0002_meter_reading_counts", _reading_counts),
    ("dsmr_0003_installations", _installations),
    ("dsmr_0004_gaps", _gaps),
    ("dsmr_0005_gas_capture_index", _gas_capture_index),
]
