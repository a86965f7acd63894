"""Modbus samples, the series they belong to, and each host's poll record (and its claim by a round)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence

import peewee

from domain import modbus, tariffs
from domain.errors import Conflict
from domain.modbus import BucketSummary, HostOutcome, PollStatus, StoredSample
from domain.tariffs import PlanComparison
from repository import accounts as plans_repo
from repository.db import BaseModel, database, is_sqlite, write_transaction
from repository.silesia import HostRow

CHUNK = 500  # rows (or ids) per statement: well inside SQLite's and PostgreSQL's parameter limits


class Series(BaseModel):
    host_id = peewee.IntegerField()
    measurement = peewee.CharField(max_length=100)
    unit = peewee.CharField(max_length=32)
    measurement_type = peewee.SmallIntegerField()

    class Meta:
        table_name = "modbus_series"


class Sample(BaseModel):
    series = peewee.ForeignKeyField(Series, column_name="series_id", on_delete="CASCADE")
    time_ms = peewee.BigIntegerField()
    value = peewee.DoubleField()

    class Meta:
        table_name = "modbus_samples"
        primary_key = peewee.CompositeKey("series", "time_ms")


class PollStatusRow(BaseModel):
    host_id = peewee.IntegerField(primary_key=True)
    last_poll_at_ms = peewee.BigIntegerField(null=True)
    last_success_at_ms = peewee.BigIntegerField(null=True)
    last_error = peewee.TextField(null=True)
    last_error_at_ms = peewee.BigIntegerField(null=True)
    consecutive_failures = peewee.IntegerField(default=0)
    last_outcome = peewee.CharField(max_length=8, null=True)
    measurements_read = peewee.IntegerField(default=0)
    measurements_failed = peewee.IntegerField(default=0)
    failing_since_ms = peewee.BigIntegerField(null=True)
    claimed_until_ms = peewee.BigIntegerField(null=True)
    claim_token = peewee.CharField(max_length=32, null=True)
    due_at_ms = peewee.BigIntegerField(null=True)

    class Meta:
        table_name = "modbus_poll_status"


def _chunks(items: Sequence, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _existing_hosts(host_ids: Iterable[int]) -> set[int]:
    """The hosts that still exist, kept from being deleted until this transaction ends (a host deleted
    while its round ran is dropped from the round instead of failing the round's transaction)."""
    found: set[int] = set()
    for chunk in _chunks(sorted(set(host_ids))):
        query = HostRow.select(HostRow.id).where(HostRow.id.in_(chunk))
        if not is_sqlite():  # SQLite runs one writer at a time: nobody deletes in between
            query = query.for_update("FOR KEY SHARE")
        found.update(host_id for (host_id,) in query.tuples())
    return found


# ---- claiming hosts for a round ----


def claim_due_hosts(host_ids: Iterable[int], *, now_ms: int, interval_ms: int, lease_ms: int) -> set[int]:
    """Claim the hosts that are due and not claimed by another round; returns the ids claimed.

    A claimed host is due again half an interval after this claim, so two rounds started for the same
    interval (two schedulers, a retried task) poll it once, while the next interval's round finds it due.
    """
    token = secrets.token_hex(16)
    with write_transaction():
        ids = sorted(_existing_hosts(host_ids))
        for chunk in _chunks(ids):
            PollStatusRow.insert_many([{"host_id": host_id} for host_id in chunk]).on_conflict_ignore().execute()
            (
                PollStatusRow.update(
                    claimed_until_ms=now_ms + lease_ms, claim_token=token, due_at_ms=now_ms + interval_ms // 2
                )
                .where(
                    PollStatusRow.host_id.in_(chunk),
                    (PollStatusRow.claimed_until_ms.is_null()) | (PollStatusRow.claimed_until_ms < now_ms),
                    (PollStatusRow.due_at_ms.is_null()) | (PollStatusRow.due_at_ms <= now_ms),
                )
                .execute()
            )
        claimed = PollStatusRow.select(PollStatusRow.host_id).where(PollStatusRow.claim_token == token).tuples()
        return {host_id for (host_id,) in claimed}


def release(host_ids: Iterable[int]) -> None:
    """Give claims back without an outcome (a round that failed before it read anything)."""
    ids = sorted(set(host_ids))
    with write_transaction():
        for chunk in _chunks(ids):
            PollStatusRow.update(claimed_until_ms=None, claim_token=None).where(
                PollStatusRow.host_id.in_(chunk)
            ).execute()


# ---- storing a round ----


def store_round(samples: Sequence, outcomes: Sequence[HostOutcome]) -> None:
    """Samples (modbus_reader.Sample) and outcomes of one round, in one transaction; releases the claims."""
    with write_transaction():
        existing = _existing_hosts([outcome.host_id for outcome in outcomes] + [sample.host_id for sample in samples])
        samples = [sample for sample in samples if sample.host_id in existing]
        outcomes = [outcome for outcome in outcomes if outcome.host_id in existing]
        series_ids = _series_ids(samples)
        rows = [
            (series_ids[(sample.host_id, sample.measurement, sample.unit)], sample.time_ms, sample.value)
            for sample in samples
        ]
        for chunk in _chunks(rows):
            (
                Sample.insert_many(chunk, fields=[Sample.series, Sample.time_ms, Sample.value])
                .on_conflict(
                    conflict_target=[Sample.series, Sample.time_ms], update={Sample.value: peewee.EXCLUDED.value}
                )
                .execute()
            )
        _store_statuses(outcomes)


def _series_ids(samples: Sequence) -> dict[tuple[int, str, str], int]:
    kinds = {(sample.host_id, sample.measurement, sample.unit): sample.measurement_type for sample in samples}
    ids = _known_series(kinds)
    missing = [key for key in kinds if key not in ids]
    for chunk in _chunks(missing):
        Series.insert_many(
            [(host, measurement, unit, kinds[(host, measurement, unit)]) for host, measurement, unit in chunk],
            fields=[Series.host_id, Series.measurement, Series.unit, Series.measurement_type],
        ).on_conflict_ignore().execute()
    if missing:
        ids = _known_series(kinds)
    changed = [key for key, kind in kinds.items() if ids[key][1] != kind]
    for host, measurement, unit in changed:  # a register's measurement was retyped by an admin
        Series.update(measurement_type=kinds[(host, measurement, unit)]).where(
            Series.id == ids[(host, measurement, unit)][0]
        ).execute()
    return {key: series_id for key, (series_id, _) in ids.items()}


def _known_series(keys: Iterable[tuple[int, str, str]]) -> dict[tuple[int, str, str], tuple[int, int]]:
    wanted = set(keys)
    hosts = sorted({host for host, _, _ in wanted})
    found: dict[tuple[int, str, str], tuple[int, int]] = {}
    for chunk in _chunks(hosts):
        query = Series.select(Series.id, Series.host_id, Series.measurement, Series.unit, Series.measurement_type)
        for series_id, host, measurement, unit, kind in query.where(Series.host_id.in_(chunk)).tuples():
            if (host, measurement, unit) in wanted:
                found[(host, measurement, unit)] = (series_id, kind)
    return found


_STATUS_FIELDS = (
    "last_poll_at_ms",
    "last_success_at_ms",
    "last_error",
    "last_error_at_ms",
    "consecutive_failures",
    "last_outcome",
    "measurements_read",
    "measurements_failed",
    "failing_since_ms",
)


def _store_statuses(outcomes: Sequence[HostOutcome]) -> None:
    previous = _statuses([outcome.host_id for outcome in outcomes])
    rows = []
    for outcome in outcomes:
        status = modbus.next_status(previous.get(outcome.host_id), outcome)
        row = {name: getattr(status, name) for name in _STATUS_FIELDS}
        rows.append({"host_id": outcome.host_id, **row, "claimed_until_ms": None, "claim_token": None})
    update = {getattr(PollStatusRow, name): getattr(peewee.EXCLUDED, name) for name in _STATUS_FIELDS}
    update.update({PollStatusRow.claimed_until_ms: None, PollStatusRow.claim_token: None})
    for chunk in _chunks(rows):
        PollStatusRow.insert_many(chunk).on_conflict(conflict_target=[PollStatusRow.host_id], update=update).execute()


def _statuses(host_ids: Sequence[int]) -> dict[int, PollStatus]:
    found: dict[int, PollStatus] = {}
    for chunk in _chunks(sorted(set(host_ids))):
        query = PollStatusRow.select().where(
            PollStatusRow.host_id.in_(chunk), PollStatusRow.last_poll_at_ms.is_null(False)
        )
        for row in query:
            found[row.host_id] = _to_status(row)
    return found


def _to_status(row: PollStatusRow) -> PollStatus:
    return PollStatus(host_id=row.host_id, **{name: getattr(row, name) for name in _STATUS_FIELDS})


def failure_counts(host_ids: Iterable[int]) -> dict[int, int]:
    """consecutive_failures of each host that has been polled."""
    return {host_id: status.consecutive_failures for host_id, status in _statuses(list(host_ids)).items()}


def poll_statuses(host_ids: Iterable[int]) -> dict[int, PollStatus]:
    """The poll records of the hosts that have been polled."""
    return _statuses(list(host_ids))


def poll_status(host_id: int) -> PollStatus | None:
    """The host's poll record; None before its first poll."""
    return _statuses([host_id]).get(host_id)


# ---- reading samples ----

Cursor = tuple[int, int]  # (time_ms, series_id) of the last item of the previous page


def _series_of(host_id: int, measurement: str | None, kind: int | None = None):
    query = Series.select().where(Series.host_id == host_id)
    if measurement is not None:
        query = query.where(Series.measurement == measurement)
    if kind is not None:
        query = query.where(Series.measurement_type == kind)
    return {row.id: row for row in query}


def samples(
    host_id: int,
    *,
    measurement: str | None,
    start_ms: int | None,
    end_ms: int | None,
    limit: int,
    after: Cursor | None = None,
) -> list[StoredSample]:
    """Samples of a host sorted by time (then series), both bounds inclusive, at most `limit`."""
    series = _series_of(host_id, measurement)
    if not series:
        return []
    query = Sample.select(Sample.series_id, Sample.time_ms, Sample.value).where(Sample.series.in_(list(series)))
    if start_ms is not None:
        query = query.where(Sample.time_ms >= start_ms)
    if end_ms is not None:
        query = query.where(Sample.time_ms <= end_ms)
    if after is not None:
        query = query.where(peewee.Tuple(Sample.time_ms, Sample.series) > peewee.Tuple(*after))
    query = query.order_by(Sample.time_ms, Sample.series).limit(limit)
    return [
        StoredSample(time_ms, series_id, series[series_id].measurement, series[series_id].unit, value)
        for series_id, time_ms, value in query.tuples()
    ]


def buckets(
    host_id: int,
    *,
    measurement: str | None,
    bucket_ms: int,
    start_ms: int | None,
    end_ms: int | None,
    limit: int,
    after: Cursor | None = None,
) -> list[BucketSummary]:
    """Per bucket of `bucket_ms` (aligned to the epoch, so to UTC) and series, sorted by bucket then
    series: min/mean/max of instantaneous measurements, the increase of counters, computed in SQL."""
    series = _series_of(host_id, measurement)
    if not series:
        return []
    instantaneous = [sid for sid, row in series.items() if row.measurement_type != modbus.COUNTER]
    counters = [sid for sid, row in series.items() if row.measurement_type == modbus.COUNTER]
    found = _instantaneous_buckets(instantaneous, bucket_ms, start_ms, end_ms, limit, after)
    for series_id in counters:
        found += _counter_buckets(series_id, bucket_ms, start_ms, end_ms, limit, after)
    found.sort(key=lambda item: (item[0], item[1]))
    return [_bucket(series[item[1]], *item) for item in found[:limit]]


def _bucket(row: Series, start_ms, _series_id, samples_count, minimum, mean, maximum, increase) -> BucketSummary:
    return BucketSummary(
        start_ms=int(start_ms),
        series_id=row.id,
        measurement=row.measurement,
        unit=row.unit,
        measurement_type=row.measurement_type,
        samples=int(samples_count),
        minimum=minimum,
        mean=mean,
        maximum=maximum,
        increase=increase,
    )


def _bucket_start(bucket_ms: int):
    # Integer division on both databases: the bucket's first millisecond.
    return (Sample.time_ms / bucket_ms) * bucket_ms


def _after_bucket(query, bucket, after: Cursor | None, series_field):
    if after is None:
        return query
    return query.having(peewee.Tuple(bucket, series_field) > peewee.Tuple(*after))


def _instantaneous_buckets(series_ids, bucket_ms, start_ms, end_ms, limit, after) -> list[tuple]:
    if not series_ids:
        return []
    bucket = _bucket_start(bucket_ms)
    query = Sample.select(
        bucket.alias("bucket"),
        Sample.series_id,
        peewee.fn.COUNT(Sample.time_ms),
        peewee.fn.MIN(Sample.value),
        peewee.fn.AVG(Sample.value),
        peewee.fn.MAX(Sample.value),
    ).where(Sample.series.in_(series_ids))
    query = _window(query, Sample.time_ms, start_ms, end_ms)
    query = _after_bucket(query.group_by(bucket, Sample.series_id), bucket, after, Sample.series_id)
    return [(*row, None) for row in query.order_by(bucket, Sample.series_id).limit(limit).tuples()]


def _window(query, time_field, start_ms, end_ms):
    if start_ms is not None:
        query = query.where(time_field >= start_ms)
    if end_ms is not None:
        query = query.where(time_field <= end_ms)
    return query


def _counter_rises(series_id: int, start_ms: int | None, end_ms: int | None):
    """A subquery of the counter's samples in the window, each with its rise since the sample before it
    (the one just before the window included, so the first bucket's increase is not lost)."""
    baseline = start_ms
    if start_ms is not None:
        earlier = (
            Sample.select(peewee.fn.MAX(Sample.time_ms))
            .where(Sample.series == series_id, Sample.time_ms < start_ms)
            .scalar()
        )
        baseline = earlier if earlier is not None else start_ms
    previous_value = peewee.fn.LAG(Sample.value).over(order_by=[Sample.time_ms])
    previous_time = peewee.fn.LAG(Sample.time_ms).over(order_by=[Sample.time_ms])
    query = Sample.select(
        Sample.time_ms, Sample.value, previous_value.alias("previous_value"), previous_time.alias("previous_time")
    ).where(Sample.series == series_id)
    return _window(query, Sample.time_ms, baseline, end_ms)


def _rise(rises):
    rose = rises.c.previous_value.is_null(False) & (rises.c.value > rises.c.previous_value)
    return peewee.Case(None, [(rose, rises.c.value - rises.c.previous_value)], 0.0)


def _counter_buckets(series_id, bucket_ms, start_ms, end_ms, limit, after) -> list[tuple]:
    rises = _counter_rises(series_id, start_ms, end_ms).alias("rises")
    bucket = (rises.c.time_ms / bucket_ms) * bucket_ms
    columns = [bucket.alias("bucket"), peewee.fn.COUNT(rises.c.time_ms), peewee.fn.SUM(_rise(rises))]
    query = peewee.Select([rises], columns).where(rises.c.time_ms >= (start_ms or 0)).group_by(bucket)
    if after is not None:  # this series' buckets after the cursor: a later bucket, or the same one after it
        first = after[0] if series_id > after[1] else after[0] + 1
        query = query.having(bucket >= first)
    query = query.order_by(bucket).limit(limit)
    rows = query.bind(database).tuples()
    return [(int(start), series_id, count, None, None, None, increase or 0.0) for start, count, increase in rows]


def counter_slices(
    host_id: int, measurement: str, *, start_ms: int, end_ms: int, slice_ms: int, max_gap_ms: int
) -> tuple[list[tuple[int, float]], set[str]]:
    """The rises of the host's counter in kWh per slice (of the later sample), skipping rises across gaps
    longer than `max_gap_ms` (energy whose time is unknown is not priced); and the counter's units (a
    series in a unit that is not an energy unit adds nothing)."""
    series = _series_of(host_id, measurement, modbus.COUNTER)
    slices: dict[int, float] = {}
    units = set()
    for series_id, row in series.items():
        factor = modbus.kwh_factor(row.unit)
        units.add(row.unit)
        if factor is None:
            continue
        rises = _counter_rises(series_id, start_ms, end_ms).alias("rises")
        slice_start = (rises.c.time_ms / slice_ms) * slice_ms
        priced = (rises.c.time_ms - rises.c.previous_time) <= max_gap_ms
        query = (
            peewee.Select([rises], [slice_start, peewee.fn.SUM(_rise(rises))])
            .where(rises.c.time_ms >= start_ms, priced)
            .group_by(slice_start)
        )
        for start, rise in query.bind(database).tuples():
            slices[int(start)] = slices.get(int(start), 0.0) + (rise or 0.0) * factor
    return sorted(slices.items()), units


def counter_period(host_id: int, measurement: str) -> tuple[int, int] | None:
    """First and last sample time (epoch ms) of the host's counter, or None without samples."""
    series = list(_series_of(host_id, measurement, modbus.COUNTER))
    if not series:
        return None
    first, last = (
        Sample.select(peewee.fn.MIN(Sample.time_ms), peewee.fn.MAX(Sample.time_ms))
        .where(Sample.series.in_(series))
        .tuples()
        .first()
    )
    return None if first is None else (first, last)


def price_comparison(host_id: int, measurement: str, *, start_ms: int, end_ms: int, max_gap_ms: int) -> PlanComparison:
    """What the energy the host's counter measured in the window would cost on every plan, cheapest first
    (the JOI plans' rules: weekday multipliers in each plan's zone, standing charge per local day). A
    host has no plan of its own. A counter in no energy unit is a Conflict (it cannot be priced)."""
    slices, units = counter_slices(
        host_id, measurement, start_ms=start_ms, end_ms=end_ms, slice_ms=modbus.PRICING_SLICE_MS, max_gap_ms=max_gap_ms
    )
    if not any(modbus.kwh_factor(unit) is not None for unit in units):
        raise Conflict(
            f"The {measurement} counter of host {host_id} is in {', '.join(sorted(units))!r},"
            " not an energy unit (Wh, kWh or MWh): fix its register's unit."
        )
    plans = plans_repo.price_plans()
    energy = modbus.weekday_energy(slices, {plan.time_zone for plan in plans})
    return tariffs.compare(plans, energy, (start_ms // 1000, end_ms // 1000), None)
