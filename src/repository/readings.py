"""Meter readings (kW samples) and the hourly energy rollups kept up to date beside them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from zoneinfo import ZoneInfo

import peewee

from domain.tariffs import offset_segments, weekday_at
from domain.usage import HOUR, Reading, affected_hour_ranges, energy_by_hour, hour_of
from repository import settings
from repository.db import BaseModel, database, write_transaction

# Rows per INSERT statement: 3 parameters a row stays far below every SQLite build's variable limit.
CHUNK_ROWS = 300
ROLLUP_GAP_SETTING = "rollup_max_gap_seconds"
WEEK = 7 * 86_400


class MeterReading(BaseModel):
    meter_id = peewee.CharField(max_length=128)
    time = peewee.BigIntegerField()
    reading = peewee.DoubleField()

    class Meta:
        table_name = "meter_readings"
        primary_key = peewee.CompositeKey("meter_id", "time")


class EnergyHour(BaseModel):
    """kWh a meter used in one UTC hour, so plans are priced from rollups, not from raw samples."""

    meter_id = peewee.CharField(max_length=128)
    hour_start = peewee.BigIntegerField()
    kwh = peewee.DoubleField()

    class Meta:
        table_name = "energy_hours"
        primary_key = peewee.CompositeKey("meter_id", "hour_start")


def _chunks(rows: Sequence, size: int = CHUNK_ROWS):
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def store(meter_id: str, readings: Sequence[Reading], max_gap: int) -> None:
    """Upsert the samples (a repeated time replaces the value) and refresh the hours they touch, atomically."""
    rows = [(meter_id, reading.time, reading.reading) for reading in readings]
    fields = [MeterReading.meter_id, MeterReading.time, MeterReading.reading]
    with write_transaction():
        for chunk in _chunks(rows):
            MeterReading.insert_many(chunk, fields=fields).on_conflict(
                conflict_target=[MeterReading.meter_id, MeterReading.time],
                preserve=[MeterReading.reading],
            ).execute()
        for first_hour, last_hour in affected_hour_ranges((r.time for r in readings), max_gap):
            _refresh_hours(meter_id, first_hour, last_hour, max_gap)


def _refresh_hours(meter_id: str, first_hour: int, last_hour: int, max_gap: int) -> None:
    start, end = first_hour, last_hour + HOUR
    samples = samples_between(meter_id, start - max_gap, end + max_gap)
    energy = energy_by_hour(samples, max_gap, start, end)
    EnergyHour.delete().where(
        (EnergyHour.meter_id == meter_id) & EnergyHour.hour_start.between(first_hour, last_hour)
    ).execute()
    rows = [(meter_id, hour, kwh) for hour, kwh in sorted(energy.items())]
    for chunk in _chunks(rows):
        EnergyHour.insert_many(chunk, fields=[EnergyHour.meter_id, EnergyHour.hour_start, EnergyHour.kwh]).execute()


def samples_between(meter_id: str, start: int | None = None, end: int | None = None) -> list[Reading]:
    """The meter's samples with start <= time <= end, sorted by time."""
    query = MeterReading.select(MeterReading.time, MeterReading.reading).where(MeterReading.meter_id == meter_id)
    if start is not None:
        query = query.where(MeterReading.time >= start)
    if end is not None:
        query = query.where(MeterReading.time <= end)
    return [Reading(time, value) for time, value in query.order_by(MeterReading.time).tuples()]


def period(meter_id: str) -> tuple[int, int] | None:
    """First and last sample time of the meter, or None when it has none."""
    first, last = (
        MeterReading.select(peewee.fn.MIN(MeterReading.time), peewee.fn.MAX(MeterReading.time))
        .where(MeterReading.meter_id == meter_id)
        .tuples()
        .get()
    )
    return None if first is None else (first, last)


def weekday_energy(
    meter_id: str, zone_names: Iterable[str], start: int, end: int, max_gap: int
) -> dict[str, dict[int, float]]:
    """kWh in [start, end) per local weekday (Monday = 0) for each zone.

    Whole hours come from the rollups, summed in SQL; the partial hours at the window's edges are
    integrated from the raw samples around them.
    """
    first_full, end_full = hour_of(start + HOUR - 1), hour_of(end)
    if first_full >= end_full:
        edges, first_full, end_full = [(start, end)], None, None
    else:
        edges = [(start, first_full), (end_full, end)]
    edge_energy = {}
    for edge_start, edge_end in edges:
        if edge_start < edge_end:
            samples = samples_between(meter_id, edge_start - max_gap, edge_end + max_gap)
            for hour, kwh in energy_by_hour(samples, max_gap, edge_start, edge_end).items():
                edge_energy[max(hour, edge_start)] = kwh
    result = {}
    for name in set(zone_names):
        zone = ZoneInfo(name)
        by_weekday = {} if first_full is None else _rollup_weekdays(meter_id, zone, first_full, end_full)
        for moment, kwh in edge_energy.items():
            weekday = weekday_at(zone, moment)
            by_weekday[weekday] = by_weekday.get(weekday, 0.0) + kwh
        result[name] = by_weekday
    return result


def _rollup_weekdays(meter_id: str, zone: ZoneInfo, start: int, end: int) -> dict[int, float]:
    segments = offset_segments(zone, start, end)
    offset = segments[-1].offset
    if len(segments) > 1:
        offset = peewee.Case(
            None, [(EnergyHour.hour_start < segment.end, segment.offset) for segment in segments[:-1]], offset
        )
    # Epoch day 0 was a Thursday (weekday 3); adding a whole week keeps the dividend positive.
    # Integer division on both engines; the modulo is spelled out because peewee reads `%` as a pattern.
    day = (EnergyHour.hour_start + offset + WEEK) / 86_400 + 3
    weekday = day - (day / 7) * 7
    query = (
        EnergyHour.select(weekday.alias("weekday"), peewee.fn.SUM(EnergyHour.kwh))
        .where((EnergyHour.meter_id == meter_id) & (EnergyHour.hour_start >= start) & (EnergyHour.hour_start < end))
        .group_by(peewee.SQL("1"))
        .tuples()
    )
    return {int(day): kwh for day, kwh in query}


def rollups_match(max_gap: int) -> bool:
    return settings.get(ROLLUP_GAP_SETTING) == str(max_gap)


def rebuild_rollups(max_gap: int) -> int:
    """Recompute every meter's hourly energy (after the gap rule changed). Returns meters rebuilt."""
    meters = [row[0] for row in MeterReading.select(MeterReading.meter_id).distinct().tuples()]
    with database.atomic():
        EnergyHour.delete().execute()
        for meter_id in meters:
            bounds = period(meter_id)
            _refresh_hours(meter_id, hour_of(bounds[0]), hour_of(bounds[1]), max_gap)
        settings.put(ROLLUP_GAP_SETTING, str(max_gap))
    return len(meters)
