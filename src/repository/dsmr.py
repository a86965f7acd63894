"""DSMR-reader readings and the statistics kept current beside them, supplier prices, meters and installations.

An installation (one electricity meter with its gas meter) owns one API key (only its hash is stored) and
one meter: every row of its readings, statistics, contracts and meter statistics is stored under that meter.

Every write runs in one transaction that first takes the DSMR ingest lock (SQLite: the write lock itself;
PostgreSQL: a row lock), so statistics are never updated by two writes at once. A new reading splits one
interval between stored readings: its booking (`domain.statistics.book_electricity`, `book_gas`) is taken
back and the two new ones are added to the hour rows they touch, their days (repriced), the gaps and the
meter's hourly kWh (kind P1) in `energy_rollups` for the JOI price plans. Deleting readings, a changed zone or
gap rule and `verify-statistics --fix` rebuild a meter from all its readings instead (`recompute`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import NamedTuple
from zoneinfo import ZoneInfo

import peewee

from domain.dsmr import (
    DEFAULT_INSTALLATION,
    METER_COUNTERS,
    DsmrReading,
    Installation,
    PageRequest,
    TelegramFacts,
    TimeWindow,
    check_telegram_meter,
    day_totals,
    repriced,
)
from domain.errors import Conflict, InvalidInput, NotFound
from domain.statistics import (
    DEFAULT_MAX_GAP_SECONDS,
    PRICE_FIELDS,
    Booked,
    DayStatistic,
    EnergyPrices,
    Gap,
    HourStatistic,
    IntervalBooking,
    MeterPosition,
    add_booking,
    add_quarters,
    book_electricity,
    book_gas,
    book_in_order,
    day_bounds,
    hour_statistic,
    is_reset,
    zero_day,
)
from domain.usage import HourRollup, hour_rollups
from repository import readings as readings_repo
from repository import settings
from repository.db import (
    BaseModel,
    database,
    grouped_write,
    is_sqlite,
    pending_until_grouped_commit,
    write_transaction,
)

ZERO = Decimal(0)
REGISTER = {"max_digits": 12, "decimal_places": 3}
MONEY = {"max_digits": 12, "decimal_places": 2}
PRICE = {"max_digits": 11, "decimal_places": 6}


class ReadingRow(BaseModel):
    id = peewee.BigAutoField()
    meter = peewee.CharField(max_length=128)
    timestamp = peewee.BigIntegerField()
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
    reset = peewee.BooleanField(default=False)  # a register decreased since the meter's previous reading

    class Meta:
        table_name = "dsmr_readings"


class HourRow(BaseModel):
    id = peewee.BigAutoField()
    meter = peewee.CharField(max_length=128)
    hour_start = peewee.BigIntegerField()
    electricity1 = peewee.DecimalField(**REGISTER)
    electricity2 = peewee.DecimalField(**REGISTER)
    electricity1_returned = peewee.DecimalField(**REGISTER)
    electricity2_returned = peewee.DecimalField(**REGISTER)
    gas = peewee.DecimalField(null=True, **REGISTER)

    class Meta:
        table_name = "dsmr_hour_statistics"


class DayRow(BaseModel):
    id = peewee.BigAutoField()
    meter = peewee.CharField(max_length=128)
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


class PriceRow(BaseModel):
    id = peewee.BigAutoField()
    meter = peewee.CharField(max_length=128)
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


class MeterRow(BaseModel):
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
    reading_count = peewee.BigIntegerField(default=0)
    rejected_telegrams = peewee.BigIntegerField(default=0)

    class Meta:
        table_name = "dsmr_meters"


class InstallationRow(BaseModel):
    id = peewee.BigAutoField()
    name = peewee.CharField(max_length=128, unique=True)
    meter = peewee.CharField(max_length=128, unique=True)
    equipment_id = peewee.CharField(max_length=128, null=True, unique=True)
    key_hash = peewee.CharField(max_length=100, null=True, unique=True)
    key_created_at = peewee.BigIntegerField(null=True)
    created_at = peewee.BigIntegerField()

    class Meta:
        table_name = "dsmr_installations"


class GapRow(BaseModel):
    id = peewee.BigAutoField()
    meter = peewee.CharField(max_length=128)
    kind = peewee.CharField(max_length=16)  # "electricity" or "gas"
    start = peewee.BigIntegerField()
    end = peewee.BigIntegerField()
    electricity1 = peewee.DecimalField(null=True, **REGISTER)
    electricity2 = peewee.DecimalField(null=True, **REGISTER)
    electricity1_returned = peewee.DecimalField(null=True, **REGISTER)
    electricity2_returned = peewee.DecimalField(null=True, **REGISTER)
    gas = peewee.DecimalField(null=True, **REGISTER)

    class Meta:
        table_name = "dsmr_gaps"


class CounterRow(BaseModel):
    name = peewee.CharField(primary_key=True, max_length=64)
    value = peewee.BigIntegerField(default=0)

    class Meta:
        table_name = "dsmr_counters"


class Identified(NamedTuple):
    """A stored domain value and its row id (DSMR-reader answers the id with every row)."""

    id: int
    value: object


@dataclass(frozen=True)
class Stored:
    reading: Identified
    created: bool  # False: the meter already had a reading at that instant, which was kept


@dataclass(frozen=True)
class MeterStatistics:
    id: int | None
    meter: str | None
    timestamp: datetime | None
    dsmr_version: str | None
    electricity_tariff: int | None
    counters: dict[str, int | None]
    rejected_telegrams: int
    latest_telegram: str | None
    accepted_telegrams: int
    duplicate_telegrams: int
    resets: int  # readings after which a register was lower than before (nothing booked for that interval)
    latest_reset: datetime | None
    gaps: GapSummary
    gas_gaps: GapSummary


@dataclass(frozen=True)
class GapSummary:
    """A meter's outages: how many, the energy they hold in total per register, and the latest few."""

    count: int
    totals: dict[str, Decimal | None]
    latest: list[Gap]


LATEST_GAPS = 10


@dataclass(frozen=True)
class InstallationSummary:
    installation: Installation
    has_key: bool
    key_created_at: datetime | None
    readings: int
    latest_reading: datetime | None


