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


def _optional_flag(name: str) -> bool | None:
    """1/0 (true/false, yes/no, on/off), or None when unset: the caller decides."""
    value = (os.environ.get(name) or "").strip().lower()
    if not value:
        return None
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name} must be 1 or 0 (or unset), not {value!r}")


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


@dataclass(frozen=True)
class Config:
    database_url: str = DEFAULT_DATABASE_URL
    # Consecutive kW samples further apart than this carry no energy: a meter that was off, or a lost
    # connection, is not billed as if it had drawn power all along.
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
    # The demo week (demo.py): True loads it into any database, False into none, None (DEMO unset) only
    # into the embedded default database, never into one the user named with DATABASE_URL.
    demo: bool | None = None
    # --- observability: metrics, logs, MQTT (README "Operating it") ---
    metrics_enabled: bool = True
    metrics_token: str | None = None
    log_format: str = "text"
    log_level: str = "INFO"
    access_log: bool = True
    mqtt_url: str | None = None
    mqtt_topic_prefix: str = ""
    mqtt_discovery: bool = True
    mqtt_discovery_prefix: str = "homeassistant"
    mqtt_queue_size: int = 10_000

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
        self._check_observability()

    def _check_observability(self) -> None:
        if self.log_format not in {"text", "json"}:
            raise ValueError(f"LOG_FORMAT must be text or json, not {self.log_format!r}")
        if self.log_level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {self.log_level!r}")
        if self.mqtt_url is not None and not self.mqtt_url.startswith(("mqtt://", "mqtts://")):
            raise ValueError("MQTT_URL must look like mqtt://host:1883 or mqtts://user:password@host:8883")
        if self.mqtt_queue_size < 1:
            raise ValueError("MQTT_QUEUE_SIZE must be at least 1")
        prefixes = {"MQTT_TOPIC_PREFIX": self.mqtt_topic_prefix, "MQTT_DISCOVERY_PREFIX": self.mqtt_discovery_prefix}
        for name, prefix in prefixes.items():
            if any(character in prefix for character in "+#\0") or prefix.startswith("/") or prefix.endswith("/"):
                raise ValueError(f"{name} must not contain + or #, nor start or end with /")

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
            demo=_optional_flag("DEMO"),
            metrics_enabled=_flag("METRICS_ENABLED", True),
            metrics_token=os.environ.get("METRICS_TOKEN") or None,
            log_format=os.environ.get("LOG_FORMAT", "text").strip().lower() or "text",
            log_level=os.environ.get("LOG_LEVEL", "INFO").strip().upper() or "INFO",
            access_log=_flag("ACCESS_LOG", True),
            mqtt_url=os.environ.get("MQTT_URL") or None,
            mqtt_topic_prefix=os.environ.get("MQTT_TOPIC_PREFIX", ""),
            mqtt_discovery=_flag("MQTT_DISCOVERY", True),
            mqtt_discovery_prefix=os.environ.get("MQTT_DISCOVERY_PREFIX", "homeassistant"),
            mqtt_queue_size=_int("MQTT_QUEUE_SIZE", 10_000),
        )
        values.update(overrides)
        return cls(**values)
