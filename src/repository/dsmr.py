"""DSMR-reader readings and the statistics kept current beside them, supplier prices, meters and the API key.

Every write runs in one transaction that first takes the DSMR ingest lock (SQLite: the write lock itself;
PostgreSQL: a row lock), so recomputing statistics never interleaves with another write. A new reading only
recomputes the few local hours it can change (`domain.dsmr.hours_to_refresh`), from the meter positions at
those hours' boundaries, then the days those hours lie in, then the installation totals of the same hours
and days (rows with meter = ""), then the meter's hourly kWh in `energy_hours` for the JOI price plans.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import NamedTuple

import peewee

from domain.dsmr import (
    METER_COUNTERS,
    DsmrReading,
    PageRequest,
    TelegramFacts,
    TimeWindow,
    boundaries_of,
    day_from_hours,
    day_of_hour,
    hours_to_refresh,
    installation_day,
    installation_hour,
    local_hour_spans,
    repriced,
)
from domain.statistics import (
    PRICE_FIELDS,
    DayStatistic,
    EnergyPrices,
    HourStatistic,
    MeterPosition,
    day_bounds,
    hour_statistics,
)
from repository import readings as readings_repo
from repository import settings
from repository.db import BaseModel, is_sqlite, write_transaction

INSTALLATION = ""  # the meter column of the installation totals
API_KEY_SETTING = "dsmr_api_key_hash"
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

    class Meta:
        table_name = "dsmr_meters"


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


# --- conversions ---------------------------------------------------------------------------------------------


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _instant(epoch: int | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


_READING_VALUES = [field.name for field in ReadingRow._meta.sorted_fields if field.name not in ("id", "meter")]


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


# --- the API key ---------------------------------------------------------------------------------------------


def api_key_hash() -> str | None:
    return settings.get(API_KEY_SETTING)


def replace_api_key_hash(key_hash: str) -> None:
    with write_transaction():
        settings.put(API_KEY_SETTING, key_hash)


# --- writing readings ----------------------------------------------------------------------------------------


def _take_ingest_lock() -> None:
    """Serialise DSMR writes: SQLite's write transaction already is exclusive; PostgreSQL locks one row."""
    if not is_sqlite():
        CounterRow.select().where(CounterRow.name == "ingest").for_update().execute()


def known_meters() -> list[str]:
    return [meter for (meter,) in MeterRow.select(MeterRow.meter).order_by(MeterRow.meter).tuples()]


def count_rejected_telegram() -> None:
    with write_transaction():
        CounterRow.update(value=CounterRow.value + 1).where(CounterRow.name == "rejected_telegrams").execute()


def store_reading(reading: DsmrReading, tz: tzinfo, telegram: TelegramFacts | None = None) -> Stored:
    """Store a reading once per (meter, timestamp) and bring the statistics it changes up to date, atomically.

    A reading the meter already has at that instant is kept as it was (`created` is False)."""
    with write_transaction():
        _take_ingest_lock()
        _ensure_meter(reading.meter)
        existing = ReadingRow.get_or_none(
            (ReadingRow.meter == reading.meter) & (ReadingRow.timestamp == _epoch(reading.timestamp))
        )
        if existing is not None:
            if telegram is not None:
                _count_telegram(reading.meter, telegram, duplicate=True)
            return Stored(Identified(existing.id, _reading(existing)), created=False)
        row_id = ReadingRow.insert(**_reading_columns(reading)).execute()
        MeterRow.update(reading_count=MeterRow.reading_count + 1).where(MeterRow.meter == reading.meter).execute()
        _refresh_after(row_id, reading, tz)
        if telegram is not None:
            _count_telegram(reading.meter, telegram, duplicate=False)
        return Stored(Identified(row_id, reading), created=True)


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


def _next_timestamp(meter: str, after: int) -> int | None:
    row = (
        ReadingRow.select(ReadingRow.timestamp)
        .where((ReadingRow.meter == meter) & (ReadingRow.timestamp > after))
        .order_by(ReadingRow.timestamp)
        .limit(1)
        .tuples()
        .first()
    )
    return row[0] if row else None


