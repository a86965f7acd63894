"""DSMR-reader API v1: POST /api/v1/datalogger/dsmrreading with a raw P1 telegram (form field `telegram`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import ingest_events
from controllers.context import settings
from controllers.dsmr_common import plain_text, time_zone, v1_operation
from domain.dsmr import check_telegram_text, reading_from_telegram, resolve_meter, telegram_facts
from domain.errors import DomainError
from domain.telegram import parse_telegram
from repository import dsmr as dsmr_repo


@v1_operation
def create_reading(body: dict | None = None):
    config = settings()
    text = check_telegram_text((body or {}).get("telegram"))
    try:
        telegram = parse_telegram(text, verify_crc=config.dsmr_verify_crc)
        reading = reading_from_telegram(
            telegram, received_at=datetime.now(UTC), max_future_skew=config.max_future_skew_seconds
        )
        reading = replace(reading, meter=resolve_meter(reading.meter, dsmr_repo.known_meters))
    except DomainError:
        dsmr_repo.count_rejected_telegram()
        ingest_events.dsmr_telegram_rejected()
        raise
    stored = dsmr_repo.store_reading(reading, time_zone(), telegram_facts(telegram, reading, text))
    ingest_events.dsmr_telegram_stored(stored, time_zone())
    return plain_text("", 201)
