"""DSMR-reader readings and the statistics kept current beside them, supplier prices, meters and installations.

An installation (one electricity meter with its gas meter) owns one API key (only its hash is stored) and
one meter: every row of its readings, statistics, contracts and meter statistics is stored under that meter.

Every write runs in one transaction that first takes the DSMR ingest lock (SQLite: the write lock itself;
PostgreSQL: a row lock), so recomputing statistics never interleaves with another write. A new reading only
recomputes the few local hours it can change (`domain.dsmr.hours_to_refresh`), from the meter positions at
those hours' boundaries (plus the readings each side of a reset, flagged on the reading that follows it),
then the days those hours lie in, then the meter's hourly kWh in `energy_hours` for the JOI price plans.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import NamedTuple

import peewee

from domain.dsmr import (
    DEFAULT_INSTALLATION,
    METER_COUNTERS,
    SECOND,
    DsmrReading,
    Installation,
    PageRequest,
    TelegramFacts,
    TimeWindow,
    boundaries_of,
    check_telegram_meter,
    day_from_hours,
    day_of_hour,
    hours_to_refresh,
    local_hour_spans,
    repriced,
)
from domain.errors import Conflict, InvalidInput, NotFound
from domain.statistics import (
    PRICE_FIELDS,
    DayStatistic,
    EnergyPrices,
    HourStatistic,
    MeterPosition,
    day_bounds,
    hour_statistics,
    is_reset,
)
from repository import readings as readings_repo
from repository.db import BaseModel, is_sqlite, write_transaction

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
    return _reading(row).position


_USE = ("electricity1", "electricity2", "electricity1_returned", "electricity2_returned")
_COSTS = ("electricity1_cost", "electricity2_cost", "gas_cost", "fixed_cost", "total_cost")


def _hour(row: HourRow) -> HourStatistic:
    return HourStatistic(
        hour_start=_instant(row.hour_start), gas=row.gas, **{name: getattr(row, name) for name in _USE}
    )


def _day(row: DayRow) -> DayStatistic:
    return DayStatistic(day=row.day, gas=row.gas, **{name: getattr(row, name) for name in (*_USE, *_COSTS)})


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


def installation_by_key_hash(key_hash: str) -> Installation | None:
    row = InstallationRow.get_or_none(InstallationRow.key_hash == key_hash)
    return None if row is None else _installation(row)


def installation_named(name: str) -> Installation | None:
    row = InstallationRow.get_or_none(InstallationRow.name == name)
    return None if row is None else _installation(row)


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
                "Replace it with --rotate (make dsmr-key ROTATE=1); the old key then stops working."
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
    row = InstallationRow.get(InstallationRow.name == installation.name)
    if row.equipment_id is not None:
        # Checked again under the lock: another telegram may have named the meter since the caller looked.
        check_telegram_meter(_installation(row), equipment_id)
        return _installation(row)
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
    InstallationRow.update(equipment_id=equipment_id).where(InstallationRow.id == row.id).execute()
    # The hourly kWh the price plans read move to the id the meter is known by from now on.
    readings_repo.rename_hourly_energy(installation.meter, equipment_id)
    return replace(_installation(row), equipment_id=equipment_id)


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
) -> Stored:
    """Store a reading of the installation's meter once per instant and bring the statistics it changes up
    to date, atomically. `telegram_meter` is the meter a telegram named: the installation's first one makes
    it the installation's equipment id (refused when another installation or a JOI meter has it).

    A reading the meter already has at that instant, with the same values, is kept as it was (`created` is
    False; a telegram counts as a duplicate); other values for that instant are refused with Conflict."""
    reading = replace(reading, meter=installation.meter)
    with write_transaction():
        _take_ingest_lock()
        _ensure_meter(installation.meter)
        if telegram_meter:
            installation = _claim_equipment_id(installation, telegram_meter)
        existing = ReadingRow.get_or_none(
            (ReadingRow.meter == reading.meter) & (ReadingRow.timestamp == _epoch(reading.timestamp))
        )
        if existing is not None:
            kept = _reading(existing)
            if not kept.same_values(reading):
                raise Conflict(
                    f"meter {installation.joi_meter_id} already has another reading at "
                    f"{reading.timestamp.isoformat()}; nothing was changed"
                )
            if telegram is not None:
                _count_telegram(reading.meter, telegram, duplicate=True)
            return Stored(Identified(existing.id, kept), created=False)
        epoch = _epoch(reading.timestamp)
        previous = _neighbour(reading.meter, epoch, before=True)
        following = _neighbour(reading.meter, epoch, before=False)
        reset = previous is not None and is_reset(_position(previous), reading.position)
        row_id = ReadingRow.insert(**_reading_columns(reading), reset=reset).execute()
        if following is not None:
            _flag_reset(following, reading.position)
        MeterRow.update(reading_count=MeterRow.reading_count + 1).where(MeterRow.meter == reading.meter).execute()
        _refresh_after(installation, row_id, reading, following, tz)
        if telegram is not None:
            _count_telegram(reading.meter, telegram, duplicate=False)
        return Stored(Identified(row_id, reading), created=True)


def _neighbour(meter: str, epoch: int, *, before: bool) -> ReadingRow | None:
    side = ReadingRow.timestamp < epoch if before else ReadingRow.timestamp > epoch
    order = ReadingRow.timestamp.desc() if before else ReadingRow.timestamp.asc()
    return ReadingRow.select().where((ReadingRow.meter == meter) & side).order_by(order).limit(1).first()


def _flag_reset(row: ReadingRow, previous: MeterPosition | None) -> None:
    """Whether the interval ending at `row` is a reset, now that `previous` is the reading before it."""
    reset = previous is not None and is_reset(previous, _position(row))
    if reset != row.reset:
        ReadingRow.update(reset=reset).where(ReadingRow.id == row.id).execute()


def _ensure_meter(meter: str) -> None:
    MeterRow.insert(meter=meter).on_conflict_ignore().execute()


def _count_telegram(meter: str, telegram: TelegramFacts, *, duplicate: bool) -> None:
    counter = MeterRow.duplicate_telegrams if duplicate else MeterRow.accepted_telegrams
    MeterRow.update({counter: counter + 1}).where(MeterRow.meter == meter).execute()
    # The statistics describe the meter's newest telegram; a late one only counts.
    newest = MeterRow.timestamp.is_null() | (MeterRow.timestamp <= _epoch(telegram.timestamp))
    MeterRow.update(
        timestamp=_epoch(telegram.timestamp),
        dsmr_version=telegram.dsmr_version,
        electricity_tariff=telegram.electricity_tariff,
        latest_telegram=telegram.text,
        **{name: telegram.counters.get(name) for name in METER_COUNTERS},
    ).where((MeterRow.meter == meter) & newest).execute()


def _refresh_after(
    installation: Installation, row_id: int, reading: DsmrReading, following: ReadingRow | None, tz: tzinfo
) -> None:
    instants = [reading.timestamp]
    # Only a gas capture no other reading carried changes gas figures. A gas meter that stops reporting
    # repeats an ever older capture; refreshing back to it on every telegram would grow without bound.
    if reading.extra_device_timestamp is not None and not _gas_capture_known(reading, row_id):
        instants.append(reading.extra_device_timestamp)
    next_instant = None if following is None else _instant(following.timestamp)
    refresh_hours(installation, hours_to_refresh(instants, next_instant, tz), tz)


def _gas_capture_known(reading: DsmrReading, row_id: int) -> bool:
    carried = (
        (ReadingRow.meter == reading.meter)
        & (ReadingRow.extra_device_timestamp == _epoch(reading.extra_device_timestamp))
        & (ReadingRow.id != row_id)
    )
    return ReadingRow.select(ReadingRow.id).where(carried).limit(1).exists()


def refresh_hours(installation: Installation, spans: Sequence[tuple[datetime, datetime]], tz: tzinfo) -> None:
    """Recompute the meter's statistics of these local hours and of the days they lie in, and its hourly kWh
    for the price plans. Call inside a write transaction."""
    if not spans:
        return
    meter = installation.meter
    days = sorted({day_of_hour(start, tz) for start, _ in spans})
    computed = {
        statistic.hour_start: statistic
        for statistic in hour_statistics(positions_for_spans(meter, spans), tz, days=days)
    }
    starts = [start for start, _ in spans]
    for start in starts:
        _put_hour(meter, start, computed.get(start))
    readings_repo.replace_hourly_energy(
        installation.joi_meter_id,
        {
            _epoch(start): float(computed[start].electricity1 + computed[start].electricity2)
            for start in starts
            if start in computed
        },
        clear=[_epoch(start) for start in starts],
    )
    _refresh_days(meter, days, tz)


def _refresh_days(meter: str, days: Iterable[date], tz: tzinfo) -> None:
    contracts = energy_prices(meter)
    for day in days:
        _put_day(meter, day, day_from_hours(day, _hours_of_day(meter, day, tz), tz, contracts))


def positions_for_spans(meter: str, spans: Sequence[tuple[datetime, datetime]]) -> list[MeterPosition]:
    """The meter positions that decide the statistics of these hours: those of `positions_at`, and, when a
    reset lies inside them, every reading inside them (one range read; resets are rare). Across a reset
    nothing is booked and every other stretch only rises, so boundary positions book what all readings
    would wherever no reset lies between them."""
    positions = {position.timestamp: position for position in positions_at(meter, boundaries_of(spans))}
    for start, end in _runs(spans):
        inside = (
            (ReadingRow.meter == meter) & (ReadingRow.timestamp > _epoch(start)) & (ReadingRow.timestamp <= _epoch(end))
        )
        if ReadingRow.select(ReadingRow.id).where(inside & (ReadingRow.reset == True)).exists():  # noqa: E712
            for row in ReadingRow.select().where(inside):
                positions.setdefault(_instant(row.timestamp), _position(row))
    return list(positions.values())


def _runs(spans: Sequence[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Consecutive hours joined: (start of the first, end of the last) of each run."""
    runs: list[tuple[datetime, datetime]] = []
    for start, end in sorted(spans):
        if runs and runs[-1][1] == start:
            runs[-1] = (runs[-1][0], end)
        else:
            runs.append((start, end))
    return runs


