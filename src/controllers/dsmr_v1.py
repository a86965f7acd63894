"""DSMR-reader API v1: POST /api/v1/datalogger/dsmrreading with a raw P1 telegram (form field `telegram`).

Requests reach `create_reading` only when the ASGI fast path (fastpath.py) is not installed; both call
`answer_telegram`, which needs no Flask."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import request

import ingest_events
from config import Config
from controllers.context import settings
from controllers.dsmr_common import API_DISABLED, authenticate, plain_text, zone_of
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

CREATED = (201, "", {})


def create_reading(body: dict | None = None):
    status, text, headers = answer_telegram(
        settings(), request.headers.get("X-AUTHKEY"), request.headers.get("Authorization"), (body or {}).get("telegram")
    )
    return plain_text(text, status, headers or None)


def answer_telegram(
    config: Config, x_authkey: str | None, authorization: str | None, telegram: object
) -> tuple[int, str, dict]:
    """(status, plain text, headers) as DSMR-reader answers: 405 when the API is off, 403 for a bad key,
    400 for bad input, 409 for other values at a stored instant, 201 when the reading is committed."""
    access = authenticate(config, x_authkey, authorization)
    if not isinstance(access, Installation):
        status, text = access
        return (405, API_DISABLED, {"Allow": "POST"}) if status == 0 else (status, text, {})
    try:
        store_telegram(config, access, telegram)
    except DomainError as error:
        return error.status, error.detail, {}
    return CREATED


def store_telegram(config: Config, installation: Installation, value: object) -> None:
    text = check_telegram_text(value)
    tz = zone_of(config)
    try:
        telegram = parse_telegram(text, verify_crc=config.dsmr_verify_crc)
        reading = reading_from_telegram(
            telegram, received_at=datetime.now(UTC), max_future_skew=config.max_future_skew_seconds
        )
        check_telegram_meter(installation, reading.meter)
        facts = telegram_facts(telegram, reading, text)
        stored = dsmr_repo.store_reading(
            installation, reading, tz, facts, telegram_meter=reading.meter, max_gap=config.dsmr_max_gap_seconds
        )
    except DomainError:
        # Refused telegrams count in meter statistics; nothing else changed (the store rolled back).
        dsmr_repo.count_rejected_telegram(installation)
        ingest_events.dsmr_telegram_rejected()
        raise
    ingest_events.dsmr_telegram_stored(installation, stored, tz)