# --- conversions ---------------------------------------------------------------------------------------------


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _instant(epoch: int | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


_READING_VALUES = [field.name for field in ReadingRow._meta.sorted_fields if field.name not in ("id", "meter", "reset")]


def _reading(row: ReadingRow) -> DsmrReading:
    values = {name: getattr(row, name) for name in _READING_VALUES}
    values["timestamp"] = _instant(row.timestamp)
    values["extra_device_timestamp"] = _instant(row.extra_device_timestamp)
    return DsmrReading(meter=row.meter, **values)


def _reading_columns(reading: DsmrReading) -> dict:
    columns = {name: getattr(reading, name) for name in _READING_VALUES}
    columns["meter"] = reading.meter
    columns["timestamp"] = _epoch(reading.timestamp)
    if reading.extra_device_timestamp is not None:
        columns["extra_device_timestamp"] = _epoch(reading.extra_device_timestamp)
    return columns


def _position(row: ReadingRow) -> MeterPosition:
    return MeterPosition(
        timestamp=_instant(row.timestamp),
        electricity_delivered_1=row.electricity_delivered_1,
        electricity_delivered_2=row.electricity_delivered_2,
        electricity_returned_1=row.electricity_returned_1,
        electricity_returned_2=row.electricity_returned_2,
        gas_timestamp=_instant(row.extra_device_timestamp),
        gas_delivered=row.extra_device_delivered,
    )


_USE = ("electricity1", "electricity2", "electricity1_returned", "electricity2_returned")
_COSTS = ("electricity1_cost", "electricity2_cost", "gas_cost", "fixed_cost", "total_cost")


def _hour(row: HourRow) -> HourStatistic:
    return HourStatistic(
        hour_start=_instant(row.hour_start), gas=row.gas, **{name: getattr(row, name) for name in _USE}
    )


def _day(row: DayRow) -> DayStatistic:
    return DayStatistic(day=row.day, gas=row.gas, **{name: getattr(row, name) for name in (*_USE, *_COSTS)})


def _gap(row: GapRow) -> Gap:
    values = {name: getattr(row, name) for name in (*_USE, "gas")}
    return Gap(start=_instant(row.start), end=_instant(row.end), **values)


def _prices(row: PriceRow) -> EnergyPrices:
    return EnergyPrices(
        start=row.start,
        end=row.end,
        description=row.description,
        **{name: getattr(row, name) for name in PRICE_FIELDS},
    )


# --- installations and their keys ---------------------------------------------------------------------------


def _installation(row: InstallationRow) -> Installation:
    return Installation(name=row.name, meter=row.meter, equipment_id=row.equipment_id)


def _installation_where(column: str, value: str) -> Installation | None:
    # Plain SQL: every DSMR request looks its installation up, and Peewee building this query cost more
    # than a sixth of a telegram's server time (see "the ingest path in plain SQL" below).
    row = database.execute_sql(
        f'SELECT name, meter, equipment_id FROM dsmr_installations WHERE "{column}" = {_p()}', (value,)
    ).fetchone()
    return None if row is None else Installation(name=row[0], meter=row[1], equipment_id=row[2])


def installation_by_key_hash(key_hash: str) -> Installation | None:
    return _installation_where("key_hash", key_hash)


def installation_named(name: str) -> Installation | None:
    return _installation_where("name", name)


def installation_of_meter(joi_meter_id: str) -> Installation | None:
    """The installation a JOI meter id (an equipment id, or the meter of one that sent no telegram) names."""
    row = InstallationRow.get_or_none(
        (InstallationRow.equipment_id == joi_meter_id)
        | ((InstallationRow.meter == joi_meter_id) & InstallationRow.equipment_id.is_null())
    )
    return None if row is None else _installation(row)


def _create_installation(name: str) -> InstallationRow:
    taken = InstallationRow.select().where((InstallationRow.name == name) | (InstallationRow.meter == name)).exists()
    if taken:
        raise Conflict(f"the name {name!r} is already an installation's meter; choose another name")
    InstallationRow.insert(name=name, meter=name, created_at=_epoch(datetime.now(UTC))).execute()
    _ensure_meter(name)
    return InstallationRow.get(InstallationRow.name == name)


def default_installation() -> Installation:
    """The installation DSMR_API_KEY belongs to, made on first use."""
    found = installation_named(DEFAULT_INSTALLATION)
    if found is not None:
        return found
    with write_transaction():
        _take_ingest_lock()
        row = InstallationRow.get_or_none(InstallationRow.name == DEFAULT_INSTALLATION)
        return _installation(row or _create_installation(DEFAULT_INSTALLATION))


def set_key(name: str, key_hash: str, *, replace: bool) -> tuple[Installation, bool]:
    """Give the installation (made if new) this key. An installation that has a key keeps it unless
    `replace`: then the old key stops working. Returns the installation and whether it was new."""
    with write_transaction():
        _take_ingest_lock()
        row = InstallationRow.get_or_none(InstallationRow.name == name)
        created = row is None
        if created:
            row = _create_installation(name)
        elif row.key_hash is not None and not replace:
            raise Conflict(
                f"installation {name} has a key already; only its hash is stored, so it cannot be shown again. "
                "Replace it with --rotate (make dsmr-key ROTATE=1) or ?rotate=true (POST /admin/dsmr/installations); "
                "the old key then stops working."
            )
        InstallationRow.update(key_hash=key_hash, key_created_at=_epoch(datetime.now(UTC))).where(
            InstallationRow.id == row.id
        ).execute()
        return _installation(row), created


def revoke_key(name: str) -> None:
    """The installation's key stops working; its data stays (a new key for it reads it again)."""
    with write_transaction():
        updated = (
            InstallationRow.update(key_hash=None, key_created_at=None)
            .where((InstallationRow.name == name) & InstallationRow.key_hash.is_null(False))
            .execute()
        )
        if not updated:
            _must_exist(name)
            raise NotFound(f"installation {name} has no key to revoke")


def _must_exist(name: str) -> InstallationRow:
    row = InstallationRow.get_or_none(InstallationRow.name == name)
    if row is None:
        known = ", ".join(row.name for row in InstallationRow.select().order_by(InstallationRow.name)) or "none"
        raise NotFound(f"no installation is named {name!r} (known: {known})")
    return row


def installations() -> list[InstallationSummary]:
    summaries = []
    for row in InstallationRow.select().order_by(InstallationRow.name):
        meter = MeterRow.get_or_none(MeterRow.meter == row.meter)
        latest = (
            ReadingRow.select(ReadingRow.timestamp)
            .where(ReadingRow.meter == row.meter)
            .order_by(ReadingRow.timestamp.desc())
            .limit(1)
            .scalar()
        )
        summaries.append(
            InstallationSummary(
                installation=_installation(row),
                has_key=row.key_hash is not None,
                key_created_at=_instant(row.key_created_at),
                readings=meter.reading_count if meter else 0,
                latest_reading=_instant(latest),
            )
        )
    return summaries


def any_key_stored() -> bool:
    return InstallationRow.select().where(InstallationRow.key_hash.is_null(False)).exists()


def _claim_equipment_id(installation: Installation, equipment_id: str) -> Installation:
    """The installation's first telegram naming its meter makes that id the installation's. Inside the
    store's transaction: another installation's meter, or a JOI meter with kW samples, is refused."""
    claimed = pending_until_grouped_commit("dsmr claimed installations", _ClaimedInstallations)
    current = claimed.get(installation.name) or installation_named(installation.name)
    if current is None:
        raise Conflict(f"installation {installation.name!r} was removed; nothing was stored")
    if current.equipment_id is not None:
        # Checked again under the lock: another telegram may have named the meter since the caller looked.
        check_telegram_meter(current, equipment_id)
        claimed.keep(current)
        return current
    other = InstallationRow.get_or_none(
        (InstallationRow.name != installation.name)
        & ((InstallationRow.equipment_id == equipment_id) | (InstallationRow.meter == equipment_id))
    )
    if other is not None:
        raise InvalidInput(
            f"meter {equipment_id} belongs to another installation; send its telegrams with that installation's "
            "key. Nothing was stored.",
            field="telegram",
        )
    if readings_repo.has_samples(equipment_id):
        raise InvalidInput(
            f"{equipment_id} is a JOI meter with kW readings; a P1 meter of that id would mix with it. "
            "Nothing was stored.",
            field="telegram",
        )
    InstallationRow.update(equipment_id=equipment_id).where(InstallationRow.name == current.name).execute()
    # The hourly kWh the price plans read move to the id the meter is known by from now on.
    readings_repo.rename_hourly_energy(installation.meter, equipment_id)
    return replace(current, equipment_id=equipment_id)


class _ClaimedInstallations(dict):
    """Installations whose equipment id the store's transaction found claimed already, by name: the other
    telegrams of its group commit need not read them again. Nothing in the transaction can change such a
    row (deleting an installation or changing its key waits for the ingest lock), and a claim made by a
    write of the group is not kept (that write's savepoint may yet roll it back)."""

    def keep(self, installation: Installation) -> None:
        self[installation.name] = installation

    def flush(self) -> None:
        """Nothing to write: the reads end with the transaction."""


# --- the ingest path in plain SQL ----------------------------------------------------------------------------
# A telegram runs about fifteen statements. Built by Peewee they cost 80% of the store's CPU (cProfile: 12 of
# 15 s for 500 telegrams, SQLite's own work 0.4 s), as in the JOI store: the hot ones are written out here.


def _p() -> str:
    return database.param


class _ReadingTuple(NamedTuple):
    """A dsmr_readings row read in plain SQL, with the attributes of ReadingRow."""

    id: int
    meter: str
    timestamp: int
    electricity_delivered_1: Decimal
    electricity_returned_1: Decimal
    electricity_delivered_2: Decimal
    electricity_returned_2: Decimal
    electricity_currently_delivered: Decimal
    electricity_currently_returned: Decimal
    phase_currently_delivered_l1: Decimal | None
    phase_currently_delivered_l2: Decimal | None
    phase_currently_delivered_l3: Decimal | None
    phase_currently_returned_l1: Decimal | None
    phase_currently_returned_l2: Decimal | None
    phase_currently_returned_l3: Decimal | None
    extra_device_timestamp: int | None
    extra_device_delivered: Decimal | None
    reset: bool


_READING_SELECT = ", ".join(f'"{name}"' for name in _ReadingTuple._fields)
_READING_DECIMALS = tuple(isinstance(getattr(ReadingRow, name), peewee.DecimalField) for name in _ReadingTuple._fields)


def _reading_tuple(row: tuple | None) -> _ReadingTuple | None:
    if row is None:
        return None
    return _ReadingTuple(
        *(
            _decimal(value) if is_decimal and value is not None else value
            for value, is_decimal in zip(row, _READING_DECIMALS, strict=True)
        )
    )


def _one_reading(where: str, params: Sequence, order: str = "") -> _ReadingTuple | None:
    sql = f"SELECT {_READING_SELECT} FROM dsmr_readings WHERE {where}{order} LIMIT 1"
    return _reading_tuple(database.execute_sql(sql, params).fetchone())


def _insert_reading(columns: dict) -> int:
    names = list(columns)
    quoted = ", ".join(f'"{name}"' for name in names)
    sql = f"INSERT INTO dsmr_readings ({quoted}) VALUES ({', '.join([_p()] * len(names))}) RETURNING id"
    return database.execute_sql(sql, [columns[name] for name in names]).fetchone()[0]


_STAT_COLUMNS = ("electricity1", "electricity2", "electricity1_returned", "electricity2_returned", "gas")


class _StatTuple(NamedTuple):
    electricity1: Decimal
    electricity2: Decimal
    electricity1_returned: Decimal
    electricity2_returned: Decimal
    gas: Decimal | None


def _stat_rows(table: str, key: str, meter: str, keys: Sequence) -> dict:
    p = _p()
    sql = (
        f"SELECT {key}, {', '.join(_STAT_COLUMNS)} FROM {table}"
        f" WHERE meter = {p} AND {key} IN ({', '.join([p] * len(keys))})"
    )
    rows = {}
    for found, *values in database.execute_sql(sql, [meter, *keys]).fetchall():
        if isinstance(found, str):
            found = date.fromisoformat(found)  # SQLite keeps dates as text
        rows[found] = _StatTuple(*(None if value is None else _decimal(value) for value in values))
    return rows


def _upsert_rows(table: str, conflict: tuple[str, ...], rows: list[dict]) -> None:
    if not rows:
        return
    names = list(rows[0])
    updates = ", ".join(f"{name} = excluded.{name}" for name in names if name not in conflict)
    row_sql = f"({', '.join([_p()] * len(names))})"
    for start in range(0, len(rows), 100):
        chunk = rows[start : start + 100]
        database.execute_sql(
            f"INSERT INTO {table} ({', '.join(names)}) VALUES {', '.join([row_sql] * len(chunk))}"
            f" ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {updates}",
            [row[name] for row in chunk for name in names],
        )


# --- writing readings ----------------------------------------------------------------------------------------


def _take_ingest_lock() -> None:
    """Serialise DSMR writes: SQLite's write transaction already is exclusive; PostgreSQL locks one row."""
    if not is_sqlite():
        CounterRow.select().where(CounterRow.name == "ingest").for_update().execute()


def count_rejected_telegram(installation: Installation) -> None:
    with write_transaction():
        MeterRow.update(rejected_telegrams=MeterRow.rejected_telegrams + 1).where(
            MeterRow.meter == installation.meter
        ).execute()


def store_reading(
    installation: Installation,
    reading: DsmrReading,
    tz: tzinfo,
    telegram: TelegramFacts | None = None,
    telegram_meter: str | None = None,
    *,
    max_gap: int = DEFAULT_MAX_GAP_SECONDS,
) -> Stored:
    """Store a reading of the installation's meter once per instant and bring the statistics it changes up
    to date, atomically. `telegram_meter` is the meter a telegram named: the installation's first one makes
    it the installation's equipment id (refused when another installation or a JOI meter has it).

    A reading the meter already has at that instant, with the same values, is kept as it was (`created` is
    False; a telegram counts as a duplicate); other values for that instant are refused with Conflict."""
    reading = replace(reading, meter=installation.meter)
    # Telegrams that arrive together share one transaction and one commit (group commit on SQLite, as the
    # JOI store does): under a fleet's load each store waited mostly for the lock and the commit's fsync.
    return grouped_write(lambda: _store_in_transaction(installation, reading, tz, telegram, telegram_meter, max_gap))


def _store_in_transaction(
    installation: Installation,
    reading: DsmrReading,
    tz: tzinfo,
    telegram: TelegramFacts | None,
    telegram_meter: str | None,
    max_gap: int,
) -> Stored:
    _take_ingest_lock()
    if telegram_meter:
        installation = _claim_equipment_id(installation, telegram_meter)
    epoch = _epoch(reading.timestamp)
    previous, following = _neighbours(reading.meter, epoch)
    if previous is not None and previous.timestamp == epoch:
        kept = _reading(previous)
        if not kept.same_values(reading):
            raise Conflict(
                f"meter {installation.joi_meter_id} already has another reading at "
                f"{reading.timestamp.isoformat()}; nothing was changed"
            )
        _defer(installation, None, tz, telegram, duplicate=True)
        return Stored(Identified(previous.id, kept), created=False)
    before = None if previous is None else _position(previous)
    after = None if following is None else _position(following)
    reset = before is not None and is_reset(before, reading.position)
    row_id = _insert_reading({**_reading_columns(reading), "reset": reset})
    if following is not None:
        _flag_reset(following, reading.position, after)
    changes = _Changes()
    _book_reading(changes, reading, row_id, before, after, tz, max_gap)
    _defer(installation, changes, tz, telegram, duplicate=False)
    return Stored(Identified(row_id, reading), created=True)


def _defer(
    installation: Installation, changes: _Changes | None, tz: tzinfo, telegram: TelegramFacts | None, *, duplicate: bool
) -> None:
    """The statistics and counters a stored reading changes, applied with those of the other readings of its
    group commit (py-spy: about a third of a telegram's time in the write lock went to its own SELECT and
    UPSERT of the hour and day rows, JOI hourly kWh and counters). The last step of a store."""
    pending = pending_until_grouped_commit("dsmr statistics", _PendingStatistics)
    pending.add(installation, changes, tz, telegram, duplicate=duplicate)


def _neighbours(meter: str, epoch: int) -> tuple[_ReadingTuple | None, _ReadingTuple | None]:
    """In one query: the meter's reading at `epoch` or else the one before it, and the one after it."""
    p = _p()
    side = f'SELECT {_READING_SELECT} FROM dsmr_readings WHERE meter = {p} AND "timestamp" '
    sql = (
        f'SELECT * FROM ({side}<= {p} ORDER BY "timestamp" DESC LIMIT 1) AS at_or_before'
        f' UNION ALL SELECT * FROM ({side}> {p} ORDER BY "timestamp" LIMIT 1) AS after'
    )
    previous = following = None
    for row in database.execute_sql(sql, (meter, epoch, meter, epoch)).fetchall():
        found = _reading_tuple(row)
        if found.timestamp <= epoch:
            previous = found
        else:
            following = found
    return previous, following


def _neighbour(meter: str, epoch: int, *, before: bool) -> _ReadingTuple | None:
    p = _p()
    side, order = ("<", "DESC") if before else (">", "ASC")
    return _one_reading(f'"meter" = {p} AND "timestamp" {side} {p}', (meter, epoch), f' ORDER BY "timestamp" {order}')


def _flag_reset(row: ReadingRow, previous: MeterPosition | None, position: MeterPosition | None = None) -> None:
    """Whether the interval ending at `row` (at `position`, when the caller has it) is a reset, now that
    `previous` is the reading before it."""
    reset = previous is not None and is_reset(previous, position or _position(row))
    if reset != row.reset:
        ReadingRow.update(reset=reset).where(ReadingRow.id == row.id).execute()


def _ensure_meter(meter: str) -> None:
    database.execute_sql(
        "INSERT INTO dsmr_meters (meter, accepted_telegrams, duplicate_telegrams, reading_count, rejected_telegrams)"
        f" VALUES ({_p()}, 0, 0, 0, 0) ON CONFLICT (meter) DO NOTHING",
        (meter,),
    )


_TELEGRAM_FACTS = ("timestamp", "dsmr_version", "electricity_tariff", "latest_telegram", *METER_COUNTERS)


class _MeterCounts:
    """What stored readings add to a meter's counters: new readings, accepted and duplicate telegrams, and
    the newest telegram (of equal ones, the last to arrive)."""

    def __init__(self) -> None:
        self.readings = self.accepted = self.duplicates = 0
        self.newest: TelegramFacts | None = None

    def count(self, telegram: TelegramFacts | None, *, duplicate: bool) -> None:
        if not duplicate:
            self.readings += 1
        if telegram is None:
            return
        if duplicate:
            self.duplicates += 1
        else:
            self.accepted += 1
        if self.newest is None or self.newest.timestamp <= telegram.timestamp:
            self.newest = telegram


def _count_meter(meter: str, counts: _MeterCounts) -> None:
    """The meter's counters in one UPDATE; the newest telegram's facts describe the meter, unless the meter
    already has a newer one (a late telegram only counts)."""
    p = _p()
    assignments = [
        f"{column} = {column} + {int(added)}"
        for column, added in (
            ("reading_count", counts.readings),
            ("accepted_telegrams", counts.accepted),
            ("duplicate_telegrams", counts.duplicates),
        )
        if added
    ]
    values: list = []
    telegram = counts.newest
    if telegram is not None:
        epoch = _epoch(telegram.timestamp)
        facts = [epoch, telegram.dsmr_version, telegram.electricity_tariff, telegram.text]
        facts += [telegram.counters.get(name) for name in METER_COUNTERS]
        newest = f'("timestamp" IS NULL OR "timestamp" <= {p})'
        for name, value in zip(_TELEGRAM_FACTS, facts, strict=True):
            assignments.append(f'"{name}" = CASE WHEN {newest} THEN {p} ELSE "{name}" END')
            values += [epoch, value]
    if assignments:
        database.execute_sql(f"UPDATE dsmr_meters SET {', '.join(assignments)} WHERE meter = {p}", [*values, meter])


# --- keeping the statistics current --------------------------------------------------------------------------


class _Changes:
    """What one write takes back and adds: per-hour deltas (see domain.statistics.add_booking) and gaps."""

    def __init__(self) -> None:
        self.hours: dict[int, list] = {}
        self.quarters: dict[int, float] = {}
        # (True, kind, start) takes a gap back, (False, kind, gap) adds one, in the order they were booked
        # (a reading takes its interval's booking back before it books its own)
        self.gap_steps: list[tuple[bool, str, datetime | Gap]] = []

    def book(self, booking: IntervalBooking, *, gas: bool, sign: int) -> None:
        add_booking(self.hours, booking, gas=gas, sign=sign)
        add_quarters(self.quarters, booking, sign)
        if booking.gap is not None:
            kind = "gas" if gas else "electricity"
            self.gap_steps.append((True, kind, booking.gap.start) if sign < 0 else (False, kind, booking.gap))

    def merge(self, later: _Changes) -> None:
        """A later reading's changes (of the same meter) added to these."""
        for hour, delta in later.hours.items():
            add_booking_values(self.hours.setdefault(hour, [ZERO, ZERO, ZERO, ZERO, None]), delta)
        for quarter, kwh in later.quarters.items():
            self.quarters[quarter] = self.quarters.get(quarter, 0.0) + kwh
        self.gap_steps += later.gap_steps


def _book_reading(
    changes: _Changes,
    reading: DsmrReading,
    row_id: int,
    before: MeterPosition | None,
    after: MeterPosition | None,
    tz: tzinfo,
    max_gap: int,
) -> None:
    """The new reading splits the interval from the reading `before` it to the one `after` it: that
    interval's booking is taken back and the two new ones are added (the statistics of the hours around it,
    never of the whole day)."""
    position = reading.position
    if before is not None and after is not None:
        changes.book(book_electricity(before, after, tz, max_gap), gas=False, sign=-1)
    if before is not None:
        changes.book(book_electricity(before, position, tz, max_gap), gas=False, sign=1)
    if after is not None:
        changes.book(book_electricity(position, after, tz, max_gap), gas=False, sign=1)
    if reading.extra_device_timestamp is not None and not _repeats_newest_capture(position, before, after):
        _book_gas_capture(changes, reading, row_id, tz, max_gap)


def _repeats_newest_capture(position: MeterPosition, before: MeterPosition | None, after: MeterPosition | None) -> bool:
    """The common case, decided without a query: the newest reading repeats the gas capture, with its value,
    of the reading before it, which is then the latest telegram carrying that capture; nothing changes."""
    return (
        after is None
        and before is not None
        and before.gas_timestamp == position.gas_timestamp
        and before.gas_delivered == position.gas_delivered
    )


def _book_gas_capture(changes: _Changes, reading: DsmrReading, row_id: int, tz: tzinfo, max_gap: int) -> None:
    """Telegrams repeat a gas capture; only a new capture, or a later telegram's other value for one, changes
    the gas statistics: the capture intervals around it are booked again."""
    meter, captured = reading.meter, _epoch(reading.extra_device_timestamp)
    carrier = database.execute_sql(carrier_sql(), (meter, captured, row_id)).fetchone()
    old = None
    if carrier is not None:
        carried_at, carried = carrier[0], _decimal(carrier[1])
        if carried_at > _epoch(reading.timestamp) or carried == reading.extra_device_delivered:
            return  # the later telegram's value stands, or nothing changed
        old = (reading.extra_device_timestamp, carried)
    new = (reading.extra_device_timestamp, reading.extra_device_delivered)
    before, after = _gas_capture(meter, captured, before=True), _gas_capture(meter, captured, before=False)
    for chain, sign in (([before, old, after], -1), ([before, new, after], 1)):
        present = [capture for capture in chain if capture is not None]
        for first, second in itertools.pairwise(present):
            changes.book(book_gas(first, second, tz, max_gap), gas=True, sign=sign)


def carrier_sql() -> str:
    """The latest other telegram carrying a gas capture (meter, capture time, the new reading's id)."""
    p = _p()
    return (
        f'SELECT "timestamp", extra_device_delivered FROM dsmr_readings WHERE meter = {p}'
        f' AND extra_device_timestamp = {p} AND id <> {p} ORDER BY "timestamp" DESC LIMIT 1'
    )


def _gas_capture(meter: str, epoch: int, *, before: bool) -> tuple[datetime, Decimal] | None:
    """The meter's last gas capture before `epoch` (or first after it), with the value the latest telegram
    carrying it gave."""
    p = _p()
    side, order = ("<", "DESC") if before else (">", "ASC")
    row = database.execute_sql(
        f"SELECT extra_device_timestamp, extra_device_delivered FROM dsmr_readings WHERE meter = {p}"
        f' AND extra_device_timestamp {side} {p} ORDER BY extra_device_timestamp {order}, "timestamp" DESC LIMIT 1',
        (meter, epoch),
    ).fetchone()
    return None if row is None else (_instant(row[0]), _decimal(row[1]))


class _PendingStatistics:
    """The changes of a group commit's stored readings, per meter, applied in one go before it commits
    (repository.db.pending_until_grouped_commit). The hour pieces are whole thousandths, so their sum is
    exactly what adding them one by one gave; a gap that one reading opened and a later one closed is
    deleted after it was inserted, in the order of the readings."""

    def __init__(self) -> None:
        self.meters: dict[str, tuple[Installation, tzinfo, _Changes, _MeterCounts]] = {}

    def add(
        self, installation: Installation, changes: _Changes | None, tz: tzinfo, telegram, *, duplicate: bool
    ) -> None:
        entry = self.meters.get(installation.meter)
        if entry is None:
            entry = (installation, tz, _Changes(), _MeterCounts())
        # The latest write's view of the installation: a telegram in the group may have claimed its equipment
        # id, and the JOI hourly kWh (moved to that id then) must follow it.
        entry = self.meters[installation.meter] = (installation, *entry[1:])
        if changes is not None:
            entry[2].merge(changes)
        entry[3].count(telegram, duplicate=duplicate)

    def flush(self) -> None:
        for installation, tz, changes, counts in self.meters.values():
            _apply(installation, changes, tz)
            _ensure_meter(installation.meter)
            _count_meter(installation.meter, counts)


def _apply(installation: Installation, changes: _Changes, tz: tzinfo) -> None:
    """Add the deltas to the stored hours, then to their days (repriced), the JOI hourly kWh, and the gaps."""
    meter = installation.meter
    for gone, kind, gap in changes.gap_steps:
        if gone:
            start = _epoch(gap)
            GapRow.delete().where((GapRow.meter == meter) & (GapRow.kind == kind) & (GapRow.start == start)).execute()
        else:
            GapRow.insert(_gap_columns(meter, kind, gap)).execute()
    if not changes.hours:
        return
    hours = sorted(changes.hours)
    stored = _stat_rows("dsmr_hour_statistics", "hour_start", meter, hours)
    merged = {hour: _merged(stored.get(hour), changes.hours[hour]) for hour in hours}
    _upsert_rows(
        "dsmr_hour_statistics",
        ("meter", "hour_start"),
        [{"meter": meter, "hour_start": hour, **merged[hour]} for hour in hours],
    )
    if changes.quarters:
        readings_repo.add_hourly_energy(installation.joi_meter_id, hour_rollups(changes.quarters))
    by_day: dict[date, list] = {}
    for hour in hours:
        total = by_day.setdefault(day_of_epoch(hour, tz), [ZERO, ZERO, ZERO, ZERO, None])
        add_booking_values(total, changes.hours[hour])
    days = sorted(by_day)
    stored_days = _stat_rows("dsmr_day_statistics", "day", meter, days)
    contracts = energy_prices(meter)
    rows = []
    for day in days:
        values = _merged(stored_days.get(day), by_day[day])
        gas = values.pop("gas")
        statistic = day_totals(day, values, gas, tz, contracts)
        rows.append({"meter": meter, "day": day, **_day_columns(statistic)})
    _upsert_rows("dsmr_day_statistics", ("meter", "day"), rows)


def add_booking_values(total: list, delta: Sequence) -> None:
    for index in range(4):
        total[index] += delta[index]
    if delta[4] is not None:
        total[4] = (total[4] or ZERO) + delta[4]


def _merged(row: _StatTuple | None, delta: Sequence) -> dict:
    values = [ZERO, ZERO, ZERO, ZERO, None] if row is None else [*(getattr(row, name) for name in _USE), row.gas]
    add_booking_values(values, delta)
    merged = dict(zip(_USE, (_thousandths(value) for value in values[:4]), strict=True))
    merged["gas"] = None if values[4] is None else _thousandths(values[4])
    return merged


def _thousandths(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.001"))


def _day_columns(statistic: DayStatistic) -> dict:
    return {name: getattr(statistic, name) for name in (*_USE, "gas", *_COSTS)}


def _upsert(model, conflict_target: list, rows: list[dict]) -> None:
    if not rows:
        return
    updated = [name for name in rows[0] if name not in {field.name for field in conflict_target}]
    for start in range(0, len(rows), 200):
        model.insert_many(rows[start : start + 200]).on_conflict(
            conflict_target=conflict_target, preserve=[getattr(model, name) for name in updated]
        ).execute()


def _gap_columns(meter: str, kind: str, gap: Gap) -> dict:
    return {
        "meter": meter,
        "kind": kind,
        "start": _epoch(gap.start),
        "end": _epoch(gap.end),
        **{name: getattr(gap, name) for name in (*_USE, "gas")},
    }


def day_of_epoch(epoch: int, tz: tzinfo) -> date:
    return datetime.fromtimestamp(epoch, tz).date()


# --- full recomputation ----------------------------------------------------------------------------------------


def recompute(meter: str, tz: tzinfo, max_gap: int) -> Booked:
    """The meter's statistics recomputed from every reading (read in order, one at a time)."""
    registers = (
        ReadingRow.timestamp,
        ReadingRow.electricity_delivered_1,
        ReadingRow.electricity_delivered_2,
        ReadingRow.electricity_returned_1,
        ReadingRow.electricity_returned_2,
    )
    rows = ReadingRow.select(*registers).where(ReadingRow.meter == meter).order_by(ReadingRow.timestamp)
    positions = (
        MeterPosition(_instant(row[0]), _decimal(row[1]), _decimal(row[2]), _decimal(row[3]), _decimal(row[4]))
        for row in rows.tuples().iterator()
    )
    captures = (
        ReadingRow.select(ReadingRow.extra_device_timestamp, ReadingRow.extra_device_delivered)
        .where((ReadingRow.meter == meter) & ReadingRow.extra_device_timestamp.is_null(False))
        .order_by(ReadingRow.extra_device_timestamp, ReadingRow.timestamp)
    )
    return book_in_order(positions, _latest_per_capture(captures.tuples().iterator()), tz, max_gap)


def _decimal(value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _latest_per_capture(rows: Iterable[tuple]) -> Iterable[tuple[datetime, Decimal]]:
    """Rows in (capture time, telegram time) order, one per capture time: the latest telegram's value."""
    pending = None
    for captured, value in rows:
        if pending is not None and pending[0] != captured:
            yield _instant(pending[0]), _decimal(pending[1])
        pending = (captured, value)
    if pending is not None:
        yield _instant(pending[0]), _decimal(pending[1])


@dataclass(frozen=True)
class StoredStatistics:
    hours: dict[int, HourStatistic]
    days: dict[date, DayStatistic]
    gaps: dict[tuple[str, int], Gap]


def stored_statistics(meter: str) -> StoredStatistics:
    hours = {row.hour_start: _hour(row) for row in HourRow.select().where(HourRow.meter == meter)}
    days = {row.day: _day(row) for row in DayRow.select().where(DayRow.meter == meter)}
    gaps = {(row.kind, row.start): _gap(row) for row in GapRow.select().where(GapRow.meter == meter)}
    return StoredStatistics(hours, days, gaps)


def expected_statistics(meter: str, tz: tzinfo, max_gap: int) -> StoredStatistics:
    """What the stored statistics of the meter should be, from its readings and contracts."""
    return _expected(meter, tz, max_gap)[0]


def _expected(meter: str, tz: tzinfo, max_gap: int) -> tuple[StoredStatistics, dict[int, HourRollup]]:
    """The statistics, and the JOI hour rollups of its delivered kWh, recomputed."""
    booked = recompute(meter, tz, max_gap)
    hours = {hour: hour_statistic(hour, values) for hour, values in booked.hours.items()}
    by_day: dict[date, list] = {}
    for hour, values in sorted(booked.hours.items()):
        add_booking_values(by_day.setdefault(day_of_epoch(hour, tz), [ZERO, ZERO, ZERO, ZERO, None]), values)
    contracts = energy_prices(meter)
    days = {}
    for day, values in by_day.items():
        used = dict(zip(_USE, (_thousandths(value) for value in values[:4]), strict=True))
        days[day] = day_totals(day, used, None if values[4] is None else _thousandths(values[4]), tz, contracts)
    gaps = {("electricity", _epoch(gap.start)): gap for gap in booked.gaps}
    gaps.update({("gas", _epoch(gap.start)): gap for gap in booked.gas_gaps})
    return StoredStatistics(hours, days, gaps), hour_rollups(booked.delivered_quarters)


def statistics_meters() -> list[Installation]:
    return [_installation(row) for row in InstallationRow.select().order_by(InstallationRow.name)]


def rebuild_statistics(installation: Installation, tz: tzinfo, max_gap: int) -> None:
    """Replace the meter's hour and day statistics, gaps and JOI hourly kWh with a full recomputation."""
    with write_transaction():
        _take_ingest_lock()
        _rebuild(installation, tz, max_gap)


def _rebuild(installation: Installation, tz: tzinfo, max_gap: int) -> None:
    meter = installation.meter
    expected, rollups = _expected(meter, tz, max_gap)
    for model in (HourRow, DayRow, GapRow):
        model.delete().where(model.meter == meter).execute()
    _upsert(
        HourRow,
        [HourRow.meter, HourRow.hour_start],
        [
            {"meter": meter, "hour_start": hour, **{name: getattr(statistic, name) for name in (*_USE, "gas")}}
            for hour, statistic in sorted(expected.hours.items())
        ],
    )
    _upsert(
        DayRow,
        [DayRow.meter, DayRow.day],
        [{"meter": meter, "day": day, **_day_columns(statistic)} for day, statistic in sorted(expected.days.items())],
    )
    gaps = [_gap_columns(meter, kind, gap) for (kind, _), gap in sorted(expected.gaps.items())]
    for start in range(0, len(gaps), 200):
        GapRow.insert_many(gaps[start : start + 200]).execute()
    readings_repo.replace_hourly_energy(installation.joi_meter_id, rollups)


def _put_day(meter: str, day: date, statistic: DayStatistic | None) -> None:
    if statistic is None:
        DayRow.delete().where((DayRow.meter == meter) & (DayRow.day == day)).execute()
        return
    values = _day_columns(statistic)
    DayRow.insert(meter=meter, day=day, **values).on_conflict(
        conflict_target=[DayRow.meter, DayRow.day], update=values
    ).execute()


# --- removing test data --------------------------------------------------------------------------------------


def delete_readings(name: str, window: TimeWindow, tz: tzinfo, max_gap: int = DEFAULT_MAX_GAP_SECONDS) -> int:
    """Delete the installation's readings in the window (inclusive; an open side reaches the first or last
    reading), fix the reset flag of the reading after it, and rebuild the installation's statistics (a rare
    operator action: a full recomputation is simplest and certainly right). Returns how many were deleted."""
    with write_transaction():
        _take_ingest_lock()
        installation = _installation(_must_exist(name))
        meter = installation.meter
        inside = ReadingRow.meter == meter
        if window.start is not None:
            inside &= ReadingRow.timestamp >= _epoch(window.start)
        if window.end is not None:
            inside &= ReadingRow.timestamp <= _epoch(window.end)
        bounds = ReadingRow.select(peewee.fn.MIN(ReadingRow.timestamp), peewee.fn.MAX(ReadingRow.timestamp))
        low, high = bounds.where(inside).tuples().first()
        if low is None:
            return 0
        deleted = ReadingRow.delete().where(inside).execute()
        MeterRow.update(reading_count=MeterRow.reading_count - deleted).where(MeterRow.meter == meter).execute()
        following = _neighbour(meter, high, before=False)
        previous = _neighbour(meter, low, before=True)
        if following is not None:
            _flag_reset(following, None if previous is None else _position(previous))
        _rebuild(installation, tz, max_gap)
        return deleted


def delete_installation(name: str) -> int:
    """Delete the installation with its key, readings, statistics, contracts, meter statistics and JOI
    hourly kWh. Returns the number of readings deleted."""
    with write_transaction():
        _take_ingest_lock()
        installation = _installation(_must_exist(name))
        meter = installation.meter
        deleted = ReadingRow.delete().where(ReadingRow.meter == meter).execute()
        for model in (HourRow, DayRow, GapRow, PriceRow, MeterRow):
            model.delete().where(model.meter == meter).execute()
        readings_repo.delete_hourly_energy(installation.joi_meter_id)
        InstallationRow.delete().where(InstallationRow.name == name).execute()
        return deleted


# --- energy supplier prices ----------------------------------------------------------------------------------


_PRICE_SELECT = ", ".join(f'"{name}"' for name in ("start", "end", "description", *PRICE_FIELDS))


def energy_prices(meter: str) -> list[EnergyPrices]:
    rows = database.execute_sql(
        f'SELECT {_PRICE_SELECT} FROM dsmr_energy_supplier_prices WHERE meter = {_p()} ORDER BY "start", id', (meter,)
    ).fetchall()
    return [
        EnergyPrices(_date(start), None if end is None else _date(end), description, *map(_decimal, prices))
        for start, end, description, *prices in rows
    ]


def _date(value) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _contract_text(row: PriceRow) -> str:
    end = row.end.isoformat() if row.end else "open-ended"
    return f"contract {row.id} {row.description!r} ({row.start.isoformat()} to {end})"


def add_energy_prices(installation: Installation, contract: EnergyPrices, tz: tzinfo) -> Identified:
    """Store a contract of the installation and reprice its stored days that it covers. A contract that
    overlaps one of the installation's contracts is refused (409 naming it): a day has one price."""
    meter = installation.meter
    with write_transaction():
        _take_ingest_lock()
        _ensure_meter(meter)
        overlapping = (PriceRow.meter == meter) & (PriceRow.end.is_null() | (PriceRow.end >= contract.start))
        if contract.end is not None:
            overlapping &= PriceRow.start <= contract.end
        clash = PriceRow.select().where(overlapping).order_by(PriceRow.start, PriceRow.id).first()
        if clash is not None:
            raise Conflict(
                f"the contract overlaps {_contract_text(clash)}; a day has one price. End that one before "
                f"{contract.start.isoformat()}, or start this one after it. Nothing was stored."
            )
        row_id = PriceRow.insert(
            meter=meter,
            start=contract.start,
            end=contract.end,
            description=contract.description,
            **{name: getattr(contract, name) for name in PRICE_FIELDS},
        ).execute()
        _reprice(meter, contract.start, contract.end, tz)
        return Identified(row_id, contract)


def _reprice(meter: str, start: date, end: date | None, tz: tzinfo) -> None:
    contracts = energy_prices(meter)
    covered = (DayRow.meter == meter) & (DayRow.day >= start)
    if end is not None:
        covered &= DayRow.day <= end
    for row in DayRow.select().where(covered):
        _put_day(meter, row.day, repriced(_day(row), tz, contracts))


def delete_energy_prices(name: str, contract_id: int, tz: tzinfo) -> EnergyPrices:
    """Delete one of the installation's contracts; the days it priced cost nothing again (or what another
    contract says). Returns the contract deleted."""
    with write_transaction():
        _take_ingest_lock()
        meter = _must_exist(name).meter
        row = PriceRow.get_or_none((PriceRow.id == contract_id) & (PriceRow.meter == meter))
        if row is None:
            raise NotFound(f"installation {name} has no contract {contract_id}")
        PriceRow.delete().where(PriceRow.id == row.id).execute()
        _reprice(meter, row.start, row.end, tz)
        return _prices(row)


def energy_prices_page(meter: str, page: PageRequest) -> tuple[int, list[Identified]]:
    query = PriceRow.select().where(PriceRow.meter == meter)
    rows = _page(query, [PriceRow.start, PriceRow.id], page, _price_key_to_db)
    return _count(query), [Identified(row.id, _prices(row)) for row in rows]


def price_key(item: Identified) -> tuple[int, int]:
    return item.value.start.toordinal(), item.id


def _price_key_to_db(key: tuple[int, ...]) -> tuple:
    return date.fromordinal(max(1, min(key[0], date.max.toordinal()))), key[1]


# --- reading lists and statistics ----------------------------------------------------------------------------


def _page(query: peewee.Select, key: list[peewee.Field], page: PageRequest, key_to_db=lambda key: key) -> list:
    """One page of `query` in `key` order (see `page_query`)."""
    paged, backwards = page_query(query, key, page, key_to_db)
    rows = list(paged)
    return rows[::-1] if backwards else rows


def page_query(
    query: peewee.Select, key: list[peewee.Field], page: PageRequest, key_to_db=lambda key: key
) -> tuple[peewee.Select, bool]:
    """The query of one page and whether its rows come backwards. With a cursor the page seeks past the
    key, an index range scan whatever the depth; without one it skips `offset` rows (cost grows with it)."""
    column = key[0] if len(key) == 1 else peewee.Tuple(*key)

    def value(cursor):
        converted = key_to_db(cursor)
        return converted[0] if len(key) == 1 else peewee.Tuple(*converted)

    ascending = [field.asc() for field in key]
    descending = [field.desc() for field in key]
    forward, backward = (descending, ascending) if page.descending else (ascending, descending)
    if page.after is not None:
        seek = column < value(page.after) if page.descending else column > value(page.after)
        return query.where(seek).order_by(*forward).limit(page.limit), False
    if page.before is not None:
        seek = column > value(page.before) if page.descending else column < value(page.before)
        return query.where(seek).order_by(*backward).limit(page.limit), True
    return query.order_by(*forward).offset(page.offset).limit(page.limit), False


def _count(query: peewee.Select) -> int:
    return query.select(peewee.fn.COUNT(peewee.SQL("*"))).scalar()


def readings_page(meter: str, window: TimeWindow, page: PageRequest) -> tuple[int, list[Identified]]:
    """The readings of one meter in the window, in timestamp order."""
    query = ReadingRow.select().where(ReadingRow.meter == meter)
    if window.start is not None:
        query = query.where(ReadingRow.timestamp >= _epoch(window.start))
    if window.end is not None:
        query = query.where(ReadingRow.timestamp <= _epoch(window.end))
    count = _reading_count(meter) if window.start is None and window.end is None else _count(query)
    if page.offset >= count and page.after is None and page.before is None:
        return count, []
    rows = _page(query, [ReadingRow.timestamp], page)
    return count, [Identified(row.id, _reading(row)) for row in rows]


def _reading_count(meter: str) -> int:
    """Without a time window the count is kept per meter: no scan of millions of index entries per page."""
    query = MeterRow.select(peewee.fn.COALESCE(peewee.fn.SUM(MeterRow.reading_count), 0))
    return int(query.where(MeterRow.meter == meter).scalar())


def reading_key(item: Identified) -> tuple[int, ...]:
    return (_epoch(item.value.timestamp),)


def hour_statistics_page(meter: str, window: TimeWindow, page: PageRequest) -> tuple[int, list[Identified]]:
    query = HourRow.select().where(HourRow.meter == meter)
    if window.start is not None:
        query = query.where(HourRow.hour_start >= _epoch(window.start))
    if window.end is not None:
        query = query.where(HourRow.hour_start <= _epoch(window.end))
    count = _count(query)
    if page.offset >= count and page.after is None and page.before is None:
        return count, []
    return count, [Identified(row.id, _hour(row)) for row in _page(query, [HourRow.hour_start], page)]


def hour_key(item: Identified) -> tuple[int]:
    return (_epoch(item.value.hour_start),)


def day_statistics_page(
    meter: str, first: date | None, last: date | None, page: PageRequest
) -> tuple[int, list[Identified]]:
    query = DayRow.select().where(DayRow.meter == meter)
    if first is not None:
        query = query.where(DayRow.day >= first)
    if last is not None:
        query = query.where(DayRow.day <= last)
    count = _count(query)
    if page.offset >= count and page.after is None and page.before is None:
        return count, []
    rows = _page(query, [DayRow.day], page, lambda key: (date.fromordinal(max(1, min(key[0], date.max.toordinal()))),))
    return count, [Identified(row.id, _day(row)) for row in rows]


def day_key(item: Identified) -> tuple[int]:
    return (item.value.day.toordinal(),)


def today(meter: str, day: date, tz: tzinfo) -> DayStatistic | None:
    """Today so far (/api/v2/consumption/today): the day statistic, kept current at ingest; nothing used
    (priced) when today's only reading is its first, e.g. after an outage; None without a reading today."""
    row = DayRow.get_or_none((DayRow.meter == meter) & (DayRow.day == day))
    if row is not None:
        return _day(row)
    start, end = day_bounds(day, tz)
    inside = (
        (ReadingRow.meter == meter) & (ReadingRow.timestamp > _epoch(start)) & (ReadingRow.timestamp <= _epoch(end))
    )
    if not ReadingRow.select(ReadingRow.id).where(inside).limit(1).exists():
        return None
    return zero_day(day, energy_prices(meter))


# --- meter statistics ----------------------------------------------------------------------------------------


def meter_statistics(meter: str) -> MeterStatistics:
    """DSMR-reader's meter statistics of the installation's meter (empty before its first telegram), with
    the telegrams refused for it and the resets seen in its readings."""
    row = MeterRow.get_or_none(MeterRow.meter == meter)
    resets = ReadingRow.select(ReadingRow.timestamp).where(
        (ReadingRow.meter == meter) & (ReadingRow.reset == True)  # noqa: E712 (a Peewee expression)
    )
    latest_reset = resets.order_by(ReadingRow.timestamp.desc()).limit(1).scalar()
    reset_count = resets.count()
    gaps = {"gaps": _gap_summary(meter, "electricity"), "gas_gaps": _gap_summary(meter, "gas")}
    if row is None or row.latest_telegram is None:
        return MeterStatistics(
            id=None,
            meter=meter,
            timestamp=None,
            dsmr_version=None,
            electricity_tariff=None,
            counters=dict.fromkeys(METER_COUNTERS),
            rejected_telegrams=0 if row is None else row.rejected_telegrams,
            latest_telegram=None,
            accepted_telegrams=0 if row is None else row.accepted_telegrams,
            duplicate_telegrams=0 if row is None else row.duplicate_telegrams,
            resets=reset_count,
            latest_reset=_instant(latest_reset),
            **gaps,
        )
    return MeterStatistics(
        id=row.id,
        meter=row.meter,
        timestamp=_instant(row.timestamp),
        dsmr_version=row.dsmr_version,
        electricity_tariff=row.electricity_tariff,
        counters={name: getattr(row, name) for name in METER_COUNTERS},
        rejected_telegrams=row.rejected_telegrams,
        latest_telegram=row.latest_telegram,
        accepted_telegrams=row.accepted_telegrams,
        duplicate_telegrams=row.duplicate_telegrams,
        resets=reset_count,
        latest_reset=_instant(latest_reset),
        **gaps,
    )


def _gap_summary(meter: str, kind: str) -> GapSummary:
    """Bounded whatever the history: a count, sums, and the LATEST_GAPS newest gaps."""
    names = _USE if kind == "electricity" else ("gas",)
    where = (GapRow.meter == meter) & (GapRow.kind == kind)
    sums = GapRow.select(peewee.fn.COUNT(GapRow.id), *(peewee.fn.SUM(getattr(GapRow, name)) for name in names))
    count, *totals = sums.where(where).tuples().first()
    latest = GapRow.select().where(where).order_by(GapRow.start.desc()).limit(LATEST_GAPS)
    return GapSummary(
        count=count,
        totals={name: _thousandths(_decimal(total or 0)) for name, total in zip(names, totals, strict=True)},
        latest=[_gap(row) for row in latest],
    )


# --- the rule the stored statistics were built with ----------------------------------------------------------

STATISTICS_RULE_SETTING = "dsmr_statistics_rule"


def _rule(zone_name: str, max_gap: int) -> str:
    return f"time_zone={zone_name} max_gap_seconds={max_gap} spread=linear"


def statistics_match(zone_name: str, max_gap: int) -> bool:
    """Whether the stored statistics were built in this zone with this gap rule."""
    return settings.get(STATISTICS_RULE_SETTING) == _rule(zone_name, max_gap)


def rebuild_all_statistics(zone_name: str, max_gap: int) -> int:
    """Rebuild every installation's statistics by the rule (after DSMR_TIME_ZONE or DSMR_MAX_GAP_SECONDS
    changed, or an upgrade) and record it. Returns how many installations were rebuilt."""
    tz = ZoneInfo(zone_name)
    with write_transaction():
        _take_ingest_lock()
        installations = statistics_meters()
        for installation in installations:
            _rebuild(installation, tz, max_gap)
        settings.put(STATISTICS_RULE_SETTING, _rule(zone_name, max_gap))
    return len(installations)


def statistics_differences(installation: Installation, tz: tzinfo, max_gap: int) -> list[str]:
    """How the stored statistics of the installation differ from a full recomputation (empty: they agree)."""
    stored = stored_statistics(installation.meter)
    expected, rollups = _expected(installation.meter, tz, max_gap)
    differences = []
    for what, have, want, label in (
        ("hour", stored.hours, expected.hours, lambda key: _instant(key).isoformat()),
        ("day", stored.days, expected.days, lambda key: key.isoformat()),
        ("gap", stored.gaps, expected.gaps, lambda key: f"{key[0]} from {_instant(key[1]).isoformat()}"),
    ):
        for key in sorted(set(have) | set(want)):
            if have.get(key) != want.get(key):
                differences.append(f"{what} {label(key)}: stored {have.get(key)}, recomputed {want.get(key)}")
    differences += readings_repo.energy_differences(readings_repo.hourly_energy(installation.joi_meter_id), rollups)
    return differences


# --- windows of statistics for the web pages (controllers/pages_dsmr.py) ------------------------------------


def statistics_days_span(meter: str) -> tuple[date, date] | None:
    """The first and the last local day that has a day statistic, or None before any."""
    first = DayRow.select(peewee.fn.MIN(DayRow.day)).where(DayRow.meter == meter).scalar()
    last = DayRow.select(peewee.fn.MAX(DayRow.day)).where(DayRow.meter == meter).scalar()
    return None if first is None else (_date(first), _date(last))


def day_statistics_between(meter: str, first: date, last: date) -> list[DayStatistic]:
    """The day statistics of first..last (inclusive), by day: one index range, no paging."""
    query = DayRow.select().where((DayRow.meter == meter) & (DayRow.day >= first) & (DayRow.day <= last))
    return [_day(row) for row in query.order_by(DayRow.day)]


def hour_statistics_between(meter: str, start: datetime, end: datetime) -> list[HourStatistic]:
    """The hour statistics of the hours starting in [start, end), by hour."""
    query = HourRow.select().where(
        (HourRow.meter == meter) & (HourRow.hour_start >= _epoch(start)) & (HourRow.hour_start < _epoch(end))
    )
    return [_hour(row) for row in query.order_by(HourRow.hour_start)]
