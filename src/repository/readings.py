"""Meter readings (kW samples) and the hourly energy rollups kept up to date beside them."""

from __future__ import annotations

import bisect
import contextlib
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain, repeat
from zoneinfo import ZoneInfo

import orjson
import peewee

from domain.tariffs import offset_segments, weekday_at
from domain.usage import (
    HOUR,
    QUARTER,
    HourRollup,
    Reading,
    SampleColumns,
    affected_hour_ranges,
    energy_by_hour,
    energy_rollups,
    energy_rollups_of,
    hour_of,
)
from repository import sample_pages, settings
from repository.db import UNAVAILABLE_ERRORS, BaseModel, GroupCommit, database, grouped_write, is_sqlite

ROLLUP_GAP_SETTING = "rollup_max_gap_seconds"
# The two kinds of meter whose hourly energy the price plans read: kW samples (JOI) and DSMR registers (P1).
# One id may be both; their rollups never mix.
JOI, P1 = "joi", "p1"
_ROLLUP_COLUMNS = "(meter_kind, meter_id, hour_start, kwh, first_15, first_30, first_45)"


class Meter(BaseModel):
    """A meter's text id and the integer key its samples are stored under (made on its first store)."""

    meter_key = peewee.AutoField()
    meter_id = peewee.CharField(max_length=128, unique=True)

    class Meta:
        table_name = "meters"


class MeterSample(BaseModel):
    meter_key = peewee.IntegerField()
    time = peewee.BigIntegerField()
    reading = peewee.DoubleField()

    class Meta:
        table_name = "meter_samples"
        primary_key = peewee.CompositeKey("meter_key", "time")


class EnergyHour(BaseModel):
    """kWh a meter of one kind used in one UTC hour, and in its first 15, 30 and 45 minutes, so plans are
    priced from rollups, not from raw samples, with day boundaries exact in every quarter-hour zone."""

    meter_kind = peewee.CharField(max_length=8)
    meter_id = peewee.CharField(max_length=128)
    hour_start = peewee.BigIntegerField()
    kwh = peewee.DoubleField()
    first_15 = peewee.DoubleField(default=0.0)
    first_30 = peewee.DoubleField(default=0.0)
    first_45 = peewee.DoubleField(default=0.0)

    class Meta:
        table_name = "energy_rollups"
        primary_key = peewee.CompositeKey("meter_kind", "meter_id", "hour_start")


# The write path below runs raw SQL through the cursor instead of Peewee queries: building a
# 1,000-row INSERT with Peewee cost more CPU than everything else in POST /readings/store together
# (profile in bench/results.md). The statements are plain SQL that SQLite and PostgreSQL share; only
# the placeholder and the bulk-insert call differ. Reads on the hot path use the cursor too.


def _param() -> str:
    return database.param


def _sqlite_max_variables() -> int:
    try:  # this build's limit (Python 3.11+); 999 is the smallest any SQLite build has
        return sqlite3.connect(":memory:").getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    except (AttributeError, sqlite3.Error):
        return 999


_SQLITE_MAX_VARIABLES = _sqlite_max_variables()


def _values_sql(sql_prefix: str, sql_suffix: str, width: int, rows: int) -> str:
    row_sql = f"({', '.join('?' * width)})"
    return f"{sql_prefix} {', '.join([row_sql] * rows)} {sql_suffix}"


