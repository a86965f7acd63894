"""The task queue: the one huey instance, the background entry points, and one scheduler per deployment.

The queue. `huey` is built from the settings: a `RedisHuey` when REDIS_URL is set, else a `SqliteHuey` on
QUEUE_SQLITE_PATH (default `huey.sqlite3` beside the SQLite database, or under var/). Web processes only
enqueue (`some_task(args)` returns at once); workers run the tasks: `python src/worker.py` (what
`make worker` and `make run` start) is huey's consumer with this instance.

Periodic work. huey's own periodic tasks are minute-granular and run in every consumer that has them on,
so they are not used (workers start with huey's periodic scheduler off). Instead a job is registered with

    every(MODBUS_POLL_SECONDS, poll_round)      # poll_round is a @huey.task() taking no arguments

and the scheduler enqueues `poll_round()` every that many seconds (sub-minute intervals work), once per
deployment however many web and worker processes run:
- it runs only in worker processes: it is started by huey's `on_startup` hook, which the consumer calls in
  each of its worker threads (or processes), so the hook is guarded to start it once per process; web
  processes never start it;
- only the holder of the database lease `scheduler` (repository.leases) enqueues. Every worker process
  tries to take the lease every third of SCHEDULER_LEASE_SECONDS; the holder renews it at that pace and
  considers itself the holder only while the lease it last renewed is at least a third of its TTL from
  expiring, so its clock margin never overlaps a successor;
- a holder that stops cleanly releases the lease (another worker takes over within a third of the TTL);
  a holder that dies (SIGKILL, a lost machine) is replaced by another worker once its lease expires, at
  most SCHEDULER_LEASE_SECONDS later;
- a new holder runs every job at once, then at its interval; intervals missed while nobody held the lease
  are not caught up (one run, not a burst).
The enqueued task itself runs in whichever worker dequeues it; a job that must never overlap itself takes
its own lease or `huey.lock_task`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from huey import RedisHuey, SqliteHuey
from huey.api import Huey

import ingest_events
import logs
import metrics
import modbus_reader
import mqtt_publisher
from config import Config
from repository import db, leases, migrations, sample_pages
from repository import modbus as modbus_repo
from repository import silesia as silesia_repo

log = logging.getLogger("joi.tasks")

SCHEDULER_LEASE = "scheduler"


def build_huey(config: Config) -> Huey:
    if config.redis_url:
        return RedisHuey("joi", url=config.redis_url)
    Path(config.queue_path).parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("joi", filename=config.queue_path)


settings = Config.from_env()
huey = build_huey(settings)
# Read by whichever process serves GET /metrics (the queue is shared, so one reading counts it all).
metrics.register_queue_depth(huey.pending_count)


# --- Periodic jobs -------------------------------------------------------------------------------


@dataclass
class PeriodicJob:
    name: str
    seconds: float
    enqueue: Callable[[], object]
    next_due: float = 0.0


_periodic: dict[str, PeriodicJob] = {}


def every(seconds: float, task=None, *, name: str | None = None):
    """Register `task` (a huey task without arguments) to be enqueued every `seconds` by the scheduler.
    Usable as `every(60, poll_round)` or as a decorator under `@huey.task()`: `@every(60)`."""
    if seconds <= 0:
        raise ValueError(f"a periodic job needs a positive interval, not {seconds}")

    def register(task):
        task_class = getattr(task, "task_class", None)  # a huey TaskWrapper
        job_name = name or (task_class.__name__ if task_class else task.__name__)
        _periodic[job_name] = PeriodicJob(job_name, float(seconds), task)
        return task

    return register(task) if task is not None else register


def periodic_jobs() -> list[PeriodicJob]:
    return list(_periodic.values())


class Scheduler:
    """Enqueues the periodic jobs while this process holds the scheduler lease (see the module doc)."""

    def __init__(self, jobs: list[PeriodicJob], holder: str, lease_seconds: float, clock=time.monotonic):
        self.jobs = jobs
        self.holder = holder
        self.lease_seconds = lease_seconds
        self.clock = clock
        self._holding_until = 0.0  # by our own clock: until then nobody else can have the lease
        self._next_renewal = 0.0

    @property
    def tick_seconds(self) -> float:
        shortest = min((job.seconds for job in self.jobs), default=1.0)
        return max(0.05, min(0.5, shortest / 4, self.lease_seconds / 6))

    def holds_lease(self) -> bool:
        return self.clock() < self._holding_until

    def tick(self) -> list[str]:
        """Renew or try the lease when it is time, then enqueue the jobs that are due. Returns their names."""
        now = self.clock()
        if now >= self._next_renewal:
            self._renew(now)
        if not self.holds_lease():
            return []
        enqueued = []
        for job in self.jobs:
            if job.next_due <= now:
                job.enqueue()
                enqueued.append(job.name)
                job.next_due += job.seconds
                if job.next_due <= now:  # intervals missed: one run, not a burst
                    job.next_due = now + job.seconds
        return enqueued

    def _renew(self, now: float) -> None:
        was_holding = self.holds_lease()
        self._next_renewal = now + self.lease_seconds / 3
        try:
            with database_connection():
                held = leases.try_acquire(SCHEDULER_LEASE, self.holder, self.lease_seconds)
        except db.UNAVAILABLE_ERRORS as error:
            log.warning("scheduler lease could not be renewed: %s", error)
            return  # keep what the last renewal guaranteed
        if not held:
            if was_holding:
                log.warning("scheduler lease lost by %s", self.holder)
            self._holding_until = 0.0
            return
        self._holding_until = now + self.lease_seconds * 2 / 3
        if not was_holding:
            log.info("scheduler lease taken by %s; jobs: %s", self.holder, ", ".join(j.name for j in self.jobs))
            for job in self.jobs:
                job.next_due = now

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the scheduler must outlive a failing enqueue
                log.exception("scheduler tick failed")
            stop.wait(self.tick_seconds)

    def release(self) -> None:
        if self._holding_until:
            with contextlib.suppress(*db.UNAVAILABLE_ERRORS), database_connection():
                leases.release(SCHEDULER_LEASE, self.holder)
            self._holding_until = 0.0


@contextlib.contextmanager
def database_connection():
    """A database connection for this thread for the duration; closed after only if opened here
    (in immediate mode a task runs inside a web request that keeps its own)."""
    opened = db.database.is_closed()
    if opened:
        db.connect()
    try:
        yield
    finally:
        if opened:
            db.close()


# --- Worker process start and stop ---------------------------------------------------------------

_process_lock = threading.Lock()
_process_state: dict[str, object] = {}


def worker_holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@huey.on_startup()
def start_worker_process() -> None:
    """Called by the consumer in every worker thread: opens the database and starts the scheduler once
    per process."""
    with _process_lock:
        if _process_state.get("pid") == os.getpid():
            return
        _process_state.clear()
        _process_state["pid"] = os.getpid()
        db.open_database(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
        mqtt_publisher.configure(settings)
        if settings.auto_migrate:
            with database_connection():
                migrations.migrate()
        scheduler = Scheduler(periodic_jobs(), worker_holder_name(), settings.scheduler_lease_seconds)
        stop = threading.Event()
        thread = threading.Thread(target=scheduler.run, args=(stop,), name="joi-scheduler", daemon=True)
        _process_state.update(scheduler=scheduler, stop=stop, thread=thread)
        thread.start()
        log.info("worker process %d started; scheduler candidate %s", os.getpid(), scheduler.holder)


@huey.on_shutdown()
def stop_worker_process() -> None:
    """Called in every worker thread as it stops: the first stops the scheduler and releases its lease."""
    with _process_lock:
        stop = _process_state.pop("stop", None)
        if stop is None:
            return
        stop.set()
        _process_state["thread"].join(timeout=5)
        _process_state["scheduler"].release()


# --- Mailings ------------------------------------------------------------------------------------


@huey.task()
def dispatch_mailings() -> None:
    """Make, expire, claim and send due mailing messages (mailing_dispatch.Dispatcher.run_round)."""
    import mailing_dispatch

    mailing_dispatch.dispatcher(settings).run_round()


@huey.task()
@logs.runs_with_request_id
def start_mailing(mailing_id: int) -> None:
    """Enqueued by POST /api/v1/mailings/ for a mailing that has started, with the request's id: its
    messages are made at once (mailing_dispatch.start_mailing) and the next round sends them."""
    import mailing_dispatch

    mailing_dispatch.start_mailing(mailing_id)


@huey.task()
def send_mailing_report() -> None:
    """The daily e-mail with yesterday's mailing statistics, once per deployment and day."""
    import mailing_dispatch

    mailing_dispatch.send_daily_report(settings, mailing_dispatch.utcnow(), worker_holder_name())


