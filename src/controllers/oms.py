"""OMS collector/exporter: POST /commit, GET /export (OMS-Data.csv), GET /oms/devices."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from flask import Response

import ingest_events
from controllers.access import caller, require_oms_export, require_oms_write
from controllers.responses import json_response
from domain.errors import InvalidInput
from domain.oms import export_rows, iter_csv_lines, manufacturer_code, message_from_json
from repository import oms as oms_repo

COMMITTED = "Committed to database"
EXPORT_FILE_NAME = "OMS-Data.csv"
# Lines are sent in blocks of about this many bytes: one network write per CSV line would be slow.
STREAM_BLOCK_BYTES = 64 * 1024


def commit(body: dict):
    message = message_from_json(body)
    require_oms_write(caller(), (message.device.manufacturer, message.device.identnr))
    ingest_events.oms_message_stored(message, new=oms_repo.store_message(message))
    return Response(COMMITTED, status=200, mimetype="text/plain")


def export(since: str | None = None, until: str | None = None, manufacturer: str = "number"):
    require_oms_export()
    window_start, window_end = _window(since, until)
    messages = oms_repo.latest_messages(window_start, window_end)
    ingest_events.oms_export_started()
    rows = (row for message in messages for row in export_rows(message.device, message))
    lines = iter_csv_lines(rows, manufacturer_as_flag=manufacturer == "flag")
    return Response(
        _in_blocks(lines, STREAM_BLOCK_BYTES),
        status=200,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{EXPORT_FILE_NAME}"'},
    )


def list_devices(limit: int = 100, offset: int = 0):
    require_oms_export()
    page, total = oms_repo.devices(limit, offset)
    return json_response(
        {
            "devices": [
                {
                    "identnr": device.identnr,
                    "manufacturer": device.manufacturer,
                    "manufacturerCode": manufacturer_code(device.manufacturer),
                    "type": device.type,
                    "version": device.version,
                    "latestMessageTime": device.latest_message_time.isoformat(),
                }
                for device in page
            ],
            "total": total,
        }
    )


def _window(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    start, end = _moment(since, "since"), _moment(until, "until")
    if start is not None and end is not None and start >= end:
        raise InvalidInput(f"since ({since}) must be before until ({until})", field="since")
    return start, end


def _moment(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise InvalidInput(
            f"{name}: {text!r} is not an ISO 8601 date or date-time (naive means UTC)", field=name
        ) from None


def _in_blocks(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    block = bytearray()
    for chunk in chunks:
        block += chunk
        if len(block) >= size:
            yield bytes(block)
            block.clear()
    if block:
        yield bytes(block)
