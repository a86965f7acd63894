"""JOI Energy readings: POST /readings/store, GET /readings/read/{smartMeterId}."""

from __future__ import annotations

from collections.abc import Iterable

import ingest_events
from config import Config
from controllers.context import now, settings
from controllers.responses import json_response
from domain.errors import InvalidInput, NotFound
from domain.usage import SampleColumns, check_readings
from repository import readings as readings_repo


def store(body: dict):
    return json_response(store_readings(body, settings()))


def store_readings(body: dict, config: Config) -> dict:
    """POST /readings/store without Flask: the controller above and the ASGI fast path (fastpath.py)
    both answer through this. Returns the JSON body of the 200 answer."""
    meter_id = body["smartMeterId"]
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


def read(smart_meter_id: str, from_: int | None = None, to: int | None = None):
    check_window(from_, to)
    samples = readings_repo.samples_between(smart_meter_id, from_, to)
    if not samples and readings_repo.period(smart_meter_id) is None:
        raise NotFound(f"meter {smart_meter_id!r} has no readings")
    return json_response(_readings_json(samples))


def check_window(from_: int | None, to: int | None) -> None:
    if from_ is not None and to is not None and from_ > to:
        raise InvalidInput(f"from ({from_}) must not be after to ({to})", field="from")


def _readings_json(readings: Iterable[tuple[int, float]]) -> list[dict]:
    return [{"time": time, "reading": value} for time, value in readings]
