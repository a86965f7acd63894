"""DSMR-reader API v1: POST /api/v1/datalogger/dsmrreading with a raw P1 telegram (form field `telegram`)."""

from __future__ import annotations

from datetime import UTC, datetime

import ingest_events
from controllers.context import settings
from controllers.dsmr_common import plain_text, time_zone, v1_operation
from domain.dsmr import (
    Installation,
    check_telegram_meter,
    check_telegram_text,
    reading_from_telegram,
    telegram_facts,
)
from domain.errors import DomainError
from domain.telegram import parse_telegram
from repository import dsmr as dsmr_repo


@v1_operation
def create_reading(installation: Installation, body: dict | None = None):
    config = settings()
    text = check_telegram_text((body or {}).get("telegram"))
    try:
        telegram = parse_telegram(text, verify_crc=config.dsmr_verify_crc)
        reading = reading_from_telegram(
            telegram, received_at=datetime.now(UTC), max_future_skew=config.max_future_skew_seconds
        )
        check_telegram_meter(installation, reading.meter)
        facts = telegram_facts(telegram, reading, text)
        stored = dsmr_repo.store_reading(
            installation,
            reading,
            time_zone(),
            facts,
            telegram_meter=reading.meter,
            max_gap=config.dsmr_max_gap_seconds,
        )
    except DomainError:
        # Refused telegrams count in meter statistics; nothing else changed (the store rolled back).
        dsmr_repo.count_rejected_telegram(installation)
        ingest_events.dsmr_telegram_rejected()
        raise
    ingest_events.dsmr_telegram_stored(installation, stored, time_zone())
    return plain_text("", 201)
