"""Every setting the service reads, in one place, from environment variables with safe defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = f"sqlite:///{PROJECT_ROOT / 'var' / 'joi.sqlite3'}"


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


@dataclass(frozen=True)
class Config:
    database_url: str = DEFAULT_DATABASE_URL
    # Consecutive kW samples further apart than this carry no energy (DESIGN.md §3).
    max_reading_gap_seconds: int = 3600
    max_readings_per_request: int = 10_000
    # Readings stamped further than this into the future are rejected as clock errors.
    max_future_skew_seconds: int = 86_400
    validate_responses: bool = False
    # Apply pending schema migrations when the app is built (off when `make run` already migrated).
    auto_migrate: bool = True
    sqlite_synchronous: str = "FULL"
    # DSMR-reader compatible API (off by default, as in DSMR-reader).
    dsmr_api_enabled: bool = False
    dsmr_api_key: str | None = None
    dsmr_verify_crc: bool = True
    dsmr_time_zone: str = "Europe/Amsterdam"
    # DSMR statistics (issue 15): readings further apart than this book nothing between them (an outage).
    dsmr_max_gap_seconds: int = 3600

    def __post_init__(self):
        # Fail at start-up, not with a 500 on the first request that needs the setting.
        try:
            ZoneInfo(self.dsmr_time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"DSMR_TIME_ZONE {self.dsmr_time_zone!r} is not a known IANA time zone") from None
        if self.sqlite_synchronous not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError(f"SQLITE_SYNCHRONOUS must be OFF, NORMAL, FULL or EXTRA, not {self.sqlite_synchronous!r}")
        if self.max_reading_gap_seconds <= 0 or self.max_future_skew_seconds < 0:
            raise ValueError("MAX_READING_GAP_SECONDS must be > 0 and MAX_FUTURE_SKEW_SECONDS >= 0")
        if self.dsmr_max_gap_seconds <= 0:
            raise ValueError(f"DSMR_MAX_GAP_SECONDS must be > 0, not {self.dsmr_max_gap_seconds}")

    @classmethod
    def from_env(cls, **overrides) -> Config:
        values = dict(
            database_url=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            max_reading_gap_seconds=_int("MAX_READING_GAP_SECONDS", 3600),
            max_future_skew_seconds=_int("MAX_FUTURE_SKEW_SECONDS", 86_400),
            validate_responses=_flag("VALIDATE_RESPONSES", False),
            auto_migrate=_flag("AUTO_MIGRATE", True),
            sqlite_synchronous=os.environ.get("SQLITE_SYNCHRONOUS", "FULL").upper(),
            dsmr_api_enabled=_flag("DSMR_API_ENABLED", False),
            dsmr_api_key=os.environ.get("DSMR_API_KEY") or None,
            dsmr_verify_crc=_flag("DSMR_VERIFY_CRC", True),
            dsmr_time_zone=os.environ.get("DSMR_TIME_ZONE", "Europe/Amsterdam"),
            dsmr_max_gap_seconds=_int("DSMR_MAX_GAP_SECONDS", 3600),
        )
        values.update(overrides)
        return cls(**values)
