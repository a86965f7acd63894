"""Schema and reference data of the SilesiaSolar area: meter models, measurements, registers, and the
locations, Modbus hosts and measurement assignments of each user."""

from __future__ import annotations

import peewee

V, A, W, VA, VAR, HZ, KWH, KVARH, NO_UNIT = "V", "A", "W", "VA", "VAr", "Hz", "kWh", "kVArh", ""
INSTANTANEOUS, CUMULATIVE = 1, 2
FLOAT32, INPUT_REGISTERS = 3, 4

# (name, measurement type). voltage_dc is for inverters; no Eastron meter has it.
MEASUREMENTS = [
    ("voltage_ac", INSTANTANEOUS),
    ("voltage_dc", INSTANTANEOUS),
    ("current", INSTANTANEOUS),
    ("active_power", INSTANTANEOUS),
    ("apparent_power", INSTANTANEOUS),
    ("reactive_power", INSTANTANEOUS),
    ("power_factor", INSTANTANEOUS),
    ("frequency", INSTANTANEOUS),
    ("voltage_ac_average", INSTANTANEOUS),
    ("current_sum", INSTANTANEOUS),
    *[
        (f"{quantity}_l{phase}", INSTANTANEOUS)
        for quantity in ("voltage_ac", "current", "active_power", "apparent_power", "reactive_power", "power_factor")
        for phase in (1, 2, 3)
    ],
    ("active_energy_consumed", CUMULATIVE),
    ("active_energy_produced", CUMULATIVE),
    ("active_energy_total", CUMULATIVE),
    ("reactive_energy_consumed", CUMULATIVE),
    ("reactive_energy_produced", CUMULATIVE),
    *[(f"active_energy_consumed_l{phase}", CUMULATIVE) for phase in (1, 2, 3)],
]


def _phases(quantity: str, first_address: int, unit: str) -> list[tuple[str, int, str]]:
    return [(f"{quantity}_l{phase}", first_address + 2 * (phase - 1), unit) for phase in (1, 2, 3)]


# Eastron's published input-register maps: function code 4, float32, high word first; the manual's
# register 3xxxx is wire address 3xxxx - 30001. (measurement, address, unit)
SDM630 = [
    ("voltage_ac", 0, V),  # phase 1
    ("current", 6, A),  # phase 1
    ("active_power", 52, W),  # total system power; negative while exporting
    ("apparent_power", 56, VA),
    ("reactive_power", 60, VAR),
    ("power_factor", 62, NO_UNIT),
    ("frequency", 70, HZ),
    ("voltage_ac_average", 42, V),
    ("current_sum", 48, A),
    *_phases("voltage_ac", 0, V),
    *_phases("current", 6, A),
    *_phases("active_power", 12, W),
    *_phases("apparent_power", 18, VA),
    *_phases("reactive_power", 24, VAR),
    *_phases("power_factor", 30, NO_UNIT),
    ("active_energy_consumed", 72, KWH),  # total import
    ("active_energy_produced", 74, KWH),  # total export
    ("reactive_energy_consumed", 76, KVARH),
    ("reactive_energy_produced", 78, KVARH),
    ("active_energy_total", 342, KWH),  # import + export, not the net
    *[(f"active_energy_consumed_l{phase}", 344 + 2 * phase, KWH) for phase in (1, 2, 3)],
]
SDM120 = [
    ("voltage_ac", 0, V),
    ("current", 6, A),
    ("active_power", 12, W),
    ("apparent_power", 18, VA),
    ("reactive_power", 24, VAR),
    ("power_factor", 30, NO_UNIT),
    ("frequency", 70, HZ),
    ("active_energy_consumed", 72, KWH),
    ("active_energy_produced", 74, KWH),
    ("active_energy_total", 342, KWH),
]
BIDIRECTIONAL = 2
METERS = {"sdm630": SDM630, "sdm120": SDM120}