def _refresh_after(row_id: int, reading: DsmrReading, tz: tzinfo) -> None:
    instants = [reading.timestamp]
    # Only a gas capture no other reading carried changes gas figures. A gas meter that stops reporting
    # repeats an ever older capture; refreshing back to it on every telegram would grow without bound.
    if reading.extra_device_timestamp is not None and not _gas_capture_known(reading, row_id):
        instants.append(reading.extra_device_timestamp)
    following = _instant(_next_timestamp(reading.meter, _epoch(reading.timestamp)))
    refresh_hours(reading.meter, hours_to_refresh(instants, following, tz), tz)


def _gas_capture_known(reading: DsmrReading, row_id: int) -> bool:
    carried = (
        (ReadingRow.meter == reading.meter)
        & (ReadingRow.extra_device_timestamp == _epoch(reading.extra_device_timestamp))
        & (ReadingRow.id != row_id)
    )
    return ReadingRow.select(ReadingRow.id).where(carried).limit(1).exists()


def refresh_hours(meter: str, spans: Sequence[tuple[datetime, datetime]], tz: tzinfo) -> None:
    """Recompute the meter's statistics of these local hours, of the days they lie in, the installation's
    totals of both, and the meter's hourly kWh for the price plans. Call inside a write transaction."""
    days = sorted({day_of_hour(start, tz) for start, _ in spans})
    computed = {
        statistic.hour_start: statistic
        for statistic in hour_statistics(positions_at(meter, boundaries_of(spans)), tz, days=days)
    }
    starts = [start for start, _ in spans]
    for start in starts:
        _put_hour(meter, start, computed.get(start))
    readings_repo.replace_hourly_energy(
        meter,
        {
            _epoch(start): float(computed[start].electricity1 + computed[start].electricity2)
            for start in starts
            if start in computed
        },
        clear=[_epoch(start) for start in starts],
    )
    contracts = energy_prices()
    for day in days:
        _put_day(meter, day, day_from_hours(day, _hours_of_day(meter, day, tz), tz, contracts))
    _refresh_installation(starts, days)


def positions_at(meter: str, boundaries: Iterable[datetime]) -> list[MeterPosition]:
    """The meter positions that decide the statistics between these instants: at each boundary the last
    reading at or before it, and the reading with the last gas capture at or before it (a later telegram wins
    among those with the same capture). Statistics measure from boundary to boundary, so these are enough."""
    rows: dict[int, ReadingRow] = {}
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
        for row in (last, last_gas):
            if row is not None:
                rows[row.id] = row
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


def _refresh_installation(hour_starts: Sequence[datetime], days: Sequence[date]) -> None:
    """The installation rows (meter "") of these hours and days: every meter's rows added up."""
    by_hour: dict[int, list[HourStatistic]] = {_epoch(start): [] for start in hour_starts}
    for row in HourRow.select().where((HourRow.meter != INSTALLATION) & HourRow.hour_start.in_(list(by_hour))):
        by_hour[row.hour_start].append(_hour(row))
    for epoch, meters in by_hour.items():
        start = _instant(epoch)
        _put_hour(INSTALLATION, start, installation_hour(start, meters) if meters else None)
    by_day: dict[date, list[DayStatistic]] = {day: [] for day in days}
    for row in DayRow.select().where((DayRow.meter != INSTALLATION) & DayRow.day.in_(list(by_day))):
        by_day[row.day].append(_day(row))
    for day, meters in by_day.items():
        _put_day(INSTALLATION, day, installation_day(day, meters) if meters else None)


# --- energy supplier prices ----------------------------------------------------------------------------------


def energy_prices() -> list[EnergyPrices]:
    return [_prices(row) for row in PriceRow.select().order_by(PriceRow.start, PriceRow.id)]


