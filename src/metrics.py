"""Prometheus metrics: every series the service exports, and the page GET /metrics answers.

Multiprocess mode: when PROMETHEUS_MULTIPROC_DIR is set (to an empty directory) before the processes
start, every uvicorn worker and task worker writes its values to files there and the page adds them up
(prometheus_client's multiprocess mode). Whoever starts the processes calls `prepare_multiprocess_dir()`
first and `mark_process_dead(pid)` when a worker exits. Without the variable one process counts alone.

Label values are bounded: operation ids from the spec (or a fixed label), status codes, and small fixed
sets of outcomes; never a raw path, meter id or host.

Other areas report through the functions at the end (`modbus_poll_finished`, `mailing_message_finished`,
`register_queue_depth`, ...), so their code needs no prometheus_client import.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The classic text format (0.0.4), which every Prometheus version reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Per-process gauges (connection pool, MQTT queue) are re-read this often in multiprocess mode.
SAMPLE_SECONDS = 5.0

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SEND_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
ROUND_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

# What a poll of one host achieved (domain.modbus.HostOutcome.outcome).
MODBUS_OUTCOMES = frozenset({"ok", "partial", "failed"})
# What the dispatcher did with a message (mailing_dispatch): sent; an attempt failed (it is retried);
# expired at end_time; postponed to the client's window; dropped (the client no longer matches); lost
# (sent, but the claim had run out before the outcome was recorded: it is sent again, same message id).
MAILING_STATUSES = frozenset({"sent", "failed", "expired", "postponed", "dropped", "lost"})
OTHER = "other"


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def prepare_multiprocess_dir(path: str | os.PathLike | None = None) -> str:
    """Make an empty directory for this run's metric files, point PROMETHEUS_MULTIPROC_DIR at it, and
    return it. Call it in the supervisor BEFORE the workers start (they inherit the variable; a process
    that imported prometheus_client before it was set counts alone). Files of an earlier run are
    removed, so counters start at zero with every run, as Prometheus expects of a restart."""
    directory = Path(path) if path is not None else Path(tempfile.mkdtemp(prefix="joi-metrics-"))
    if directory.exists():
        for leftover in directory.glob("*.db"):
            leftover.unlink()
    directory.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(directory)
    return str(directory)


def remove_multiprocess_dir(path: str | os.PathLike) -> None:
    """The supervisor's cleanup when the run ends."""
    shutil.rmtree(path, ignore_errors=True)


def mark_process_dead(pid: int) -> None:
    """A worker exited: its live gauges (pool use, queue depth, connected) stop counting. Counters and
    histograms keep what it counted."""
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


# --- the series ---------------------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "joi_http_requests_total", "HTTP requests answered, by operation id and status code.", ["operation", "status"]
)
HTTP_DURATION = Histogram(
    "joi_http_request_duration_seconds",
    "Time from the request's arrival to the end of its answer, by operation id.",
    ["operation"],
    buckets=LATENCY_BUCKETS,
)
READINGS_STORED = Counter("joi_readings_stored_total", "JOI Energy readings committed by POST /readings/store.")
DSMR_TELEGRAMS = Counter(
    "joi_dsmr_telegrams_total", "DSMR v1 P1 telegrams by outcome: accepted, duplicate, rejected.", ["outcome"]
)
DSMR_READINGS = Counter(
    "joi_dsmr_readings_total",
    "DSMR v2 readings posted, by outcome: created, duplicate (stored before), conflict (other values, 409).",
    ["outcome"],
)
OMS_MESSAGES = Counter(
    "joi_oms_messages_total", "OMS messages committed by POST /commit: new, or duplicate (stored before).", ["outcome"]
)
OMS_EXPORTS = Counter("joi_oms_exports_total", "OMS CSV exports (GET /export) started streaming.")
MODBUS_POLLS = Counter(
    "joi_modbus_polls_total",
    "Modbus host polls by outcome: ok, partial (some measurements failed), failed.",
    ["outcome"],
)
MODBUS_ROUND = Histogram(
    "joi_modbus_round_seconds", "Duration of one polling round over every due Modbus host.", buckets=ROUND_BUCKETS
)
MAILING_MESSAGES = Counter(
    "joi_mailing_messages_total",
    "What the dispatcher did with mailing messages: sent, failed (an attempt; retried), expired, postponed, dropped,"
    " lost (claim ran out before the record).",
    ["status"],
)
MAILING_SEND = Histogram(
    "joi_mailing_send_seconds", "Latency of one call to the external send API.", buckets=SEND_BUCKETS
)
MQTT_PUBLISHED = Counter("joi_mqtt_published_total", "MQTT messages handed to the broker connection.")
MQTT_DROPPED = Counter(
    "joi_mqtt_dropped_total",
    "Ingest events (a stored reading, message or sample) not published to MQTT, by reason: queue_full, "
    "disconnected, error.",
    ["reason"],
)
MQTT_QUEUE = Gauge(
    "joi_mqtt_queue_depth", "Events waiting for the MQTT publisher (all processes).", multiprocess_mode="livesum"
)
MQTT_CONNECTED = Gauge(
    "joi_mqtt_connected", "Processes whose MQTT publisher is connected to the broker.", multiprocess_mode="livesum"
)
DB_POOL = Gauge(
    "joi_db_pool_connections",
    "Database connections of the pools (all processes): in_use (lent to a request) or idle.",
    ["state"],
    multiprocess_mode="livesum",
)
DB_POOL_MAX = Gauge(
    "joi_db_pool_max_connections", "Most connections the pools may open (all processes).", multiprocess_mode="livesum"
)
BUILD_INFO = Gauge(
    "joi_build_info", "Always 1; the labels say which build runs.", ["version", "python"], multiprocess_mode="max"
)