def _models(db: peewee.Database):
    class Base(peewee.Model):
        class Meta:
            database = db

    class User(Base):
        class Meta:
            table_name = "users"

    class Meter(Base):
        name = peewee.CharField(max_length=64)
        name_key = peewee.CharField(max_length=64, unique=True)  # case-folded name
        type = peewee.SmallIntegerField()

        class Meta:
            table_name = "silesia_meters"

    class Measurement(Base):
        name = peewee.CharField(max_length=64, unique=True)
        type = peewee.SmallIntegerField()

        class Meta:
            table_name = "silesia_measurements"

    class Register(Base):
        meter = peewee.ForeignKeyField(Meter, column_name="meter_id", on_delete="CASCADE")
        measurement = peewee.ForeignKeyField(Measurement, column_name="measurement_id", on_delete="RESTRICT")
        address = peewee.IntegerField()
        data_type = peewee.SmallIntegerField()
        function_code = peewee.SmallIntegerField()
        word_order = peewee.CharField(max_length=6, default="big")
        scale = peewee.DoubleField(default=1.0)
        unit = peewee.CharField(max_length=16, default="")

        class Meta:
            table_name = "silesia_registers"
            indexes = ((("meter", "measurement"), True),)

    class Location(Base):
        user = peewee.ForeignKeyField(User, column_name="user_id", on_delete="CASCADE", index=True)
        street = peewee.CharField(max_length=200)
        number = peewee.CharField(max_length=20)
        city = peewee.CharField(max_length=100)
        zip_code = peewee.CharField(max_length=10)
        coord_x = peewee.DoubleField(null=True)
        coord_y = peewee.DoubleField(null=True)

        class Meta:
            table_name = "silesia_locations"

    class Host(Base):
        user = peewee.ForeignKeyField(User, column_name="user_id", on_delete="CASCADE", index=True)
        location = peewee.ForeignKeyField(Location, column_name="location_id", on_delete="RESTRICT", index=True)
        meter = peewee.ForeignKeyField(Meter, column_name="meter_id", on_delete="RESTRICT", index=True)
        ip = peewee.CharField(max_length=253)
        port = peewee.IntegerField()
        slave_address = peewee.SmallIntegerField()
        description = peewee.CharField(max_length=500, default="")

        class Meta:
            table_name = "silesia_hosts"
            indexes = ((("ip", "port", "slave_address"), True),)

    class HostMeasurement(Base):
        host = peewee.ForeignKeyField(Host, column_name="host_id", on_delete="CASCADE")
        measurement = peewee.ForeignKeyField(Measurement, column_name="measurement_id", on_delete="RESTRICT")

        class Meta:
            table_name = "silesia_host_measurements"
            indexes = ((("host", "measurement"), True),)

    return Meter, Measurement, Register, Location, Host, HostMeasurement


def _initial_schema(migrator, db: peewee.Database) -> None:
    Meter, Measurement, Register, Location, Host, HostMeasurement = _models(db)
    db.create_tables([Meter, Measurement, Register, Location, Host, HostMeasurement])
    db.execute_sql("CREATE INDEX silesia_registers_measurement ON silesia_registers (measurement_id)")
    db.execute_sql("CREATE INDEX silesia_host_measurements_measurement ON silesia_host_measurements (measurement_id)")


def _eastron_models(migrator, db: peewee.Database) -> None:
    """The seed models, inserted only where missing: running it again changes nothing."""
    Meter, Measurement, Register, *_ = _models(db)
    Measurement.insert_many(MEASUREMENTS, fields=[Measurement.name, Measurement.type]).on_conflict_ignore().execute()
    measurement_ids = dict(Measurement.select(Measurement.name, Measurement.id).tuples())
    for name, registers in METERS.items():
        Meter.insert(name=name, name_key=name, type=BIDIRECTIONAL).on_conflict_ignore().execute()
        meter_id = Meter.get(Meter.name_key == name).id
        rows = [
            dict(
                meter=meter_id,
                measurement=measurement_ids[measurement],
                address=address,
                data_type=FLOAT32,
                function_code=INPUT_REGISTERS,
                word_order="big",
                scale=1.0,
                unit=unit,
            )
            for measurement, address, unit in registers
        ]
        Register.insert_many(rows).on_conflict_ignore().execute()


MIGRATIONS = [
    ("silesia_0001_meters_registers_locations_hosts", _initial_schema),
    ("silesia_0002_eastron_sdm630_sdm120", _eastron_models),
]
