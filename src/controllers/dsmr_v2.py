"""DSMR-reader API v2 (RESTful): readings, today's consumption, hour and day statistics, supplier prices,
meter statistics and the version. Every operation checks the key first (see dsmr_common.v2_operation)."""

from __future__ import annotations

import tomllib
from dataclasses import replace
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
    day_window,
    installation_today,
    instant_window,
    meter_filter,
    page_request,
    prices_from_fields,
    reading_from_fields,
    resolve_meter,
)
from domain.errors import Conflict, NotFound
from domain.statistics import consumption_today
from repository import dsmr as dsmr_repo


@v2_operation
def create_reading(body: dict | None = None):
    tz = time_zone()
    reading = reading_from_fields(
        body or {}, tz, now=datetime.now(UTC), max_future_skew=settings().max_future_skew_seconds
    )
    reading = replace(reading, meter=resolve_meter(reading.meter, dsmr_repo.known_meters))
    stored = dsmr_repo.store_reading(reading, tz)
    ingest_events.dsmr_reading_stored(stored, reading, tz)
    if not stored.created and not stored.reading.value.same_values(reading):
        raise Conflict(
            f"meter {reading.meter} already has another reading at {reading.timestamp.isoformat()}; nothing was changed"
        )
    return json_response(reading_json(stored.reading.id, stored.reading.value, tz, local=True), 201)


@v2_operation
def list_readings(
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
    meter = meter_filter(meter)
    window = instant_window(timestamp__gte, timestamp__lte, tz, ("timestamp__gte", "timestamp__lte"))
    whole_installation = meter is None
    page = page_request(
        ordering=ordering,
        field="timestamp",
        offset=offset,
        limit=limit,
        after=after,
        before=before,
        key_length=2 if whole_installation else 1,
    )
    count, items = dsmr_repo.readings_page(meter, window, page)
    return page_json(
        count,
        items,
        page,
        lambda item: dsmr_repo.reading_key(item, whole_installation),
        lambda item: reading_json(item.id, item.value, tz, local=False),
    )


@v2_operation
def hour_statistics(
    hour_start__gte=None,
    hour_start__lte=None,
    ordering=None,
    offset=None,
    limit=None,
    after=None,
    before=None,
    meter=None,
):
    meter = meter_filter(meter)
    window = instant_window(hour_start__gte, hour_start__lte, time_zone(), ("hour_start__gte", "hour_start__lte"))
    page = page_request(ordering=ordering, field="hour_start", offset=offset, limit=limit, after=after, before=before)
    count, items = dsmr_repo.hour_statistics_page(meter, window, page)
    return page_json(count, items, page, dsmr_repo.hour_key, lambda item: hour_json(item.id, item.value, meter))


@v2_operation
def day_statistics(
    day__gte=None, day__lte=None, ordering=None, offset=None, limit=None, after=None, before=None, meter=None
):
    meter = meter_filter(meter)
    first, last = day_window(day__gte, day__lte)
    page = page_request(ordering=ordering, field="day", offset=offset, limit=limit, after=after, before=before)
    count, items = dsmr_repo.day_statistics_page(meter, first, last, page)
    return page_json(count, items, page, dsmr_repo.day_key, lambda item: day_json(item.id, item.value, meter))


@v2_operation
def today(meter=None):
    tz = time_zone()
    meter = meter_filter(meter)
    day = datetime.now(tz).date()
    meters = [meter] if meter is not None else dsmr_repo.known_meters()
    contracts = dsmr_repo.energy_prices()
    statistic = installation_today(
        (consumption_today(dsmr_repo.positions_for_day(name, day, tz), tz, contracts, day) for name in meters), day
    )
    if statistic is None:
        raise NotFound(f"No electricity readings found for: {day.isoformat()}")
    return json_response(today_json(statistic, meter))


@v2_operation
def list_energy_prices(ordering=None, offset=None, limit=None, after=None, before=None):
    page = page_request(
        ordering=ordering, field="start", offset=offset, limit=limit, after=after, before=before, key_length=2
    )
    count, items = dsmr_repo.energy_prices_page(page)
    return page_json(count, items, page, dsmr_repo.price_key, lambda item: prices_json(item.id, item.value))


@v2_operation
def create_energy_prices(body: dict | None = None):
    stored = dsmr_repo.add_energy_prices(prices_from_fields(body or {}), time_zone())
    return json_response(prices_json(stored.id, stored.value), 201)


@v2_operation
def meter_statistics(meter=None):
    statistics = dsmr_repo.meter_statistics(meter_filter(meter))
    if statistics is None:
        raise NotFound(f"No meter {meter!r} is known.")
    return json_response(meter_statistics_json(statistics, time_zone()))


@lru_cache(maxsize=1)
def _application_version() -> str:
    with open(PROJECT_ROOT / "pyproject.toml", "rb") as project:
        return tomllib.load(project)["project"]["version"]


@v2_operation
def version():
    return json_response({"version": _application_version()})