def _project_version() -> str:
    try:
        with open(Path(__file__).resolve().parent.parent / "pyproject.toml", "rb") as project:
            return str(tomllib.load(project)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


BUILD_INFO.labels(version=_project_version(), python=".".join(map(str, sys.version_info[:3]))).set(1)


# --- what other areas call ----------------------------------------------------------------------------------


def _bounded(value: str, allowed: frozenset[str]) -> str:
    return value if value in allowed else OTHER


def modbus_poll_finished(outcome: str) -> None:
    """One poll of one Modbus host ended: ok, partial or failed (anything else counts as `other`)."""
    MODBUS_POLLS.labels(outcome=_bounded(outcome, MODBUS_OUTCOMES)).inc()


def modbus_round_finished(seconds: float) -> None:
    """A polling round (every due host once) took this long."""
    MODBUS_ROUND.observe(seconds)


def mailing_message_finished(status: str, send_seconds: float | None = None, count: int = 1) -> None:
    """`count` mailing messages reached a status: sent, failed, expired, postponed, dropped or lost (else
    `other`); `send_seconds` is how long the send API call took, when one was made."""
    MAILING_MESSAGES.labels(status=_bounded(status, MAILING_STATUSES)).inc(count)
    if send_seconds is not None:
        MAILING_SEND.observe(send_seconds)


_queue_depths: dict[str, Callable[[], int]] = {}


def register_queue_depth(callback: Callable[[], int], queue: str = "tasks") -> None:
    """`callback()` answers how many tasks wait in the named queue (e.g. huey's `pending_count`). It is
    called when the page is scraped, in the scraping process only (the queue is shared), and a callback
    that fails leaves the series out of that scrape instead of failing it."""
    _queue_depths[queue] = callback


class _QueueDepthCollector:
    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("joi_task_queue_depth", "Tasks waiting in the task queue.", labels=["queue"])
        for queue, callback in sorted(_queue_depths.items()):
            try:
                family.add_metric([queue], float(callback()))
            except Exception:  # noqa: BLE001, S112 - a broken queue backend must not break the scrape
                continue
        yield family


# --- per-process gauges -------------------------------------------------------------------------------------

_samplers: list[Callable[[], None]] = []
_sampler_thread: threading.Thread | None = None
_sampler_lock = threading.Lock()


def add_sampler(sample: Callable[[], None]) -> None:
    """`sample()` sets per-process gauges. It runs before every scrape, and in multiprocess mode also every
    SAMPLE_SECONDS in each process, so that the workers that do not serve the scrape are counted too."""
    global _sampler_thread
    with _sampler_lock:
        if sample not in _samplers:
            _samplers.append(sample)
        if multiprocess_dir() and (_sampler_thread is None or not _sampler_thread.is_alive()):
            _sampler_thread = threading.Thread(target=_sample_forever, name="metrics-sampler", daemon=True)
            _sampler_thread.start()


def _sample_all() -> None:
    for sample in list(_samplers):
        try:
            sample()
        except Exception:  # noqa: BLE001, S112 - a gauge that cannot be read keeps its last value
            continue


def _sample_forever() -> None:
    while True:
        _sample_all()
        time.sleep(SAMPLE_SECONDS)


def sample_pool(database) -> None:
    """The connection pool behind the database proxy (playhouse.pool): lent out, idle, and the maximum."""
    pool = getattr(database, "obj", database)
    in_use = getattr(pool, "_in_use", None)
    if in_use is None:
        return
    DB_POOL.labels(state="in_use").set(len(in_use))
    DB_POOL.labels(state="idle").set(len(getattr(pool, "_connections", ())))
    DB_POOL_MAX.set(getattr(pool, "_max_connections", 0) or 0)


# --- the page -----------------------------------------------------------------------------------------------


def render() -> bytes:
    """The metrics page in Prometheus' text format: every process's series in multiprocess mode."""
    _sample_all()
    if multiprocess_dir():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(_QueueDepthCollector())
        return generate_latest(registry)
    return generate_latest(REGISTRY) + generate_latest(_queue_registry)


_queue_registry = CollectorRegistry()
_queue_registry.register(_QueueDepthCollector())
