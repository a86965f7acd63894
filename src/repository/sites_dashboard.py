"""What the SilesiaSolar dashboard reads: a user's sites with their hosts and poll records, a host's chart
specs, and its series reduced on the server to buckets (at most a few thousand rows per line).

`owner` is a user id (only that user's sites and hosts) or None (an admin: everyone's). A host outside
the caller's sight is missing (NotFound), as in the API.
"""

from __future__ import annotations

import peewee

from domain import modbus
from domain.errors import NotFound
from domain.modbus import BucketSummary
from domain.silesia import Host, Location
from domain.sites_dashboard import ChartSpec, HostSummary, Site, Window, buckets_in
from repository import modbus as modbus_repo
from repository.modbus import Sample, Series
from repository.silesia import (
    HOST_FIELDS,
    LOCATION_FIELDS,
    HostMeasurementRow,
    HostRow,
    LocationRow,
    MeasurementRow,
    MeterRow,
    RegisterRow,
    visible_to,
)
from repository.users import UserRow


def _host_summaries(rows: list[tuple]) -> list[HostSummary]:
    """Hosts (their fields, then meter name and owner name) with their assignments and poll records."""
    ids = [row[0] for row in rows]
    assigned: dict[int, list[str]] = {}
    for start in range(0, len(ids), modbus_repo.CHUNK):
        query = (
            HostMeasurementRow.select(HostMeasurementRow.host, MeasurementRow.name)
            .join(MeasurementRow, on=HostMeasurementRow.measurement == MeasurementRow.id)
            .where(HostMeasurementRow.host.in_(ids[start : start + modbus_repo.CHUNK]))
            .order_by(HostMeasurementRow.host, HostMeasurementRow.id)
        )
        for host_id, name in query.tuples():
            assigned.setdefault(host_id, []).append(name)
    statuses = modbus_repo.poll_statuses(ids)
    return [
        HostSummary(Host(*fields), meter_name, tuple(assigned.get(fields[0], ())), statuses.get(fields[0]), owner)
        for *fields, meter_name, owner in rows
    ]


def _host_query(owner: int | None) -> peewee.Select:
    query = (
        HostRow.select(*HOST_FIELDS, MeterRow.name, UserRow.username)
        .join(MeterRow, on=HostRow.meter == MeterRow.id)
        .switch(HostRow)
        .join(UserRow, on=HostRow.user == UserRow.id)
    )
    return visible_to(query, HostRow, owner)


def sites(owner: int | None) -> list[Site]:
    """Every visible location (by owner, then id) with its hosts (by id), including locations without hosts."""
    locations = (
        visible_to(LocationRow.select(*LOCATION_FIELDS, UserRow.username), LocationRow, owner)
        .join(UserRow, on=LocationRow.user == UserRow.id)
        .order_by(LocationRow.user, LocationRow.id)
        .tuples()
    )
    hosts_by_location: dict[int, list[HostSummary]] = {}
    for summary in _host_summaries(list(_host_query(owner).order_by(HostRow.id).tuples())):
        hosts_by_location.setdefault(summary.host.location, []).append(summary)
    return [
        Site(Location(*fields), tuple(hosts_by_location.get(fields[0], ())), owner_name)
        for *fields, owner_name in locations
    ]


def host(host_id: int, owner: int | None) -> tuple[HostSummary, Location]:
    rows = list(_host_query(owner).where(HostRow.id == host_id).tuples())
    if not rows:
        raise NotFound(f"There is no host {host_id}.")
    summary = _host_summaries(rows)[0]
    location = LocationRow.select(*LOCATION_FIELDS).where(LocationRow.id == summary.host.location).tuples().first()
    return summary, Location(*location)


def chart_specs(host_id: int) -> list[ChartSpec]:
    """The host's assigned measurements in the order assigned, each with its type and the unit of the
    register its meter model reads it with."""
    query = (
        HostMeasurementRow.select(MeasurementRow.name, MeasurementRow.type, RegisterRow.unit)
        .join(HostRow, on=HostMeasurementRow.host == HostRow.id)
        .switch(HostMeasurementRow)
        .join(MeasurementRow, on=HostMeasurementRow.measurement == MeasurementRow.id)
        .join(
            RegisterRow,
            peewee.JOIN.LEFT_OUTER,
            on=(RegisterRow.measurement == MeasurementRow.id) & (RegisterRow.meter == HostRow.meter),
        )
        .where(HostMeasurementRow.host == host_id)
        .order_by(HostMeasurementRow.id)
    )
    return [ChartSpec(name, kind, unit or "") for name, kind, unit in query.tuples()]


def _series(host_id: int, measurement: str | None = None, kind: int | None = None) -> peewee.Select:
    query = Series.select(Series.id).where(Series.host_id == host_id)
    if measurement is not None:
        query = query.where(Series.measurement == measurement)
    if kind is not None:
        query = query.where(Series.measurement_type == kind)
    return query


def latest_sample_ms(host_id: int) -> int | None:
    return Sample.select(peewee.fn.MAX(Sample.time_ms)).where(Sample.series.in_(_series(host_id))).scalar()


def series_buckets(host_id: int, measurement: str, bucket_ms: int, window: Window) -> list[BucketSummary]:
    """The measurement's buckets over the window (min/mean/max, or a counter's increase), computed in
    SQL: at most one row per series and bucket the window touches."""
    series_count = _series(host_id, measurement).count()
    if not series_count:
        return []
    return modbus_repo.buckets(
        host_id,
        measurement=measurement,
        bucket_ms=bucket_ms,
        start_ms=window.start_ms,
        end_ms=window.end_ms,
        limit=buckets_in(window, bucket_ms) * series_count,
    )


def has_counter_samples(host_id: int, measurement: str, window: Window) -> bool:
    """Whether the counter has a sample in the window (else there is nothing to price)."""
    return (
        Sample.select()
        .where(
            Sample.series.in_(_series(host_id, measurement, modbus.COUNTER)),
            Sample.time_ms >= window.start_ms,
            Sample.time_ms <= window.end_ms,
        )
        .exists()
    )
