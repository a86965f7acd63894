"""Bulk writes and reads of JOI kW samples for `cli.py import-readings` / `export-readings`.

An import adds samples and never replaces one: a (meter, time) stored already keeps its reading (ON CONFLICT
DO NOTHING), so a file imported twice, or an interrupted import run again, adds nothing twice. The hourly
rollups of every hour the new samples can change are recomputed from the stored and the new samples together,
with the same trapezoids as POST /readings/store (domain.imports.bulk_hour_rollups sums them with C loops), so
they equal `verify-statistics`' recomputation.

SQLite gets multi-row INSERT … SELECT … FROM (VALUES …) statements of two parameters a row (the meter's key is
a literal), which is about twice as fast as executemany; PostgreSQL gets COPY (into a temporary table and one
INSERT … SELECT … ON CONFLICT when a new sample may meet a stored one).
"""

from __future__ import annotations

import bisect
import io
from collections.abc import Iterator
from dataclasses import dataclass

from domain.imports import bulk_hour_rollups
from domain.usage import HOUR, affected_hour_ranges
from repository import sample_pages
from repository.db import database, is_sqlite
from repository.readings import JOI, _lock_meter, _meter_key, _new_meter_key, _sqlite_max_variables

_SQLITE_ROWS_PER_STATEMENT = max(1, min(2000, _sqlite_max_variables() // 2))
EXPORT_PAGE = 50_000


@dataclass(frozen=True)
class ImportedSamples:
    stored: int  # new samples written
    present: int  # samples whose (meter, time) was stored already (left as stored)
    differing: int  # of those, how many the file gave another reading


def import_samples(meter_id: str, times: list[int], values: list[float], max_gap: int) -> ImportedSamples:
    """Add a meter's samples (times ascending and unique) and recompute the rollups they change, in the
    caller's write transaction (db.write_transaction())."""
    if not times:
        return ImportedSamples(0, 0, 0)
    _lock_meter(meter_id)
    meter_key = _meter_key(meter_id)
    if meter_key is None:
        meter_key = _new_meter_key(meter_id)
    windows = []
    differing = 0
    for first_hour, last_hour in affected_hour_ranges(times, max_gap):
        # Every interval that carries energy into these hours has both ends in this window.
        low, high = first_hour - max_gap, last_hour + HOUR + max_gap
        stored = _stored_samples(meter_key, low, high)
        windows.append((first_hour, last_hour, low, high, stored))
        differing += _differing(stored, times, values)
    # The windows cover every new time: with nothing stored in them, no new sample can meet a stored one.
    clash_possible = any(stored for *_, stored in windows)
    inserted = _insert_samples(meter_key, times, values, clash_possible)
    if not inserted:  # every sample was stored already: the samples, so their rollups, are as they were
        return ImportedSamples(0, len(times), differing)
    sample_pages.forget(meter_key, times[0])
    for first_hour, last_hour, low, high, stored in windows:
        merged_times, merged_values = _merged(stored, times, values, low, high)
        energy = bulk_hour_rollups(merged_times, merged_values, max_gap, first_hour, last_hour + HOUR)
        _replace_rollups(meter_id, first_hour, last_hour, energy)
    return ImportedSamples(inserted, len(times) - inserted, differing)


def _stored_samples(meter_key: int, low: int, high: int) -> list[tuple[int, float]]:
    p = database.param
    return database.execute_sql(
        f'SELECT "time", reading FROM meter_samples WHERE meter_key = {p} AND "time" >= {p} AND "time" <= {p}'
        ' ORDER BY "time"',
        (meter_key, low, high),
    ).fetchall()


def _differing(stored: list[tuple[int, float]], times: list[int], values: list[float]) -> int:
    """How many stored samples the new ones give another reading (those keep the stored reading)."""
    count = 0
    for time, reading in stored:
        index = bisect.bisect_left(times, time)
        if index < len(times) and times[index] == time and values[index] != reading:
            count += 1
    return count


def _merged(
    stored: list[tuple[int, float]], times: list[int], values: list[float], low: int, high: int
) -> tuple[list[int], list[float]]:
    """The samples in [low, high] as stored after the insert: the stored ones, and the new ones at other times."""
    start, stop = bisect.bisect_left(times, low), bisect.bisect_right(times, high)
    new_times, new_values = times[start:stop], values[start:stop]
    if not stored:
        return new_times, new_values
    stored_times = [time for time, _ in stored]
    if new_times:
        before = bisect.bisect_left(stored_times, new_times[0])
        after = bisect.bisect_right(stored_times, new_times[-1])
        if before == after:  # nothing stored among the new samples: the new run sits between stored ones
            return (
                stored_times[:before] + new_times + stored_times[after:],
                [value for _, value in stored[:before]] + new_values + [value for _, value in stored[after:]],
            )
    merged = dict(zip(new_times, new_values, strict=True))
    merged.update(stored)
    ordered = sorted(merged)
    return ordered, [merged[time] for time in ordered]


def _insert_samples(meter_key: int, times: list[int], values: list[float], clash_possible: bool) -> int:
    """Insert the samples whose time the meter has no sample at; returns how many were inserted."""
    if not is_sqlite():
        return _copy_samples(meter_key, times, values, clash_possible)
    pairs: list = [None] * (2 * len(times))
    pairs[0::2], pairs[1::2] = times, values
    cursor = database.cursor()
    inserted = 0
    per = _SQLITE_ROWS_PER_STATEMENT
    full_sql = _sqlite_insert_sql(int(meter_key), per)
    for start in range(0, len(times), per):
        rows = min(per, len(times) - start)
        sql = full_sql if rows == per else _sqlite_insert_sql(int(meter_key), rows)
        cursor.execute(sql, pairs[2 * start : 2 * (start + rows)])
        inserted += cursor.rowcount
    return inserted


def _sqlite_insert_sql(meter_key: int, rows: int) -> str:
    # `WHERE true`: SQLite's grammar needs it between INSERT … SELECT and ON CONFLICT.
    values = ",".join(["(?,?)"] * rows)
    return (
        f'INSERT INTO meter_samples (meter_key, "time", reading) SELECT {meter_key}, column1, column2'
        f' FROM (VALUES {values}) WHERE true ON CONFLICT (meter_key, "time") DO NOTHING'
    )


def _copy_samples(meter_key: int, times: list[int], values: list[float], clash_possible: bool) -> int:
    """COPY, straight into meter_samples when no sample can clash (the meter's lock is held, so none can
    arrive meanwhile), else into a temporary table and from there with ON CONFLICT DO NOTHING."""
    cursor = database.cursor()
    # repr() is the shortest text that reads back as the same double.
    rows = (f"{meter_key}\t{time}\t{value!r}\n" for time, value in zip(times, values, strict=True))
    data = io.StringIO("".join(rows))
    if not clash_possible:
        cursor.copy_expert('COPY meter_samples (meter_key, "time", reading) FROM STDIN', data)
        return len(times)
    cursor.execute(
        'CREATE TEMPORARY TABLE import_samples (meter_key INTEGER, "time" BIGINT, reading DOUBLE PRECISION)'
        " ON COMMIT DROP"
    )
    cursor.copy_expert('COPY import_samples (meter_key, "time", reading) FROM STDIN', data)
    cursor.execute(
        'INSERT INTO meter_samples (meter_key, "time", reading) SELECT meter_key, "time", reading FROM import_samples'
        ' ON CONFLICT (meter_key, "time") DO NOTHING'
    )
    inserted = cursor.rowcount
    cursor.execute("DROP TABLE import_samples")
    return inserted


def _replace_rollups(meter_id: str, first_hour: int, last_hour: int, energy: dict) -> None:
    p = database.param
    database.execute_sql(
        f"DELETE FROM energy_rollups WHERE meter_kind = {p} AND meter_id = {p} AND hour_start >= {p}"
        f" AND hour_start <= {p}",
        (JOI, meter_id, first_hour, last_hour),
    )
    rows = [(JOI, meter_id, hour, *rollup) for hour, rollup in sorted(energy.items())]
    columns = "(meter_kind, meter_id, hour_start, kwh, first_15, first_30, first_45)"
    if is_sqlite():
        database.cursor().executemany(f"INSERT INTO energy_rollups {columns} VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    else:
        from psycopg2.extras import execute_values

        execute_values(database.cursor(), f"INSERT INTO energy_rollups {columns} VALUES %s", rows, page_size=1000)


# --- export ------------------------------------------------------------------------------------------------------


def exported_meters(meter_ids: list[str] | None) -> list[str]:
    """The meters with kW samples, by id (only those of `meter_ids` when given)."""
    sql = (
        "SELECT meter_id FROM meters WHERE EXISTS"
        " (SELECT 1 FROM meter_samples WHERE meter_samples.meter_key = meters.meter_key) ORDER BY meter_id"
    )
    found = [row[0] for row in database.execute_sql(sql).fetchall()]
    return found if meter_ids is None else [meter for meter in found if meter in set(meter_ids)]


def samples_for_export(meter_id: str, start: int | None, end: int | None) -> Iterator[tuple[int, float]]:
    """The meter's samples with start <= time <= end in time order, read a page at a time (memory stays flat)."""
    key = _meter_key(meter_id)
    if key is None:
        return
    p = database.param
    after = -1 if start is None else start - 1
    last = end if end is not None else 2**62
    while True:
        page = database.execute_sql(
            f'SELECT "time", reading FROM meter_samples WHERE meter_key = {p} AND "time" > {p} AND "time" <= {p}'
            f' ORDER BY "time" LIMIT {EXPORT_PAGE}',
            (key, after, last),
        ).fetchall()
        yield from page
        if len(page) < EXPORT_PAGE:
            return
        after = page[-1][0]
