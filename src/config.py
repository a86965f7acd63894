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
    # --- Mailings (dispatch runs in queue workers only) ---
    send_api_url: str | None = None  # e.g. https://probe.fbrq.cloud/v1; unset: messages wait, unsent
    send_api_token: str | None = None
    send_timeout_seconds: float = 10.0
    send_retry_base_seconds: float = 5.0
    send_retry_max_seconds: float = 600.0
    send_concurrency: int = 20
    mailing_dispatch_seconds: float = 1.0
    mailing_report_at: str = "08:00"  # UTC, daily
    smtp_url: str | None = None  # smtp://user:password@host:port, smtps://…, smtp+starttls://…
    mailing_report_to: str | None = None  # comma-separated addresses
    mailing_report_from: str = "joi-energy@localhost"
    # --- Modbus polling (SilesiaSolar hosts; the poll_round task in src/tasks.py) ---
    modbus_poll_seconds: float = 60.0  # a round every this many seconds; 0 turns polling off
    modbus_timeout_seconds: float = 3.0  # each host's budget for connecting and all its requests
    modbus_concurrency: int = 100  # hosts talked to at once in a round
    # DSMR statistics (issue 15): readings further apart than this book nothing between them (an outage).
    dsmr_max_gap_seconds: int = 3600
    # Closed mode (README "Closed mode"): the JOI and OMS endpoints need a device key or a user's token,
    # the mailing endpoints an admin's token.
    require_auth: bool = False
    # --- Limits (src/limits.py, README "Limits") ---
    max_body_bytes: int = 4 * 1024 * 1024  # a longer request body answers 413, read no further
    body_timeout_seconds: float = 30.0  # a body not all there this long after its headers answers 408
    header_timeout_seconds: float = 10.0  # headers not all there this long after they began: 408, closed
    max_concurrent_requests: int = 64  # per web process; past it 503 with Retry-After at once
    # --- Web pages (src/controllers/pages*.py) ---
    # Signs the page session cookie; unset: one is generated once and kept in the database (settings table),
    # so every worker and instance on that database agrees on it.
    secret_key: str | None = None
    # Believe X-Forwarded-Proto (the session cookie is Secure when it says https): only behind a proxy that sets it.
    trusted_proxy: bool = False

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
        if self.worker_threads < 1 or self.scheduler_lease_seconds < 1:
            raise ValueError("WORKER_THREADS must be >= 1 and SCHEDULER_LEASE_SECONDS >= 1")
        if min(self.token_ttl_hours, self.login_max_failures_per_username, self.login_max_failures_per_address) < 1:
            raise ValueError("TOKEN_TTL_HOURS and LOGIN_MAX_FAILURES_PER_USERNAME/_ADDRESS must be at least 1")
        if self.login_throttle_window_seconds < 1:
            raise ValueError("LOGIN_THROTTLE_WINDOW_SECONDS must be at least 1")
        if self.modbus_poll_seconds < 0 or not 0 < self.modbus_timeout_seconds <= 60 or self.modbus_concurrency < 1:
            raise ValueError(
                "MODBUS_POLL_SECONDS must be >= 0 (0 = off), MODBUS_TIMEOUT_SECONDS between 0 and 60, "
                "MODBUS_CONCURRENCY >= 1"
            )
        if self.dsmr_max_gap_seconds <= 0:
            raise ValueError(f"DSMR_MAX_GAP_SECONDS must be > 0, not {self.dsmr_max_gap_seconds}")
        self._check_mailing_settings()
        if self.max_body_bytes < 1024 or self.max_concurrent_requests < 1:
            raise ValueError("MAX_BODY_BYTES must be at least 1024 and MAX_CONCURRENT_REQUESTS at least 1")
        if self.body_timeout_seconds <= 0 or self.header_timeout_seconds <= 0:
            raise ValueError("BODY_TIMEOUT_SECONDS and HEADER_TIMEOUT_SECONDS must be > 0")
        if self.secret_key is not None and len(self.secret_key) < 32:
            raise ValueError(
                "SECRET_KEY must be at least 32 characters (python -c 'import secrets; print(secrets.token_hex())')"
            )

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

    def _check_mailing_settings(self) -> None:
        if self.send_api_url and urlparse(self.send_api_url).scheme not in {"http", "https"}:
            raise ValueError(f"SEND_API_URL must be an http(s) URL, not {self.send_api_url!r}")
        if self.send_timeout_seconds <= 0 or self.send_retry_base_seconds <= 0 or self.mailing_dispatch_seconds <= 0:
            raise ValueError("SEND_TIMEOUT_SECONDS, SEND_RETRY_BASE_SECONDS and MAILING_DISPATCH_SECONDS must be > 0")
        if self.send_retry_max_seconds < self.send_retry_base_seconds:
            raise ValueError("SEND_RETRY_MAX_SECONDS must be >= SEND_RETRY_BASE_SECONDS")
        if not 1 <= self.send_concurrency <= 1000:
            raise ValueError("SEND_CONCURRENCY must be between 1 and 1000")
        hours, _, minutes = self.mailing_report_at.partition(":")
        if not (
            len(hours) == len(minutes) == 2
            and hours.isdigit()
            and minutes.isdigit()
            and int(hours) < 24
            and int(minutes) < 60
        ):
            raise ValueError(f"MAILING_REPORT_AT must be HH:MM (UTC), not {self.mailing_report_at!r}")
        if self.smtp_url and urlparse(self.smtp_url).scheme not in {"smtp", "smtps", "smtp+starttls"}:
            raise ValueError("SMTP_URL must start with smtp://, smtps:// or smtp+starttls://")

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
            token_ttl_hours=_int("TOKEN_TTL_HOURS", 10),
            login_max_failures_per_username=_int("LOGIN_MAX_FAILURES_PER_USERNAME", 10),
            login_max_failures_per_address=_int("LOGIN_MAX_FAILURES_PER_ADDRESS", 100),
            login_throttle_window_seconds=_int("LOGIN_THROTTLE_WINDOW_SECONDS", 900),
            # --- Task queue and scheduler ---
            redis_url=os.environ.get("REDIS_URL") or None,
            queue_sqlite_path=os.environ.get("QUEUE_SQLITE_PATH") or None,
            worker_threads=_int("WORKER_THREADS", 4),
            scheduler_lease_seconds=_float("SCHEDULER_LEASE_SECONDS", 10.0),
            # --- Mailings ---
            send_api_url=os.environ.get("SEND_API_URL") or None,
            send_api_token=os.environ.get("SEND_API_TOKEN") or None,
            send_timeout_seconds=_float("SEND_TIMEOUT_SECONDS", 10.0),
            send_retry_base_seconds=_float("SEND_RETRY_BASE_SECONDS", 5.0),
            send_retry_max_seconds=_float("SEND_RETRY_MAX_SECONDS", 600.0),
            send_concurrency=_int("SEND_CONCURRENCY", 20),
            mailing_dispatch_seconds=_float("MAILING_DISPATCH_SECONDS", 1.0),
            mailing_report_at=os.environ.get("MAILING_REPORT_AT") or "08:00",
            smtp_url=os.environ.get("SMTP_URL") or None,
            mailing_report_to=os.environ.get("MAILING_REPORT_TO") or None,
            mailing_report_from=os.environ.get("MAILING_REPORT_FROM") or "joi-energy@localhost",
            # --- Modbus polling ---
            modbus_poll_seconds=_float("MODBUS_POLL_SECONDS", 60.0),
            modbus_timeout_seconds=_float("MODBUS_TIMEOUT_SECONDS", 3.0),
            modbus_concurrency=_int("MODBUS_CONCURRENCY", 100),
            dsmr_max_gap_seconds=_int("DSMR_MAX_GAP_SECONDS", 3600),
            require_auth=_flag("REQUIRE_AUTH", False),
            # --- Limits ---
            max_body_bytes=_int("MAX_BODY_BYTES", 4 * 1024 * 1024),
            body_timeout_seconds=_float("BODY_TIMEOUT_SECONDS", 30.0),
            header_timeout_seconds=_float("HEADER_TIMEOUT_SECONDS", 10.0),
            max_concurrent_requests=_int("MAX_CONCURRENT_REQUESTS", 64),
            # --- Web pages ---
            secret_key=os.environ.get("SECRET_KEY") or None,
            trusted_proxy=_flag("TRUSTED_PROXY", False),
        )
        values.update(overrides)
        return cls(**values)
