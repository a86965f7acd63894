"""Modbus polling results: a host's samples (raw or bucketed), its poll record, and its energy priced."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from flask import request

from controllers.accounts import current_user
from controllers.context import settings
from controllers.responses import json_response
from domain import modbus, silesia
from domain.errors import InvalidInput, NotFound
from repository import modbus as modbus_repo
from repository import silesia as silesia_repo

ENERGY_COUNTER = "active_energy_consumed"
_CURSOR = re.compile(r"(\d{1,16})\.(\d{1,10})")


def _own_host(host_id: int) -> int:
    """The caller's host; any other id (another user's, or none) answers 404 alike."""
    if silesia_repo.host_owner(host_id) != current_user().id:
        raise NotFound(f"You have no host {host_id}.")
    return host_id


def _window(from_: str | None, to: str | None) -> tuple[int | None, int | None]:
    start = modbus.parse_instant(from_, "from") if from_ is not None else None
    end = modbus.parse_instant(to, "to") if to is not None else None
    modbus.check_window(start, end)
    return start, end


def _cursor(cursor: str | None) -> modbus_repo.Cursor | None:
    if cursor is None:
        return None
    match = _CURSOR.fullmatch(cursor)
    if not match:
        raise InvalidInput("cursor must be the X-Next-Cursor of a previous page", field="cursor")
    return int(match[1]), int(match[2])


def samples(
    host_id: int,
    measurement: str | None = None,
    from_: str | None = None,
    to: str | None = None,
    limit: int = 1000,
    cursor: str | None = None,
    bucket: str | None = None,
):
    _own_host(host_id)
    if measurement is not None:
        silesia.measurement_name(measurement)
    start, end = _window(from_, to)
    window = dict(measurement=measurement, start_ms=start, end_ms=end, limit=limit + 1, after=_cursor(cursor))
    if bucket is None:
        items = modbus_repo.samples(host_id, **window)
        page, more = items[:limit], len(items) > limit
        body = [_sample_json(item) for item in page]
        last = (page[-1].time_ms, page[-1].series_id) if page else None
    else:
        items = modbus_repo.buckets(host_id, bucket_ms=modbus.BUCKETS_MS[bucket], **window)
        page, more = items[:limit], len(items) > limit
        body = [_bucket_json(item) for item in page]
        last = (page[-1].start_ms, page[-1].series_id) if page else None
    return json_response(body, headers=_next_page_headers(last) if more else None)


def _sample_json(item: modbus.StoredSample) -> dict:
    return {
        "time": modbus.format_instant(item.time_ms),
        "measurement": item.measurement,
        "value": item.value,
        "unit": item.unit,
    }


def _bucket_json(item: modbus.BucketSummary) -> dict:
    summary = {"time": modbus.format_instant(item.start_ms), "measurement": item.measurement, "unit": item.unit}
    if item.measurement_type == modbus.COUNTER:
        summary["increase"] = item.increase
    else:
        summary.update(min=item.minimum, mean=item.mean, max=item.maximum)
    summary["samples"] = item.samples
    return summary


def _next_page_headers(last: tuple[int, int]) -> dict[str, str]:
    cursor = f"{last[0]}.{last[1]}"
    query = [(name, value) for name, value in request.args.items(multi=True) if name != "cursor"]
    url = f"{request.base_url}?{urlencode([*query, ('cursor', cursor)])}"
    return {"Link": f'<{url}>; rel="next"', "X-Next-Cursor": cursor}


def user_status(host_id: int):
    return json_response(_status_json(_own_host(host_id)))


def admin_status(host_id: int):
    if silesia_repo.host_owner(host_id) is None:
        raise NotFound(f"There is no host {host_id}.")
    return json_response(_status_json(host_id))


def _status_json(host_id: int) -> dict:
    status = modbus_repo.poll_status(host_id)
    if status is None:
        return {
            "host": host_id,
            **dict.fromkeys(
                ["last_poll_at", "last_success_at", "last_error", "last_error_at", "last_outcome", "failing_since"]
            ),
            "consecutive_failures": 0,
            "measurements_read": 0,
            "measurements_failed": 0,
        }
    return {
        "host": host_id,
        "last_poll_at": _instant(status.last_poll_at_ms),
        "last_success_at": _instant(status.last_success_at_ms),
        "last_error": status.last_error,
        "last_error_at": _instant(status.last_error_at_ms),
        "consecutive_failures": status.consecutive_failures,
        "last_outcome": status.last_outcome,
        "measurements_read": status.measurements_read,
        "measurements_failed": status.measurements_failed,
        "failing_since": _instant(status.failing_since_ms),
    }


def _instant(time_ms: int | None) -> str | None:
    return None if time_ms is None else modbus.format_instant(time_ms)


def price_plans(host_id: int, from_: str | None = None, to: str | None = None):
    _own_host(host_id)
    start, end = _window(from_, to)
    bounds = modbus_repo.counter_period(host_id, ENERGY_COUNTER)
    if bounds is None:
        raise NotFound(f"Host {host_id} has no {ENERGY_COUNTER} samples yet: assign it and let it be polled.")
    # An open side of the window ends at the counter's data, never before the other side.
    start = start if start is not None else bounds[0] if end is None else min(bounds[0], end)
    end = end if end is not None else max(bounds[1], start)
    comparison = modbus_repo.price_comparison(
        host_id, ENERGY_COUNTER, start_ms=start, end_ms=end, max_gap_ms=settings().max_reading_gap_seconds * 1000
    )
    return json_response(
        {
            "pricePlanId": None,
            "pricePlanComparisons": [{plan_id: cost} for plan_id, cost in comparison.costs],
        }
    )