def add_energy_prices(contract: EnergyPrices, tz: tzinfo) -> Identified:
    """Store a contract and reprice the stored days it covers (every meter and the installation)."""
    with write_transaction():
        _take_ingest_lock()
        row_id = PriceRow.insert(
            start=contract.start,
            end=contract.end,
            description=contract.description,
            **{name: getattr(contract, name) for name in PRICE_FIELDS},
        ).execute()
        contracts = energy_prices()
        covered = (DayRow.meter != INSTALLATION) & (DayRow.day >= contract.start)
        if contract.end is not None:
            covered &= DayRow.day <= contract.end
        days = set()
        for row in DayRow.select().where(covered):
            _put_day(row.meter, row.day, repriced(_day(row), tz, contracts))
            days.add(row.day)
        _refresh_installation([], sorted(days))
        return Identified(row_id, contract)


def energy_prices_page(page: PageRequest) -> tuple[int, list[Identified]]:
    rows = _page(PriceRow.select(), [PriceRow.start, PriceRow.id], page, _price_key_to_db)
    return PriceRow.select().count(), [Identified(row.id, _prices(row)) for row in rows]


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


def readings_page(meter: str | None, window: TimeWindow, page: PageRequest) -> tuple[int, list[Identified]]:
    """The readings of one meter, or of every meter (in (timestamp, id) order), in the window."""
    query = ReadingRow.select()
    if meter is not None:
        query = query.where(ReadingRow.meter == meter)
    if window.start is not None:
        query = query.where(ReadingRow.timestamp >= _epoch(window.start))
    if window.end is not None:
        query = query.where(ReadingRow.timestamp <= _epoch(window.end))
    count = _reading_count(meter) if window.start is None and window.end is None else _count(query)
    if page.offset >= count and page.after is None and page.before is None:
        return count, []
    key = [ReadingRow.timestamp] if meter is not None else [ReadingRow.timestamp, ReadingRow.id]
    rows = _page(query, key, page)
    return count, [Identified(row.id, _reading(row)) for row in rows]


def _reading_count(meter: str | None) -> int:
    """Without a time window the count is kept per meter: no scan of millions of index entries per page."""
    query = MeterRow.select(peewee.fn.COALESCE(peewee.fn.SUM(MeterRow.reading_count), 0))
    if meter is not None:
        query = query.where(MeterRow.meter == meter)
    return int(query.scalar())


def reading_key(item: Identified, whole_installation: bool) -> tuple[int, ...]:
    timestamp = _epoch(item.value.timestamp)
    return (timestamp, item.id) if whole_installation else (timestamp,)


def hour_statistics_page(meter: str | None, window: TimeWindow, page: PageRequest) -> tuple[int, list[Identified]]:
    query = HourRow.select().where(HourRow.meter == (INSTALLATION if meter is None else meter))
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
    meter: str | None, first: date | None, last: date | None, page: PageRequest
) -> tuple[int, list[Identified]]:
    query = DayRow.select().where(DayRow.meter == (INSTALLATION if meter is None else meter))
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


def meter_statistics(meter: str | None) -> MeterStatistics | None:
    """The statistics of `meter`, or of the meter that sent the newest telegram; None for an unknown meter.

    Rejected telegrams count for the whole installation: a telegram that failed cannot be trusted to name
    its meter."""
    rejected = CounterRow.get_by_id("rejected_telegrams").value
    if meter is not None:
        row = MeterRow.get_or_none(MeterRow.meter == meter)
        if row is None:
            return None
    else:
        row = MeterRow.select().order_by(MeterRow.timestamp.desc(nulls="LAST"), MeterRow.id.desc()).limit(1).first()
    if row is None:
        return MeterStatistics(None, None, None, None, None, dict.fromkeys(METER_COUNTERS), rejected, None, 0, 0)
    return MeterStatistics(
        id=row.id,
        meter=row.meter,
        timestamp=_instant(row.timestamp),
        dsmr_version=row.dsmr_version,
        electricity_tariff=row.electricity_tariff,
        counters={name: getattr(row, name) for name in METER_COUNTERS},
        rejected_telegrams=rejected,
        latest_telegram=row.latest_telegram,
        accepted_telegrams=row.accepted_telegrams,
        duplicate_telegrams=row.duplicate_telegrams,
    )