def positions_at(meter: str, boundaries: Iterable[datetime]) -> list[MeterPosition]:
    """The meter positions that decide the statistics between these instants: at each boundary the last
    reading at or before it, and the reading with the last gas capture at or before it (a later telegram wins
    among those with the same capture); and when a boundary has none, the meter's first reading (and first
    gas capture), where its first hour starts. Statistics measure from boundary to boundary, so these are
    enough."""
    rows: dict[int, ReadingRow] = {}
    first_needed = first_gas_needed = False
    for boundary in boundaries:
        epoch = _epoch(boundary)
        last = (
            ReadingRow.select()
            .where((ReadingRow.meter == meter) & (ReadingRow.timestamp <= epoch))
            .order_by(ReadingRow.timestamp.desc())
            .limit(1)
            .first()
        )
        last_gas = (
            ReadingRow.select()
            .where((ReadingRow.meter == meter) & (ReadingRow.extra_device_timestamp <= epoch))
            .order_by(ReadingRow.extra_device_timestamp.desc(), ReadingRow.timestamp.desc())
            .limit(1)
            .first()
        )
        first_needed |= last is None
        first_gas_needed |= last_gas is None
        for row in (last, last_gas):
            if row is not None:
                rows[row.id] = row
    if first_needed:
        first = ReadingRow.select().where(ReadingRow.meter == meter).order_by(ReadingRow.timestamp).limit(1).first()
        if first is not None:
            rows[first.id] = first
    if first_gas_needed:
        first_gas = (
            ReadingRow.select()
            .where((ReadingRow.meter == meter) & ReadingRow.extra_device_timestamp.is_null(False))
            .order_by(ReadingRow.extra_device_timestamp, ReadingRow.timestamp.desc())
            .limit(1)
            .first()
        )
        if first_gas is not None:
            rows[first_gas.id] = first_gas
    return [_position(row) for row in rows.values()]