def _rows_per_statement(width: int) -> int:
    return max(1, min(1000, _SQLITE_MAX_VARIABLES // width))


class _BulkInsert:
    """INSERT … VALUES (…), (…) … prepared outside the write transaction, so that the lock is held for
    the database work only. Multi-row statements beat executemany by a third on SQLite (up to 1,000
    rows a statement, within the build's variable limit); psycopg2's executemany is one round trip
    per row, so PostgreSQL gets execute_values pages."""

    def __init__(self, sql_prefix: str, sql_suffix: str, rows: Sequence[tuple]) -> None:
        self.statements: list[tuple[str, list]] = []
        self.pages: tuple[str, Sequence[tuple]] | None = None
        if not rows:
            return
        if not is_sqlite():
            self.pages = (f"{sql_prefix} %s {sql_suffix}", rows)
            return
        width = len(rows[0])
        per_statement = _rows_per_statement(width)
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            sql = _values_sql(sql_prefix, sql_suffix, width, len(chunk))
            self.statements.append((sql, list(chain.from_iterable(chunk))))

    def execute(self) -> None:
        if self.pages is not None:
            _execute_values(*self.pages)
        for sql, params in self.statements:
            database.execute_sql(sql, params)


def _execute_values(sql: str, rows: Sequence[tuple]) -> None:
    from psycopg2.extras import execute_values

    execute_values(database.cursor(), sql, rows, page_size=1000)


def _insert_rows(sql_prefix: str, sql_suffix: str, rows: Sequence[tuple]) -> None:
    _BulkInsert(sql_prefix, sql_suffix, rows).execute()


class _SampleUpsert:
    """The upsert of a meter's samples on SQLite, prepared outside the write transaction like _BulkInsert,
    with a blank where the meter's key goes: a new meter gets its key inside the transaction."""

    PREFIX = 'INSERT INTO meter_samples (meter_key, "time", reading) VALUES'
    SUFFIX = 'ON CONFLICT (meter_key, "time") DO UPDATE SET reading = excluded.reading'

    def __init__(self, times: list[int], values: list[float]) -> None:
        self.statements: list[tuple[str, list]] = []
        per_statement = _rows_per_statement(3)
        for start in range(0, len(times), per_statement):
            chunk = zip(repeat(None), times[start : start + per_statement], values[start : start + per_statement])
            params = list(chain.from_iterable(chunk))
            self.statements.append((_values_sql(self.PREFIX, self.SUFFIX, 3, len(params) // 3), params))

    def execute(self, meter_key: int) -> None:
        for sql, params in self.statements:
            params[::3] = [meter_key] * (len(params) // 3)
            database.execute_sql(sql, params)


def store(meter_id: str, readings: Iterable[Reading], max_gap: int) -> None:
    """Upsert the samples (a repeated time replaces the value) and refresh the hours they touch, atomically."""
    pairs = list(readings)
    if pairs:
        times, values = (list(column) for column in zip(*pairs, strict=True))
        store_columns(meter_id, SampleColumns.of(times, values), max_gap)


def store_columns(meter_id: str, samples: SampleColumns, max_gap: int) -> None:
    """store() for samples that are columns already (times ascending and unique)."""
    times, values = samples
    if not times:
        return
    # Everything that needs no database is done before the write transaction (SQLite holds its one
    # write lock for the length of it): each affected range's energy as if no sample were stored
    # around it yet, used when that turns out to be so, and the INSERT statements.
    plans = []
    for first_hour, last_hour in affected_hour_ranges(times, max_gap):
        low = bisect.bisect_left(times, first_hour - max_gap)
        high = bisect.bisect_right(times, last_hour + HOUR + max_gap)
        range_times, range_values = times[low:high], values[low:high]
        energy = energy_rollups_of(range_times, range_values, max_gap, first_hour, last_hour + HOUR)
        plans.append((range_times, range_values, energy))
    if not is_sqlite():
        _store_postgres(meter_id, times, values, plans, max_gap)
        return
    upsert = _SampleUpsert(times, values)
    # A meter's key never changes once made, so a known one is looked up before taking the write lock.
    known_key = _known_meter_key(meter_id)
    grouped_write(lambda: _store_in_transaction(meter_id, known_key, upsert, plans, max_gap))


def _store_in_transaction(
    meter_id: str, known_key: int | None, upsert: _SampleUpsert, plans: list[tuple], max_gap: int
) -> None:
    _lock_meter(meter_id)
    meter_key = known_key if known_key is not None else _meter_key(meter_id)
    if meter_key is None:
        upsert.execute(_new_meter_key(meter_id))
        # A new meter has no rollups of its own to replace: the energy worked out before the lock is all.
        _insert_hours(meter_id, {hour: kwh for _, _, energy in plans for hour, kwh in energy.items()})
        return
    # The stored samples each range needs beside the new ones are read before the upsert, so the rows just
    # written are not read back.
    sides = [_StoredSides.read(meter_key, times, max_gap) for times, _, _ in plans]
    upsert.execute(meter_key)
    sample_pages.forget(meter_key, min(times[0] for times, _, _ in plans))
    changes = []
    for (times, values, energy), stored in zip(plans, sides, strict=True):
        if stored.only_new_inside_after(meter_key, times):
            changes.append(stored.energy(times, values, energy, max_gap))
        else:  # stored samples between the new ones (an interleaved backfill): the whole range again
            changes.append(_changed_energy(meter_key, times, values, energy, max_gap))
    # An upsert of the changed hours is enough: an hour with energy keeps it when samples are added or
    # replaced (an interval that is split yields shorter ones over the same time), so none is deleted.
    _insert_hours(meter_id, {hour: kwh for change in changes if change for hour, kwh in change.items()})


class _StoredSides:
    """The stored samples beside a store's new ones (times[0] to times[-1]) that the energy of the hours it
    changes needs, on SQLite: those from the hour of the nearest one before within max_gap to times[0], and
    from times[-1] to the end of the hour of the nearest one after, with the one beyond each side.

    Read before the upsert; used while the samples from times[0] to times[-1] are, after it, exactly the new
    ones (the usual store: appended, or sent again). Then the hours between the first new sample's and the
    last one's keep the energy worked out from the new samples before the write lock, and only the hours at
    either side are worked out again, from the sides and the new samples next to them. A 1,000-sample store
    to a known meter read and re-sorted every stored sample of its range and recomputed all of it."""

    __slots__ = ("left", "right", "first_hour", "end", "stored_inside")

    def __init__(self, left: list, right: list, first_hour: int, end: int, stored_inside: int) -> None:
        self.left, self.right, self.first_hour, self.end = left, right, first_hour, end
        self.stored_inside = stored_inside

    @classmethod
    def read(cls, meter_key: int, times: list[int], max_gap: int) -> _StoredSides:
        first, last = times[0], times[-1]
        p = _param()
        before, after, stored_inside = database.execute_sql(
            f'SELECT (SELECT MAX("time") FROM meter_samples WHERE meter_key = {p} AND "time" < {p} AND "time" >= {p}),'
            f' (SELECT MIN("time") FROM meter_samples WHERE meter_key = {p} AND "time" > {p} AND "time" <= {p}),'
            f' (SELECT COUNT(*) FROM meter_samples WHERE meter_key = {p} AND "time" >= {p} AND "time" <= {p})',
            (meter_key, first, first - max_gap, meter_key, last, last + max_gap, meter_key, first, last),
        ).fetchone()
        low = first if before is None else before
        high = last if after is None else after
        if low == high:  # one new sample and no stored one within max_gap: no interval carries energy
            return cls([], [], low, low, stored_inside)
        first_hour, end = hour_of(low), hour_of(high - 1) + HOUR
        of_meter = f"FROM meter_samples WHERE meter_key = {p}"
        rows = database.execute_sql(
            f'SELECT "time", reading {of_meter} AND "time" < {p}'
            f' AND "time" >= COALESCE((SELECT MAX("time") {of_meter} AND "time" < {p}), {p})'
            f' UNION ALL SELECT "time", reading {of_meter} AND "time" > {p}'
            f' AND "time" <= COALESCE((SELECT MIN("time") {of_meter} AND "time" > {p}), {p})'
            " ORDER BY 1",
            (meter_key, first, meter_key, first_hour, first_hour, meter_key, last, meter_key, end, end),
        ).fetchall()
        split = bisect.bisect_left(rows, (first,))
        return cls(rows[:split], rows[split:], first_hour, end, stored_inside)

    def only_new_inside_after(self, meter_key: int, times: list[int]) -> bool:
        """Whether, after the upsert, the samples from the first new time to the last are the new ones."""
        if self.stored_inside == 0 or len(times) == 1:
            return True
        p = _param()
        (count,) = database.execute_sql(
            f'SELECT COUNT(*) FROM meter_samples WHERE meter_key = {p} AND "time" >= {p} AND "time" <= {p}',
            (meter_key, times[0], times[-1]),
        ).fetchone()
        return count == len(times)

    def energy(
        self, times: list[int], values: list[float], energy: dict[int, HourRollup], max_gap: int
    ) -> dict[int, HourRollup] | None:
        """The energy of the hours the store changes (`energy`: the new samples' alone, from before the lock)."""
        if self.first_hour == self.end:
            return None
        if not self.left and not self.right:
            return energy  # nothing stored in reach: the new samples' energy is all there is
        left_end, right_start = hour_of(times[0]) + HOUR, hour_of(times[-1])
        if left_end >= right_start:
            samples = [*self.left, *zip(times, values, strict=True), *self.right]
            return energy_rollups(samples, max_gap, self.first_hour, self.end)
        # New samples up to the first one past the left side's hours, and from the last one before the right's.
        upto = bisect.bisect_right(times, left_end) + 1
        since = bisect.bisect_left(times, right_start) - 1
        changed = energy_rollups(
            [*self.left, *zip(times[:upto], values[:upto], strict=True)], max_gap, self.first_hour, left_end
        )
        changed.update((hour, rollup) for hour, rollup in energy.items() if left_end <= hour < right_start)
        right = [*zip(times[since:], values[since:], strict=True), *self.right]
        changed.update(energy_rollups(right, max_gap, right_start, self.end))
        return changed


# --- the write path on PostgreSQL ------------------------------------------------------------------------
# One statement per table family instead of one row literal per sample: the samples and the hours go as
# text arrays ('{1,2,3}') that unnest() turns into rows server-side. execute_values built a 1,000-row VALUES
# list through mogrify() (40 ms of Python a batch) that the server then had to parse; an array literal is
# one join in Python and one cheap parse. A store of a new meter is one statement (lock, meter, samples,
# hours: one round trip, its own transaction); one of a known meter is BEGIN, the lock, a read of the
# stored samples beside the new ones, one statement upserting samples and hours, and COMMIT.

_UNNEST_SAMPLES = 'unnest(%s::bigint[], %s::float8[]) AS s("time", reading)'
_UNNEST_HOURS = (
    "unnest(%s::bigint[], %s::float8[], %s::float8[], %s::float8[], %s::float8[]) AS h(hour_start, kwh, f15, f30, f45)"
)
_UPSERT_SAMPLES = ' ON CONFLICT (meter_key, "time") DO UPDATE SET reading = excluded.reading'
_UPSERT_HOURS = (
    " ON CONFLICT (meter_kind, meter_id, hour_start) DO UPDATE SET kwh = excluded.kwh,"
    " first_15 = excluded.first_15, first_30 = excluded.first_30, first_45 = excluded.first_45"
)
_HOURS_SELECT = f"SELECT '{JOI}', %s, h.hour_start, h.kwh, h.f15, h.f30, h.f45"

_NEW_METER_SQL = (
    "WITH locked AS (SELECT pg_advisory_xact_lock(%s, hashtext(%s))),"
    " new_meter AS (INSERT INTO meters (meter_id) SELECT %s FROM locked"
    " ON CONFLICT (meter_id) DO NOTHING RETURNING meter_key),"
    ' samples AS (INSERT INTO meter_samples (meter_key, "time", reading)'
    f' SELECT new_meter.meter_key, s."time", s.reading FROM new_meter, {_UNNEST_SAMPLES}),'
    f" hours AS (INSERT INTO energy_rollups {_ROLLUP_COLUMNS} {_HOURS_SELECT} FROM new_meter, {_UNNEST_HOURS}"
    f"{_UPSERT_HOURS})"
    " SELECT meter_key FROM new_meter"
)
_KNOWN_METER_SQL = (
    'WITH samples AS (INSERT INTO meter_samples (meter_key, "time", reading)'
    f' SELECT %s, s."time", s.reading FROM {_UNNEST_SAMPLES}{_UPSERT_SAMPLES})'
    f" INSERT INTO energy_rollups {_ROLLUP_COLUMNS} {_HOURS_SELECT} FROM {_UNNEST_HOURS}{_UPSERT_HOURS}"
)


def _int_array(numbers: Iterable[int]) -> str:
    return _pg_array(numbers, int, {int})


def _float_array(numbers: Iterable[float]) -> str:
    return _pg_array(numbers, float, {float, int})


def _pg_array(numbers: Iterable, convert: type, plain: set[type]) -> str:
    """A PostgreSQL array literal of the numbers as `convert` makes them.

    A list of plain ints and finite floats is written by orjson, one C call that was 10-30x faster than
    repr() of each number (about 1 ms of Python per 1,000-reading batch); its floats are the shortest text
    that reads back as the same float, as repr()'s are. Anything else goes number by number: a bool or an
    int-valued float for a bigint, NaN and infinity (JSON writes null), an int beyond 64 bits."""
    numbers = numbers if isinstance(numbers, list) else list(numbers)
    if set(map(type, numbers)) <= plain:
        with contextlib.suppress(orjson.JSONEncodeError):
            text = orjson.dumps(numbers)
            if b"null" not in text:
                return "{" + text[1:-1].decode() + "}"
    return "{" + ",".join(map(repr, map(convert, numbers))) + "}"


def _hour_arrays(hours: Iterable[tuple[int, HourRollup]]) -> list[str]:
    """Five arrays: the hours' starts, kWh, and first 15, 30 and 45 minutes."""
    columns = list(zip(*((hour, *rollup) for hour, rollup in hours), strict=True)) or [()] * 5
    return [_int_array(columns[0]), *(_float_array(column) for column in columns[1:])]


def _store_postgres(meter_id: str, times: list[int], values: list[float], plans: list[tuple], max_gap: int) -> None:
    outer = database.in_transaction()
    # Only keys read committed are remembered (see _KeyCache); inside a caller's transaction none is.
    known_key = None if outer else _key_cache.peek(meter_id)
    if known_key is not None:
        _store_group.run(_KnownMeterStore(meter_id, known_key, times, values, plans, max_gap), key=meter_id)
        return
    samples = [_int_array(times), _float_array(values)]

    def store_new_meter() -> int | None:
        new_energy = {hour: kwh for _, _, energy in plans for hour, kwh in energy.items()}
        params = (_METER_LOCK_CLASS, meter_id, meter_id, *samples, meter_id, *_hour_arrays(sorted(new_energy.items())))
        row = database.execute_sql(_NEW_METER_SQL, params).fetchone()
        return None if row is None else row[0]

    if known_key is None and not outer:
        # One statement is a transaction of its own (Peewee runs psycopg2 in autocommit mode): committed
        # when it returns, without the two round trips of BEGIN and COMMIT.
        meter_key = store_new_meter()
        if meter_key is not None:
            _key_cache.remember(meter_id, meter_key)
            return

    def write() -> int:
        if known_key is None and outer:
            meter_key = store_new_meter()
            if meter_key is not None:
                return meter_key
        # A known meter; or one this process did not know that the statement above found made by another.
        _lock_meter(meter_id)
        meter_key = known_key if known_key is not None else _meter_key(meter_id)
        changes = [_changed_energy(meter_key, t, v, energy, max_gap) for t, v, energy in plans]
        changed = {hour: kwh for change in changes if change for hour, kwh in change.items()}
        database.execute_sql(_KNOWN_METER_SQL, (meter_key, *samples, meter_id, *_hour_arrays(sorted(changed.items()))))
        return meter_key

    meter_key = grouped_write(write)
    if not outer:
        _key_cache.remember(meter_id, meter_key)  # committed now


class _KnownMeterStore:
    """One store to a meter whose key is known, waiting for its group (_PostgresStoreGroup)."""

    __slots__ = ("meter_id", "meter_key", "times", "values", "plans", "max_gap")

    def __init__(
        self, meter_id: str, meter_key: int, times: list[int], values: list[float], plans: list[tuple], max_gap: int
    ) -> None:
        self.meter_id, self.meter_key, self.max_gap = meter_id, meter_key, max_gap
        self.times, self.values, self.plans = times, values, plans


_GROUP_LOCKS_SQL = (
    # In one order (of the locks' keys) in every group, so that two processes' groups never deadlock.
    "BEGIN; SELECT pg_advisory_xact_lock(%s, lock_key)"
    " FROM (SELECT hashtext(m) AS lock_key FROM unnest(%s::text[]) AS m ORDER BY 1 OFFSET 0) AS sorted"
)
_GROUP_STORED_SQL = (
    # _key_samples_reaching for every (meter, range) of the group: the range's number, then its samples.
    'SELECT r.n, s."time", s.reading'
    " FROM unnest(%s::int[], %s::bigint[], %s::bigint[]) WITH ORDINALITY AS r(meter_key, low, high, n)"
    ' CROSS JOIN LATERAL (SELECT "time", reading FROM meter_samples WHERE meter_key = r.meter_key'
    ' AND "time" >= COALESCE((SELECT MAX("time") FROM meter_samples WHERE meter_key = r.meter_key AND "time" < r.low),'
    " r.low)"
    ' AND "time" <= COALESCE((SELECT MIN("time") FROM meter_samples WHERE meter_key = r.meter_key AND "time" > r.high),'
    " r.high)) AS s"
    ' ORDER BY r.n, s."time"'
)
_GROUP_UPSERT_SQL = (
    'WITH samples AS (INSERT INTO meter_samples (meter_key, "time", reading)'
    f" SELECT * FROM unnest(%s::int[], %s::bigint[], %s::float8[]){_UPSERT_SAMPLES})"
    f" INSERT INTO energy_rollups {_ROLLUP_COLUMNS}"
    f" SELECT '{JOI}', h.meter_id, h.hour_start, h.kwh, h.f15, h.f30, h.f45"
    " FROM unnest(%s::text[], %s::bigint[], %s::float8[], %s::float8[], %s::float8[], %s::float8[])"
    f" AS h(meter_id, hour_start, kwh, f15, f30, f45){_UPSERT_HOURS}; COMMIT"
)


class _PostgresStoreGroup(GroupCommit):
    """Group commit for stores to known meters on PostgreSQL: the stores that queue up in this process
    while one group runs share the next group's transaction, in two round trips whatever its size
    (BEGIN, every meter's lock and one read of the stored samples beside the new ones; one upsert of
    every sample and hour, and COMMIT) and one commit, instead of three round trips and a commit each.

    In `make bench` section 6 (16 connections, 64 meters, one reading a request) each store cost about
    1 ms of PostgreSQL's CPU and 1.7 ms of the worker's, most of it per statement and per commit, not
    per row. One store per meter a group (GroupCommit's key): a second one for the same meter waits for
    the next group, so that it reads the first one's samples.

    When the group fails because the database is unavailable (a connection lost, a full disk, a failed
    COMMIT) every store of it gets that error (503) and none is stored. Any other error is retried store
    by store, each in a transaction of its own, so that only the store that causes it fails.
    """

    def _execute(self, batch: list) -> None:
        try:
            _store_known_meters([item.work for item in batch])
            return
        except UNAVAILABLE_ERRORS as error:
            _rollback()
            for item in batch:
                item.error = error
            return
        except Exception as error:  # noqa: BLE001 - whose it is is found below
            _rollback()
            if len(batch) == 1:
                batch[0].error = error
                return
        for item in batch:
            try:
                _store_known_meters([item.work])
            except Exception as error:  # noqa: BLE001 - handed to the writer it belongs to
                _rollback()
                item.error = error


_store_group = _PostgresStoreGroup()


def _rollback() -> None:
    with contextlib.suppress(Exception):
        database.execute_sql("ROLLBACK")


def _store_known_meters(stores: list[_KnownMeterStore]) -> None:
    """Stores to distinct known meters in one transaction, committed when this returns."""
    ranges = [(store, plan) for store in stores for plan in store.plans]
    reaches = [_reach(plan[0], store.max_gap) for store, plan in ranges]
    # One round trip: the read needs the locks held and a snapshot taken after them, and each statement
    # of a query string takes its own snapshot (READ COMMITTED), so it may follow the locks in one string.
    rows = database.execute_sql(
        f"{_GROUP_LOCKS_SQL}; {_GROUP_STORED_SQL}",
        (
            _METER_LOCK_CLASS,
            [store.meter_id for store in stores],
            _int_array(store.meter_key for store, _ in ranges),
            _int_array(low for low, _ in reaches),
            _int_array(high for _, high in reaches),
        ),
    ).fetchall()
    stored: list[list[tuple[int, float]]] = [[] for _ in ranges]
    for number, time, reading in rows:
        stored[number - 1].append((time, reading))
    hours: dict[str, dict[int, HourRollup]] = {}
    for (store, (times, values, energy)), beside in zip(ranges, stored, strict=True):
        change = _energy_beside(beside, times, values, energy, store.max_gap)
        if change:
            hours.setdefault(store.meter_id, {}).update(change)
    hour_rows = [(meter_id, hour_kwh) for meter_id, energy in hours.items() for hour_kwh in sorted(energy.items())]
    database.execute_sql(
        _GROUP_UPSERT_SQL,
        (
            _int_array(chain.from_iterable(repeat(store.meter_key, len(store.times)) for store in stores)),
            _int_array(chain.from_iterable(store.times for store in stores)),
            _float_array(chain.from_iterable(store.values for store in stores)),
            [meter_id for meter_id, _ in hour_rows],
            *_hour_arrays(hour_kwh for _, hour_kwh in hour_rows),
        ),
    )


def _changed_energy(
    meter_key: int, times: list[int], values: list[float], energy: dict[int, HourRollup], max_gap: int
) -> dict[int, HourRollup] | None:
    """The new energy of the hours that new samples at `times` change (`energy` is theirs alone).

    Only intervals that end or start at a new sample change: those between new samples, and the two
    that join the first and the last new sample to the stored samples beside them (when those are
    within max_gap). A sample a minute after the last one changes one hour, not the 2 * max_gap
    around it that affected_hour_ranges allows for before the neighbours are known.
    """
    return _energy_beside(_key_samples_reaching(meter_key, *_reach(times, max_gap)), times, values, energy, max_gap)


def _reach(times: list[int], max_gap: int) -> tuple[int, int]:
    """What _energy_beside needs read: the stored samples from the hour of times[0] - max_gap to the end
    of the hour of times[-1] + max_gap, and the one beyond on each side (_key_samples_reaching)."""
    return hour_of(times[0] - max_gap), hour_of(times[-1] + max_gap - 1) + HOUR


def _energy_beside(
    stored: list[tuple[int, float]],
    times: list[int],
    values: list[float],
    energy: dict[int, HourRollup],
    max_gap: int,
) -> dict[int, HourRollup] | None:
    """_changed_energy, given the stored samples of _reach(times, max_gap)."""
    stored_times = [time for time, _ in stored]
    left = bisect.bisect_left(stored_times, times[0]) - 1
    right = bisect.bisect_right(stored_times, times[-1])
    before = stored_times[left] if left >= 0 else None
    after = stored_times[right] if right < len(stored_times) else None
    low = before if before is not None and times[0] - before <= max_gap else times[0]
    high = after if after is not None and after - times[-1] <= max_gap else times[-1]
    if low == high:
        return None  # one sample with no neighbour within reach: no interval carries energy
    first_hour, end = hour_of(low), hour_of(high - 1) + HOUR
    # The stored samples that reach into [first_hour, end]: those inside and the one beyond each side.
    inside = slice(max(0, bisect.bisect_left(stored_times, first_hour) - 1), bisect.bisect_right(stored_times, end) + 1)
    reaching = stored[inside]
    if not reaching:
        # Nothing stored from the sample before first_hour to the one after end: new samples only,
        # whose energy was worked out before the lock.
        return energy
    merged = dict(reaching)
    merged.update(zip(times, values, strict=True))
    return energy_rollups(sorted(merged.items()), max_gap, first_hour, end)


def _key_samples_reaching(meter_key: int, start: int, end: int) -> list[tuple[int, float]]:
    """Stored samples in [start, end] and the one on each side beyond: every interval that overlaps it."""
    p = _param()
    return database.execute_sql(
        f'SELECT "time", reading FROM meter_samples WHERE meter_key = {p}'
        f' AND "time" >= COALESCE((SELECT MAX("time") FROM meter_samples WHERE meter_key = {p} AND "time" < {p}), {p})'
        f' AND "time" <= COALESCE((SELECT MIN("time") FROM meter_samples WHERE meter_key = {p} AND "time" > {p}), {p})'
        ' ORDER BY "time"',
        (meter_key, meter_key, start, start, meter_key, end, end),
    ).fetchall()


def _meter_key(meter_id: str) -> int | None:
    row = database.execute_sql(f"SELECT meter_key FROM meters WHERE meter_id = {_param()}", (meter_id,)).fetchone()
    return None if row is None else row[0]


class _KeyCache:
    """Meter keys this process has read committed: they never change and are never deleted, so a
    meter that stores every second does not look its key up every second. Tied to the database
    object, since tests (and a reconfigured process) open another database with other keys."""

    LIMIT = 100_000  # about 10 MB; emptied when full rather than tracking recency on every store

    def __init__(self) -> None:
        self.keys: dict[str, int] = {}
        self.owner: object = None

    def peek(self, meter_id: str) -> int | None:
        """The key if this process remembers it (no lookup)."""
        if self.owner is not database.obj:
            self.keys, self.owner = {}, database.obj
        return self.keys.get(meter_id)

    def get(self, meter_id: str) -> int | None:
        key = self.peek(meter_id)
        if key is None:
            key = _meter_key(meter_id)  # a committed row: a key made in a transaction that rolls back is never seen
            if key is not None:
                self.remember(meter_id, key)
        return key

    def remember(self, meter_id: str, key: int) -> None:
        """Only for a key known to be committed."""
        if self.owner is not database.obj:
            self.keys, self.owner = {}, database.obj
        if len(self.keys) >= self.LIMIT:
            self.keys = {}
        self.keys[meter_id] = key


_key_cache = _KeyCache()


def _known_meter_key(meter_id: str) -> int | None:
    return None if database.in_transaction() else _key_cache.get(meter_id)


def _new_meter_key(meter_id: str) -> int:
    """Called with the meter's lock held (_lock_meter), so no other writer makes its key meanwhile."""
    sql = f"INSERT INTO meters (meter_id) VALUES ({_param()}) RETURNING meter_key"
    return database.execute_sql(sql, (meter_id,)).fetchone()[0]


# Advisory-lock class of the readings area (two-int keys: ("JOI" as a number, hash of the meter id)).
_METER_LOCK_CLASS = 0x4A4F49


def _lock_meter(meter_id: str) -> None:
    """Serialise writers of one meter until commit.

    On SQLite every write transaction holds the database's write lock already. On PostgreSQL two
    concurrent stores for a meter would each recompute the same hours from a snapshot without the
    other's samples (wrong rollups), and both insert them (a unique violation: HTTP 500, found by
    `make bench` section 6).
    """
    if not is_sqlite():
        database.execute_sql("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_METER_LOCK_CLASS, meter_id))


def _refresh_hours(meter_id: str, first_hour: int, last_hour: int, max_gap: int) -> None:
    """Recompute the rollups of hours first_hour … last_hour from the stored samples."""
    start, end = first_hour, last_hour + HOUR
    energy = energy_rollups(_sample_rows(meter_id, start - max_gap, end + max_gap), max_gap, start, end)
    p = _param()
    database.execute_sql(
        f"DELETE FROM energy_rollups WHERE meter_kind = '{JOI}' AND meter_id = {p}"
        f" AND hour_start >= {p} AND hour_start <= {p}",
        (meter_id, first_hour, last_hour),
    )
    _insert_hours(meter_id, energy)


def _insert_hours(meter_id: str, energy: Mapping[int, HourRollup], kind: str = JOI) -> None:
    # An upsert: the changed hours replace what they held.
    _insert_rows(
        f"INSERT INTO energy_rollups {_ROLLUP_COLUMNS} VALUES",
        "ON CONFLICT (meter_kind, meter_id, hour_start) DO UPDATE SET kwh = excluded.kwh,"
        " first_15 = excluded.first_15, first_30 = excluded.first_30, first_45 = excluded.first_45",
        [(kind, meter_id, hour, *rollup) for hour, rollup in sorted(energy.items())],
    )


def _sample_rows(
    meter_id: str, start: int | None = None, end: int | None = None, limit: int | None = None
) -> list[tuple[int, float]]:
    p = _param()
    meter_key = f"(SELECT meter_key FROM meters WHERE meter_id = {p})"
    sql = f'SELECT "time", reading FROM meter_samples WHERE meter_key = {meter_key}'
    params: list = [meter_id]
    if start is not None:
        sql += f' AND "time" >= {p}'
        params.append(start)
    if end is not None:
        sql += f' AND "time" <= {p}'
        params.append(end)
    sql += ' ORDER BY "time"'
    if limit is not None:
        sql += f" LIMIT {p}"
        params.append(limit)
    return database.execute_sql(sql, params).fetchall()


def samples_between(
    meter_id: str, start: int | None = None, end: int | None = None, limit: int | None = None
) -> list[Reading]:
    """The meter's samples with start <= time <= end, sorted by time (the first `limit` of them)."""
    return list(map(Reading._make, _sample_rows(meter_id, start, end, limit)))


def sample_pairs(
    meter_id: str, start: int | None = None, end: int | None = None, limit: int | None = None
) -> list[tuple[int, float]]:
    """samples_between as plain (time, kW) tuples: readings/read answers thousands of them, and making a
    Reading of each cost as much as fetching it. On SQLite a whole window of at most PAGED_WINDOW_SECONDS
    comes from the hour pages (repository/sample_pages.py)."""
    paged = sample_pages.in_use() and limit is None and start is not None and end is not None
    if not paged or not 0 <= end - start <= PAGED_WINDOW_SECONDS:
        return _sample_rows(meter_id, start, end, limit)
    key = _meter_key(meter_id) if database.in_transaction() else _key_cache.get(meter_id)
    return [] if key is None else sample_pages.window(key, start, end)


# A longer window, or a page of one (a limit), takes the rows with SQL's LIMIT: pages would be decoded whole.
PAGED_WINDOW_SECONDS = 2 * 86_400


def samples_around(meter_id: str, start: int, end: int, max_gap: int) -> list[tuple[int, float]]:
    """What the energy in [start, end] needs: the samples in it and the nearest one on each side within
    max_gap (only intervals that overlap the window count), as (time, kW) pairs sorted by time. A window's
    partial edge hour fetched every sample within max_gap of it: twice as many rows, for every compare-all."""
    p = _param()
    key = f"(SELECT meter_key FROM meters WHERE meter_id = {p})"
    columns = f'SELECT "time", reading FROM meter_samples WHERE meter_key = {key}'
    sql = (
        f'SELECT * FROM ({columns} AND "time" < {p} AND "time" >= {p} ORDER BY "time" DESC LIMIT 1) AS before_window'
        f' UNION ALL {columns} AND "time" >= {p} AND "time" <= {p}'
        f' UNION ALL SELECT * FROM ({columns} AND "time" > {p} AND "time" <= {p} ORDER BY "time" LIMIT 1)'
        " AS after_window"
        " ORDER BY 1"
    )
    params = (meter_id, start, start - max_gap, meter_id, start, end, meter_id, end, end + max_gap)
    return database.execute_sql(sql, params).fetchall()


def period(meter_id: str) -> tuple[int, int] | None:
    """First and last sample time of the meter, or None when it has none."""
    # Two scalar subqueries, each one index seek: SQLite answers MIN and MAX in one SELECT by scanning
    # every sample of the meter (55 ms at a million samples).
    p = _param()
    key = _meter_key(meter_id)
    if key is None:
        return _energy_period(meter_id)
    first, last = database.execute_sql(
        f'SELECT (SELECT MIN("time") FROM meter_samples WHERE meter_key = {p}),'
        f' (SELECT MAX("time") FROM meter_samples WHERE meter_key = {p})',
        (key, key),
    ).fetchone()
    if first is None:
        return _energy_period(meter_id)
    return (first, last)


def _energy_period(meter_id: str) -> tuple[int, int] | None:
    """A meter known only by its registers (DSMR) has hourly energy but no kW samples."""
    p = _param()
    first, last = database.execute_sql(
        f"SELECT (SELECT MIN(hour_start) FROM energy_rollups WHERE meter_kind = '{P1}' AND meter_id = {p}),"
        f" (SELECT MAX(hour_start) FROM energy_rollups WHERE meter_kind = '{P1}' AND meter_id = {p})",
        (meter_id, meter_id),
    ).fetchone()
    return None if first is None else (first, last + HOUR)


def add_hourly_energy(meter_id: str, deltas: Mapping[int, HourRollup]) -> None:
    """Add kWh measured elsewhere (DSMR register deltas; negative to take some back) to a P1 meter's hour
    rollups, in the caller's transaction."""
    _insert_rows(
        f"INSERT INTO energy_rollups {_ROLLUP_COLUMNS} VALUES",
        "ON CONFLICT (meter_kind, meter_id, hour_start) DO UPDATE SET kwh = energy_rollups.kwh + excluded.kwh,"
        " first_15 = energy_rollups.first_15 + excluded.first_15,"
        " first_30 = energy_rollups.first_30 + excluded.first_30,"
        " first_45 = energy_rollups.first_45 + excluded.first_45",
        [(P1, meter_id, hour, *rollup) for hour, rollup in sorted(deltas.items())],
    )


def replace_hourly_energy(meter_id: str, rollups: Mapping[int, HourRollup]) -> None:
    """Set all of a P1 meter's hour rollups (a rebuild), in the caller's transaction."""
    delete_hourly_energy(meter_id)
    _insert_hours(meter_id, rollups, P1)


def rename_hourly_energy(old_meter_id: str, new_meter_id: str) -> None:
    """A P1 meter's hourly kWh move to the id it is known by (its equipment id, learnt from a telegram)."""
    if old_meter_id == new_meter_id:
        return
    p1 = EnergyHour.meter_kind == P1
    EnergyHour.delete().where(p1 & (EnergyHour.meter_id == new_meter_id)).execute()
    EnergyHour.update(meter_id=new_meter_id).where(p1 & (EnergyHour.meter_id == old_meter_id)).execute()


def delete_hourly_energy(meter_id: str, first_hour: int | None = None, last_hour: int | None = None) -> None:
    """Drop a P1 meter's hourly kWh (hours first_hour … last_hour; all without bounds), in the caller's
    transaction. The DSMR repository calls this when test data is removed."""
    where = (EnergyHour.meter_kind == P1) & (EnergyHour.meter_id == meter_id)
    if first_hour is not None:
        where &= EnergyHour.hour_start >= first_hour
    if last_hour is not None:
        where &= EnergyHour.hour_start <= last_hour
    EnergyHour.delete().where(where).execute()


def has_samples(meter_id: str) -> bool:
    """Whether the meter has kW samples (a JOI meter), as opposed to hourly kWh from registers only."""
    key = _meter_key(meter_id) if database.in_transaction() else _key_cache.get(meter_id)
    if key is None:
        return False
    sql = f"SELECT 1 FROM meter_samples WHERE meter_key = {_param()} LIMIT 1"  # raw: a Peewee query cost 0.15 ms
    return database.execute_sql(sql, (key,)).fetchone() is not None


def delete_samples(meter_id: str, start: int | None, end: int | None, max_gap: int) -> int:
    """Delete the meter's samples with start <= time <= end (an open side reaches its first or last sample)
    and recompute the hourly rollups of every interval that touched them: from the hour of the sample before
    the first deleted one to the hour of the sample after the last. Returns how many were deleted.

    The meter keeps its integer key (processes remember keys, which never change), so a later store of the
    same id goes on under it; a meter with no samples left answers as an unknown one."""

    def delete() -> int:
        _lock_meter(meter_id)
        key = _meter_key(meter_id)
        if key is None:
            return 0
        p = _param()
        where, params = f"meter_key = {p}", [key]
        if start is not None:
            where += f' AND "time" >= {p}'
            params.append(start)
        if end is not None:
            where += f' AND "time" <= {p}'
            params.append(end)
        low, high = database.execute_sql(
            f'SELECT MIN("time"), MAX("time") FROM meter_samples WHERE {where}', params
        ).fetchone()
        if low is None:
            return 0
        deleted = database.execute_sql(f"DELETE FROM meter_samples WHERE {where}", params).rowcount
        sample_pages.forget(key, low)
        remaining = _key_samples_reaching(key, low, high)
        before = [time for time, _ in remaining if time < low]
        after = [time for time, _ in remaining if time > high]
        # Intervals ending or starting at a deleted sample reached at most max_gap beyond it.
        first_hour = hour_of(before[-1] if before and low - before[-1] <= max_gap else low)
        last_hour = hour_of(after[0] - 1 if after and after[0] - high <= max_gap else high)
        _refresh_hours(meter_id, first_hour, last_hour, max_gap)
        return deleted

    return grouped_write(delete)


def delete_meter(meter_id: str) -> int:
    """Delete every sample and rollup of a JOI meter (see delete_samples). Returns the samples deleted."""

    def delete() -> int:
        _lock_meter(meter_id)
        key = _meter_key(meter_id)
        deleted = 0
        if key is not None:
            deleted = database.execute_sql(f"DELETE FROM meter_samples WHERE meter_key = {_param()}", (key,)).rowcount
            sample_pages.forget_meter(key)
        EnergyHour.delete().where((EnergyHour.meter_kind == JOI) & (EnergyHour.meter_id == meter_id)).execute()
        return deleted

    return grouped_write(delete)


def weekday_energy(
    meter_id: str, zone_names: Iterable[str], start: int, end: int, max_gap: int
) -> dict[str, dict[int, float]]:
    """kWh in [start, end) per local weekday (Monday = 0) for each zone.

    Whole hours come from the rollups, summed in SQL per local day; an hour that a local midnight cuts (a
    zone with a quarter-hour offset) is split by the kWh of its first 15, 30 or 45 minutes. The partial
    hours at the window's edges are integrated from the raw samples around them, per quarter hour. A meter
    id that is both a JOI meter and a P1 meter is priced by its kW samples.
    """
    kind = JOI if has_samples(meter_id) else P1
    first_full, end_full = hour_of(start + HOUR - 1), hour_of(end)
    if first_full >= end_full:
        edges, first_full, end_full = [(start, end)], None, None
    else:
        edges = [(start, first_full), (end_full, end)]
    edge_energy: dict[int, float] = {}
    for edge_start, edge_end in edges:
        if edge_start < edge_end and kind == JOI:
            samples = samples_around(meter_id, edge_start, edge_end, max_gap)
            for quarter, kwh in energy_by_hour(samples, max_gap, edge_start, edge_end, QUARTER).items():
                edge_energy[max(quarter, edge_start)] = kwh
    result = {}
    for name in set(zone_names):
        zone = ZoneInfo(name)
        by_weekday = {} if first_full is None else _rollup_weekdays(meter_id, kind, zone, first_full, end_full, max_gap)
        for moment, kwh in edge_energy.items():
            weekday = weekday_at(zone, moment)
            by_weekday[weekday] = by_weekday.get(weekday, 0.0) + kwh
        result[name] = by_weekday
    return result


def _partial_sql(instant: str, p: str) -> str:
    """The kWh of the hour holding `instant` (an SQL expression) before it: 0, or its first 15, 30 or 45
    minutes."""
    hour = f"(({instant} / 3600) * 3600)"  # no % operator: psycopg2 reads it as a placeholder
    return (
        f"COALESCE((SELECT CASE {instant} - {hour} WHEN 900 THEN first_15 WHEN 1800 THEN first_30"
        " WHEN 2700 THEN first_45 ELSE 0 END FROM energy_rollups"
        f" WHERE meter_kind = {p} AND meter_id = {p} AND hour_start = {hour}), 0)"
    )


def _rollup_weekdays(meter_id: str, kind: str, zone: ZoneInfo, start: int, end: int, max_gap: int) -> dict[int, float]:
    """The rollups of [start, end) (whole hours), summed per local weekday.

    For each stretch of constant UTC offset, a recursive CTE lists the local days (midnight, and the
    day's range clipped to the stretch), one index range sum per day adds up its hours, and the days
    are grouped by weekday. Grouping every hour row by a weekday expression instead made SQLite sort
    them all: 2.5 ms for a million samples, twice this. Where the local days start inside an hour (a
    quarter-hour offset), each day adds the part of its first hour after midnight and the part of the
    next day's first hour before it, from the hour's quarter sums.
    """
    p = _param()
    # Only the span that holds rollups: a wide window over sparse data must not cost a seek per empty day.
    low, high = database.execute_sql(
        f"SELECT (SELECT MIN(hour_start) FROM energy_rollups WHERE meter_kind = {p} AND meter_id = {p}"
        f" AND hour_start >= {p}),"
        f" (SELECT MAX(hour_start) FROM energy_rollups WHERE meter_kind = {p} AND meter_id = {p}"
        f" AND hour_start < {p})",
        (kind, meter_id, start, kind, meter_id, end),
    ).fetchone()
    if low is None or high is None or low > high:
        return {}
    by_weekday: dict[int, float] = {}
    for segment in offset_segments(zone, low, high + HOUR):
        if (segment.offset % QUARTER, segment.start % QUARTER, segment.end % QUARTER) != (0, 0, 0):
            _add_sample_weekdays(by_weekday, meter_id, kind, zone, segment, max_gap)
            continue
        first_midnight = segment.start - (segment.start + segment.offset) % 86_400
        whole_hours = (segment.offset % HOUR, segment.start % HOUR, segment.end % HOUR) == (0, 0, 0)
        day_sum = (
            f"(SELECT SUM(kwh) FROM energy_rollups WHERE meter_kind = {p} AND meter_id = {p}"
            " AND hour_start >= (low / 3600) * 3600 AND hour_start < (high / 3600) * 3600)"
        )
        params = [kind, meter_id]
        if not whole_hours:
            day_sum = f"(COALESCE({day_sum}, 0) - {_partial_sql('low', p)} + {_partial_sql('high', p)})"
            params += [kind, meter_id, kind, meter_id]
        # Epoch day 0 was a Thursday (weekday 3); midnight + offset is a local midnight, so >= 0 here.
        rows = database.execute_sql(
            "WITH RECURSIVE days(midnight, low, high) AS ("
            f" SELECT CAST({p} AS BIGINT), CAST({p} AS BIGINT), CAST({p} AS BIGINT)"
            " UNION ALL SELECT midnight + 86400, midnight + 86400,"
            f" CASE WHEN midnight + 172800 > {p} THEN {p} ELSE midnight + 172800 END"
            f" FROM days WHERE midnight + 86400 < {p})"
            " SELECT day - (day / 7) * 7, SUM(kwh) FROM ("
            f" SELECT (midnight + {p}) / 86400 + 3 AS day, {day_sum} AS kwh FROM days) AS day_sums GROUP BY 1",
            (
                first_midnight,
                segment.start,
                min(first_midnight + 86_400, segment.end),
                segment.end,
                segment.end,
                segment.end,
                segment.offset,
                *params,
            ),
        ).fetchall()
        for weekday, kwh in rows:
            if kwh is not None:
                by_weekday[int(weekday)] = by_weekday.get(int(weekday), 0.0) + kwh
    return by_weekday


def _add_sample_weekdays(by_weekday: dict, meter_id: str, kind: str, zone: ZoneInfo, segment, max_gap: int) -> None:
    """A stretch whose offset is not a whole quarter hour (local mean time, before about 1980): integrated
    from the samples per second-exact local day (a P1 meter, which has none, counts its whole hours)."""
    day_start = segment.start
    while day_start < segment.end:
        midnight = day_start - (day_start + segment.offset) % 86_400
        day_end = min(midnight + 86_400, segment.end)
        if kind == JOI:
            samples = samples_between(meter_id, day_start - max_gap, day_end + max_gap)
            kwh = sum(energy_by_hour(samples, max_gap, day_start, day_end).values())
        else:
            kwh = sum(
                row.kwh
                for row in EnergyHour.select().where(
                    (EnergyHour.meter_kind == kind)
                    & (EnergyHour.meter_id == meter_id)
                    & (EnergyHour.hour_start >= day_start)
                    & (EnergyHour.hour_start < day_end)
                )
            )
        weekday = weekday_at(zone, day_start)
        by_weekday[weekday] = by_weekday.get(weekday, 0.0) + kwh
        day_start = day_end


def rollups_match(max_gap: int) -> bool:
    return settings.get(ROLLUP_GAP_SETTING) == str(max_gap)


def rebuild_rollups(max_gap: int) -> int:
    """Recompute every meter's hourly energy (after the gap rule changed). Returns meters rebuilt."""
    sampled = Meter.select(Meter.meter_id).where(
        peewee.fn.EXISTS(MeterSample.select(MeterSample.meter_key).where(MeterSample.meter_key == Meter.meter_key))
    )
    meters = [row[0] for row in sampled.tuples()]
    with database.atomic():
        # Only meters with kW samples are rebuilt; hours of register-only (DSMR) meters stay as they are.
        EnergyHour.delete().where((EnergyHour.meter_kind == JOI) & EnergyHour.meter_id.in_(sampled)).execute()
        for meter_id in meters:
            bounds = period(meter_id)
            _refresh_hours(meter_id, hour_of(bounds[0]), hour_of(bounds[1]), max_gap)
        settings.put(ROLLUP_GAP_SETTING, str(max_gap))
    return len(meters)


# --- verifying the rollups against the samples --------------------------------------------------------------

_ENERGY_TOLERANCE_KWH = 1e-6  # float sums in another order differ in their last bits


def hourly_energy(meter_id: str, kind: str = P1) -> dict[int, HourRollup]:
    query = EnergyHour.select().where((EnergyHour.meter_kind == kind) & (EnergyHour.meter_id == meter_id))
    return {row.hour_start: HourRollup(row.kwh, row.first_15, row.first_30, row.first_45) for row in query}


def energy_differences(stored: Mapping[int, HourRollup], wanted: Mapping[int, HourRollup]) -> list[str]:
    differences = []
    for hour in sorted(set(stored) | set(wanted)):
        have, want = stored.get(hour), wanted.get(hour)
        if have is None or want is None or not _close(have, want):
            differences.append(f"JOI rollup {hour}: stored {have}, recomputed {want}")
    return differences


def _close(have: HourRollup, want: HourRollup) -> bool:
    return all(abs(a - b) <= _ENERGY_TOLERANCE_KWH * max(1.0, abs(b)) for a, b in zip(have, want, strict=True))


def sampled_meters() -> list[str]:
    sampled = Meter.select(Meter.meter_id).where(
        peewee.fn.EXISTS(MeterSample.select(MeterSample.meter_key).where(MeterSample.meter_key == Meter.meter_key))
    )
    return [row[0] for row in sampled.tuples()]


def rollup_differences(meter_id: str, max_gap: int) -> list[str]:
    """How a JOI meter's stored hourly kWh differ from a recomputation from its samples."""
    samples = _sample_rows(meter_id)
    if not samples:
        return []
    wanted = energy_rollups(samples, max_gap, hour_of(samples[0][0]), hour_of(samples[-1][0]) + HOUR)
    return energy_differences(hourly_energy(meter_id, JOI), wanted)


def page_differences(meter_id: str) -> list[str]:
    """How a JOI meter's hour pages differ from its samples (SQLite; see repository/sample_pages.py)."""
    key = _meter_key(meter_id)
    return [] if key is None else sample_pages.differences(key)


def drop_pages(meter_id: str) -> None:
    """Drop a JOI meter's hour pages: reads take its rows until the queue worker pages them again."""
    key = _meter_key(meter_id)
    if key is not None:
        grouped_write(lambda: sample_pages.forget_meter(key))


# --- reduced series for the web pages (controllers/pages_meters.py) -----------------------------------------


def power_buckets(meter_id: str, start: int, end: int, bucket_seconds: int) -> list[tuple[int, float, float, float]]:
    """The meter's kW samples in [start, end] reduced to one row per bucket of `bucket_seconds` (counted from
    `start`): (bucket start, mean, min, max), sorted, empty buckets left out. One grouped index range scan,
    so a chart line never carries more than (end - start) / bucket_seconds points."""
    key = _meter_key(meter_id)
    if key is None:
        return []
    p = _param()
    bucket = f'(("time" - {p}) / {p})'  # integer division on SQLite and PostgreSQL alike (BIGINT operands)
    rows = database.execute_sql(
        f"SELECT {bucket} AS b, AVG(reading), MIN(reading), MAX(reading) FROM meter_samples"
        f' WHERE meter_key = {p} AND "time" >= {p} AND "time" <= {p} GROUP BY b ORDER BY b',
        (start, bucket_seconds, key, start, end),
    ).fetchall()
    return [(start + int(b) * bucket_seconds, float(mean), float(low), float(high)) for b, mean, low, high in rows]


def hourly_kwh_between(meter_id: str, start: int, end: int, kind: str = JOI) -> dict[int, HourRollup]:
    """The stored hour rollups of the hours starting in [start, end), by hour start."""
    query = (
        EnergyHour.select(
            EnergyHour.hour_start, EnergyHour.kwh, EnergyHour.first_15, EnergyHour.first_30, EnergyHour.first_45
        )
        .where(
            (EnergyHour.meter_kind == kind)
            & (EnergyHour.meter_id == meter_id)
            & (EnergyHour.hour_start >= start)
            & (EnergyHour.hour_start < end)
        )
        .tuples()
    )
    return {hour: HourRollup(kwh, q15, q30, q45) for hour, kwh, q15, q30, q45 in query}