every(settings.mailing_dispatch_seconds, dispatch_mailings)
every(60, send_mailing_report)


# --- JOI hour pages ------------------------------------------------------------------------------


@huey.task()
def page_sealed_hours() -> None:
    """Pack the JOI kW samples of hours that ended ten minutes ago into hour pages, which readings/read
    fetches instead of their rows (repository/sample_pages.py; SQLite only). Runs that overlap are safe:
    each transaction reads the meter's mark again under the write lock."""
    with database_connection():
        paged = sample_pages.page_sealed_hours(int(time.time()))
    if paged:
        log.info("hour pages: %d samples paged", paged)


every(60, page_sealed_hours)


# --- Modbus polling (SilesiaSolar hosts) ---------------------------------------------------------


@huey.task()
def poll_round() -> None:
    """One round: every host with assigned measurements that is due and not being read by another round
    (repository.modbus claims them), read over Modbus TCP (modbus_reader), samples and poll records
    stored in one transaction. Hosts and assignments are read afresh each round."""
    with database_connection():
        targets = [target for target in silesia_repo.polling_targets() if target.registers]
        claimed = modbus_repo.claim_due_hosts(
            [target.host_id for target in targets],
            now_ms=modbus_reader.now_ms(),
            interval_ms=int(settings.modbus_poll_seconds * 1000),
            lease_ms=int((_round_deadline_seconds() + settings.modbus_timeout_seconds + 30) * 1000),
        )
        # Behind one gateway, hosts are read one after another: the ones that failed last go last.
        failures = modbus_repo.failure_counts(claimed)
    due = sorted(
        (target for target in targets if target.host_id in claimed),
        key=lambda target: (failures.get(target.host_id, 0), target.host_id),
    )
    if not due:
        return
    started = time.monotonic()
    try:
        result = modbus_reader.poll(
            due,
            timeout=settings.modbus_timeout_seconds,
            concurrency=settings.modbus_concurrency,
            deadline_seconds=_round_deadline_seconds(),
        )
    except BaseException:
        with database_connection():
            modbus_repo.release(claimed)
        raise
    with database_connection():
        modbus_repo.store_round(result.samples, result.outcomes)
    metrics.modbus_round_finished(time.monotonic() - started)
    for outcome in result.outcomes:
        metrics.modbus_poll_finished(outcome.outcome)
    for sample in result.samples:
        moment = datetime.fromtimestamp(sample.time_ms / 1000, UTC)
        ingest_events.publish_modbus_sample(sample.host_id, sample.measurement, sample.value, sample.unit, moment)
    failed = sum(1 for outcome in result.outcomes if outcome.outcome != "ok")
    log.info("modbus round: %d hosts, %d samples, %d hosts with errors", len(due), len(result.samples), failed)


def _round_deadline_seconds() -> float:
    """A round starts no host later than this after its start (hosts behind a gateway wait for the silent
    ones before them): two intervals, or four timeouts when that is longer. Its claims last this long,
    one timeout and a margin: a round that died is then presumed dead and its hosts are polled again."""
    return max(2 * settings.modbus_poll_seconds, 4 * settings.modbus_timeout_seconds)


if settings.modbus_poll_seconds > 0:
    every(settings.modbus_poll_seconds, poll_round)
