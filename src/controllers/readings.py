"""JOI Energy readings: POST /readings/store, GET /readings/read/{smartMeterId}."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import urlencode

import orjson
from flask import request

import ingest_events
from config import Config
from controllers.access import caller, require_meter_read, require_meter_write
from controllers.context import now, settings
from controllers.responses import json_response
from domain.access import OPEN, Caller
from domain.errors import InvalidInput, NotFound
from domain.usage import SampleColumns, check_readings
from jsonify import number_pairs_as_objects
from repository import dsmr as dsmr_repo
from repository import readings as readings_repo


def store(body: dict):
    return json_response(store_readings(body, settings(), caller()))


def store_readings(body: dict, config: Config, who: Caller = OPEN) -> dict:
    """POST /readings/store without Flask: the controller above and the ASGI fast path (fastpath.py)
    both answer through this. Returns the JSON body of the 200 answer."""
    meter_id = body["smartMeterId"]
    require_meter_write(who, meter_id)
    sent = body["electricityReadings"]
    # Columns rather than a Reading per sample: a batch holds up to 10,000 of them.
    times = [item["time"] for item in sent]
    values = [item["reading"] for item in sent]
    check_readings(times, values, now=now(), max_future_skew=config.max_future_skew_seconds)
    stored = SampleColumns.of(times, values)
    readings_repo.store_columns(meter_id, stored, config.max_reading_gap_seconds)
    ingest_events.joi_readings_stored(meter_id, stored)
    # What was sent in time order without repeats is exactly what was stored, so it is its own answer.
    answer = sent if stored.times is times else _readings_json(zip(*stored, strict=True))
    return {"smartMeterId": meter_id, "electricityReadings": answer}


def read(
    smart_meter_id: str,
    from_: int | None = None,
    to: int | None = None,
    limit: int | None = None,
    after: int | None = None,
):
    answer, headers = read_readings(smart_meter_id, from_, to, limit, after, caller(), _page_after)
    return json_response(answer, headers=headers)


def read_readings(
    meter_id: str,
    from_: int | None,
    to: int | None,
    limit: int | None,
    after: int | None,
    who: Caller,
    page_after: Callable[[int], str],
) -> tuple[orjson.Fragment, dict | None]:
    """GET /readings/read without Flask (the controller above and the ASGI fast path answer through it):
    the seed's plain list; with `limit`, a page of it, and a `Link: <...>; rel="next"` header while more
    readings follow (its `after` is the last time on this page: the next page is an index seek)."""
    require_meter_read(meter_id, who)
    check_window(from_, to)
    start = from_ if after is None else max(after + 1, from_ or 0)
    samples = readings_repo.sample_pairs(meter_id, start, to, None if limit is None else limit + 1)
    if not samples:
        _refuse_unknown_or_p1_meter(meter_id)
    headers = None
    if limit is not None and len(samples) > limit:
        samples = samples[:limit]
        last_time = samples[-1][0]
        headers = {"Link": f'<{page_after(last_time)}>; rel="next"'}
    return number_pairs_as_objects(samples, "time", "reading"), headers


def _page_after(time: int) -> str:
    """This request's URL with `after` moved to `time` (every other parameter kept)."""
    return page_url(request.base_url, request.args.items(), time)


def page_url(base_url: str, args: Iterable[tuple[str, str]], after: int) -> str:
    query = {name: value for name, value in args if name != "after"}
    return f"{base_url}?{urlencode({**query, 'after': after})}"


def _refuse_unknown_or_p1_meter(meter_id: str) -> None:
    """A P1 meter has no kW samples: its readings are DSMR-reader readings (registers), so say where they are
    rather than answering an empty list for a meter compare-all prices."""
    if dsmr_repo.installation_of_meter(meter_id) is not None:
        raise NotFound(
            f"meter {meter_id!r} is a P1 (DSMR) meter: its readings are at /api/v2/datalogger/dsmrreading with "
            "its installation's key; compare-all and recommend price its registers"
        )
    if readings_repo.period(meter_id) is None:
        raise NotFound(f"meter {meter_id!r} has no readings")


def check_window(from_: int | None, to: int | None) -> None:
    if from_ is not None and to is not None and from_ > to:
        raise InvalidInput(f"from ({from_}) must not be after to ({to})", field="from")


def _readings_json(readings: Iterable[tuple[int, float]]) -> list[dict]:
    return [{"time": time, "reading": value} for time, value in readings]