def _hours_of_day(meter: str, day: date, tz: tzinfo) -> list[HourStatistic]:
    start, end = day_bounds(day, tz)
    query = HourRow.select().where(
        (HourRow.meter == meter) & (HourRow.hour_start >= _epoch(start)) & (HourRow.hour_start < _epoch(end))
    )
    return [_hour(row) for row in query]


def _put_hour(meter: str, start: datetime, statistic: HourStatistic | None) -> None:
    where = (HourRow.meter == meter) & (HourRow.hour_start == _epoch(start))
    if statistic is None:
        HourRow.delete().where(where).execute()
        return
    values = {name: getattr(statistic, name) for name in (*_USE, "gas")}
    HourRow.insert(meter=meter, hour_start=_epoch(start), **values).on_conflict(
        conflict_target=[HourRow.meter, HourRow.hour_start], update=values
    ).execute()


def _put_day(meter: str, day: date, statistic: DayStatistic | None) -> None:
    if statistic is None:
        DayRow.delete().where((DayRow.meter == meter) & (DayRow.day == day)).execute()
        return
    values = {name: getattr(statistic, name) for name in (*_USE, "gas", *_COSTS)}
    DayRow.insert(meter=meter, day=day, **values).on_conflict(
        conflict_target=[DayRow.meter, DayRow.day], update=values
    ).execute()


