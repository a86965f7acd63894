"""Every setting the service reads, in one place, from environment variables with safe defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse
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


def _float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def default_queue_path(database_url: str) -> str:
    """The huey SQLite queue lives beside a SQLite database file, else under var/."""
    if database_url.startswith("sqlite"):
        path = urlparse(database_url).path[1:]  # as playhouse.db_url reads it: sqlite:////abs, sqlite:///rel
        if path and path != ":memory:":
            return str(Path(path).parent / "huey.sqlite3")
    return str(PROJECT_ROOT / "var" / "huey.sqlite3")


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
    # Accounts (SilesiaSolar API): token lifetime and login throttling, shared by every worker.
    token_ttl_hours: int = 10
    login_max_failures_per_username: int = 10
    login_max_failures_per_address: int = 100
    login_throttle_window_seconds: int = 900
    # --- Task queue and scheduler (src/tasks.py) ---
    # Redis-backed queue when set (redis://host:port/db); otherwise a SQLite file (queue_sqlite_path).
    redis_url: str | None = None
    queue_sqlite_path: str | None = None  # None: huey.sqlite3 beside the SQLite database, else var/
    worker_threads: int = 4
    # The scheduler lease: its holder enqueues the periodic jobs; another worker takes over this long
    # after the holder stopped renewing it.
    scheduler_lease_seconds: float = 10.0
    # --- Modbus polling (SilesiaSolar hosts; the poll_round task in src/tasks.py) ---
    modbus_poll_seconds: float = 60.0  # a round every this many seconds; 0 turns polling off
    modbus_timeout_seconds: float = 3.0  # each host's budget for connecting and all its requests
    modbus_concurrency: int = 100  # hosts talked to at once in a round

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
        if min(self.token_ttl_hours, self.login_max_failures_per_username, self.login_max_failures_per_address) < 1:
            raise ValueError("TOKEN_TTL_HOURS and LOGIN_MAX_FAILURES_PER_USERNAME/_ADDRESS must be at least 1")
        if self.login_throttle_window_seconds < 1:
            raise ValueError("LOGIN_THROTTLE_WINDOW_SECONDS must be at least 1")
        if self.worker_threads < 1 or self.scheduler_lease_seconds < 1:
            raise ValueError("WORKER_THREADS must be >= 1 and SCHEDULER_LEASE_SECONDS >= 1")
        if self.modbus_poll_seconds < 0 or not 0 < self.modbus_timeout_seconds <= 60 or self.modbus_concurrency < 1:
            raise ValueError(
                "MODBUS_POLL_SECONDS must be >= 0 (0 = off), MODBUS_TIMEOUT_SECONDS between 0 and 60, "
                "MODBUS_CONCURRENCY >= 1"
            )

    @property
    def queue_path(self) -> str:
        return self.queue_sqlite_path or default_queue_path(self.database_url)

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
            token_ttl_hours=_int("TOKEN_TTL_HOURS", 10),
            login_max_failures_per_username=_int("LOGIN_MAX_FAILURES_PER_USERNAME", 10),
            login_max_failures_per_address=_int("LOGIN_MAX_FAILURES_PER_ADDRESS", 100),
            login_throttle_window_seconds=_int("LOGIN_THROTTLE_WINDOW_SECONDS", 900),
            # --- Task queue and scheduler ---
            redis_url=os.environ.get("REDIS_URL") or None,
            queue_sqlite_path=os.environ.get("QUEUE_SQLITE_PATH") or None,
            worker_threads=_int("WORKER_THREADS", 4),
            scheduler_lease_seconds=_float("SCHEDULER_LEASE_SECONDS", 10.0),
            # --- Modbus polling ---
            modbus_poll_seconds=_float("MODBUS_POLL_SECONDS", 60.0),
            modbus_timeout_seconds=_float("MODBUS_TIMEOUT_SECONDS", 3.0),
            modbus_concurrency=_int("MODBUS_CONCURRENCY", 100),
        )
        values.update(overrides)
        return cls(**values)
