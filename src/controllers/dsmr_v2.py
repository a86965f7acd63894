"""DSMR-reader API v2 (RESTful): readings, today's consumption, hour and day statistics, supplier prices,
meter statistics and the version. Every operation checks the key first (see dsmr_common.v2_operation) and
answers only the data of the key's installation."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from functools import lru_cache

import ingest_events
from config import PROJECT_ROOT
from controllers.context import settings
from controllers.dsmr_common import (
    day_json,
    hour_json,
    meter_statistics_json,
    page_json,
    prices_json,
    reading_json,
    time_zone,
    today_json,
    v2_operation,
)
from controllers.responses import json_response
from domain.dsmr import (
    Installation,
    check_named_meter,
    day_window,
    instant_window,
    meter_filter,
    page_request,
    prices_from_fields,
    reading_from_fields,
)
from domain.errors import Conflict, NotFound
from repository import dsmr as dsmr_repo


@v2_operation
def create_reading(installation: Installation, body: dict | None = None):
    tz = time_zone()
    reading = reading_from_fields(
        body or {}, tz, now=datetime.now(UTC), max_future_skew=settings().max_future_skew_seconds
    )
    check_named_meter(installation, reading.meter)
    try:
        stored = dsmr_repo.store_reading(installation, reading, tz, max_gap=settings().dsmr_max_gap_seconds)
    except Conflict:
        ingest_events.dsmr_reading_conflict()
        raise
    ingest_events.dsmr_reading_stored(installation, stored, tz)
    meter = installation.joi_meter_id
    return json_response(reading_json(stored.reading.id, stored.reading.value, tz, local=True, meter=meter), 201)


def _own_meter(installation: Installation, meter: object) -> str | None:
    """The meter the installation's data is stored under, or None when the `meter` filter names another
    (the answer is then empty: another installation's data is never shown)."""
    named = meter_filter(meter)
    return installation.meter if named is None or installation.is_called(named) else None


@v2_operation
def list_readings(
    installation: Installation,
    timestamp__gte=None,
    timestamp__lte=None,
    ordering=None,
    offset=None,
    limit=None,
    after=None,
    before=None,
    meter=None,
):
    tz = time_zone()
    own = _own_meter(installation, meter)
    window = instant_window(timestamp__gte, timestamp__lte, tz, ("timestamp__gte", "timestamp__lte"))
    page = page_request(
        ordering=ordering, field="timestamp", offset=offset, limit=limit, after=after, before=before, key_length=1
    )
    count, items = (0, []) if own is None else dsmr_repo.readings_page(own, window, page)
    return page_json(
        count,
        items,
        page,
        dsmr_repo.reading_key,
        lambda item: reading_json(item.id, item.value, tz, local=False, meter=installation.joi_meter_id),
    )


@v2_operation
def hour_statistics(
    installation: Installation,
    hour_start__gte=None,
    hour_start__lte=None,
    ordering=None,
    offset=None,
    limit=None,
    after=None,
    before=None,
    meter=None,
):
    own = _own_meter(installation, meter)
    window = instant_window(hour_start__gte, hour_start__lte, time_zone(), ("hour_start__gte", "hour_start__lte"))
    page = page_request(ordering=ordering, field="hour_start", offset=offset, limit=limit, after=after, before=before)
    count, items = (0, []) if own is None else dsmr_repo.hour_statistics_page(own, window, page)
    name = installation.joi_meter_id
    return page_json(count, items, page, dsmr_repo.hour_key, lambda item: hour_json(item.id, item.value, name))


@v2_operation
def day_statistics(
    installation: Installation,
    day__gte=None,
    day__lte=None,
    ordering=None,
    offset=None,
    limit=None,
    after=None,
    before=None,
    meter=None,
):
    own = _own_meter(installation, meter)
    first, last = day_window(day__gte, day__lte)
    page = page_request(ordering=ordering, field="day", offset=offset, limit=limit, after=after, before=before)
    count, items = (0, []) if own is None else dsmr_repo.day_statistics_page(own, first, last, page)
    name = installation.joi_meter_id
    return page_json(count, items, page, dsmr_repo.day_key, lambda item: day_json(item.id, item.value, name))


@v2_operation
def today(installation: Installation, meter=None):
    tz = time_zone()
    own = _own_meter(installation, meter)
    day = datetime.now(tz).date()
    statistic = None if own is None else dsmr_repo.today(own, day, tz)
    if statistic is None:
        raise NotFound(f"No electricity readings found for: {day.isoformat()}")
    return json_response(today_json(statistic, installation.joi_meter_id))


@v2_operation
def list_energy_prices(installation: Installation, ordering=None, offset=None, limit=None, after=None, before=None):
    page = page_request(
        ordering=ordering, field="start", offset=offset, limit=limit, after=after, before=before, key_length=2
    )
    count, items = dsmr_repo.energy_prices_page(installation.meter, page)
    return page_json(count, items, page, dsmr_repo.price_key, lambda item: prices_json(item.id, item.value))


@v2_operation
def create_energy_prices(installation: Installation, body: dict | None = None):
    stored = dsmr_repo.add_energy_prices(installation, prices_from_fields(body or {}), time_zone())
    return json_response(prices_json(stored.id, stored.value), 201)


@v2_operation
def meter_statistics(installation: Installation, meter=None):
    own = _own_meter(installation, meter)
    if own is None:
        raise NotFound(f"No meter {meter!r} is known to this key's installation ({installation.name}).")
    statistics = dsmr_repo.meter_statistics(own)
    return json_response(meter_statistics_json(statistics, time_zone(), installation.joi_meter_id))


@lru_cache(maxsize=1)
def _application_version() -> str:
    with open(PROJECT_ROOT / "pyproject.toml", "rb") as project:
        return tomllib.load(project)["project"]["version"]


@v2_operation
def version(installation: Installation):
    return json_response({"version": _application_version()})