# --- removing test data --------------------------------------------------------------------------------------


def delete_readings(name: str, window: TimeWindow, tz: tzinfo) -> int:
    """Delete the installation's readings in the window (inclusive; an open side reaches the first or last
    reading) and recompute what they decided: the hours and days they lay in, the hour of the reading after
    the window (which now counts from the one before it), its reset flag, and the JOI hourly kWh. Returns
    how many readings were deleted."""
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
        # Hours wholly inside [low, high] held deleted readings only: their rows go at once. The hours holding
        # low and high, and the hour of the reading after the window (which now counts from the one before
        # it), are recomputed; then every day from the first to the last of them.
        HourRow.delete().where(
            (HourRow.meter == meter) & (HourRow.hour_start >= low) & (HourRow.hour_start + 3600 <= high)
        ).execute()
        readings_repo.delete_hourly_energy(installation.joi_meter_id, low, high - 3600)
        touched = [_instant(low), _instant(high)] + ([] if following is None else [_instant(following.timestamp)])
        first_day = day_of_hour(touched[0] - SECOND, tz)
        last_day = day_of_hour(touched[-1], tz)
        spans = [
            (start, end)
            for day in _days(first_day, last_day)
            for start, end in local_hour_spans(day, tz)
            if any(start < moment <= end for moment in touched)
        ]
        refresh_hours(installation, spans, tz)
        _refresh_days(meter, _days(first_day, last_day), tz)
        return deleted


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def delete_installation(name: str) -> int:
    """Delete the installation with its key, readings, statistics, contracts, meter statistics and JOI
    hourly kWh. Returns the number of readings deleted."""
    with write_transaction():
        _take_ingest_lock()
        installation = _installation(_must_exist(name))
        meter = installation.meter
        deleted = ReadingRow.delete().where(ReadingRow.meter == meter).execute()
        for model in (HourRow, DayRow, PriceRow, MeterRow):
            model.delete().where(model.meter == meter).execute()
        readings_repo.delete_hourly_energy(installation.joi_meter_id)
        InstallationRow.delete().where(InstallationRow.name == name).execute()
        return deleted


# --- energy supplier prices ----------------------------------------------------------------------------------


def energy_prices(meter: str) -> list[EnergyPrices]:
    query = PriceRow.select().where(PriceRow.meter == meter).order_by(PriceRow.start, PriceRow.id)
    return [_prices(row) for row in query]


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


def positions_for_day(meter: str, day: date, tz: tzinfo) -> list[MeterPosition]:
    """What `domain.statistics.consumption_today` needs of a day: the positions at its hour boundaries (the
    last one before it included) and its first reading, for a meter that has none before the day."""
    start, end = day_bounds(day, tz)
    positions = positions_at(meter, boundaries_of(local_hour_spans(day, tz)))
    first = (
        ReadingRow.select()
        .where(
            (ReadingRow.meter == meter) & (ReadingRow.timestamp > _epoch(start)) & (ReadingRow.timestamp <= _epoch(end))
        )
        .order_by(ReadingRow.timestamp)
        .limit(1)
        .first()
    )
    if first is not None:
        positions.append(_position(first))
    return positions


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
    )
