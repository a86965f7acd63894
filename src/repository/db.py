"""The database handle. Every other module reaches the database through this proxy."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import peewee
from playhouse import db_url
from playhouse.pool import MaxConnectionsExceeded, PooledPostgresqlDatabase

database = peewee.DatabaseProxy()

# Errors that mean "the database cannot be reached or is busy", answered 503, never 500.
# A full pool (after waiting POOL_WAIT_SECONDS) counts as unavailable too.
UNAVAILABLE_ERRORS = (peewee.OperationalError, peewee.InterfaceError, MaxConnectionsExceeded)


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


POOL_SIZE = 32
# A request that finds every pooled connection in use waits this long for one, then gets a 503.
POOL_WAIT_SECONDS = 10


def pooled_url(url: str) -> str:
    """sqlite:// and postgresql:// become their playhouse.pool variants: each request borrows a
    connection and gives it back, so no thread holds one between requests."""
    scheme, rest = url.split("://", 1)
    return url if "+pool" in scheme else f"{scheme}+pool://{rest}"


class _PostgresPool(PooledPostgresqlDatabase):
    """playhouse's PostgreSQL pool, without a `SELECT 1` on every check-out of a connection that came back
    moments ago.

    The stock pool pings each connection it hands out, holding the database's lock (and the pool's) for
    the round trip: every request paid one more round trip, and a process's threads queued behind each
    other's pings (9% of a worker's wall time in a single-store profile, `make bench` section 6). A
    connection given back cleanly (idle, not in a transaction) less than PING_AFTER_IDLE_SECONDS ago is
    handed out as it is; one idle for longer, or in any other state, is checked as before. A connection
    that died in that second (the server restarted) fails its next statement, which answers 503 as any
    unreachable database does, and is discarded when given back (psycopg2 marks it closed).
    """

    PING_AFTER_IDLE_SECONDS = 1.0

    def __init__(self, *args, **kwargs) -> None:
        self._returned_at: dict[int, float] = {}
        super().__init__(*args, **kwargs)

    def _is_closed(self, conn) -> bool:
        returned_at = self._returned_at.pop(id(conn), None)
        if conn.closed:
            return True
        recent = returned_at is not None and time.monotonic() - returned_at < self.PING_AFTER_IDLE_SECONDS
        if recent and self._adapter.txn_status(conn) == self._adapter.txn_idle:
            return False
        return super()._is_closed(conn)

    def _close(self, conn, close_conn=False):
        with self._pool_lock:
            super()._close(conn, close_conn)
            if any(pooled is conn for _, _, pooled in self._connections):  # back in the pool, not discarded
                self._returned_at[id(conn)] = time.monotonic()


def _postgres_database(url: str, **options) -> peewee.Database:
    pooled = pooled_url(url)
    if db_url.schemes.get(urlparse(pooled).scheme) is PooledPostgresqlDatabase:
        return _PostgresPool(**db_url.parse(pooled), **options)
    return db_url.connect(pooled, **options)  # postgresext+pool:// and the like keep their own class


def open_database(url: str, *, sqlite_synchronous: str = "FULL") -> peewee.Database:
    """Open the database at a `playhouse.db_url` URL and point the shared proxy at it."""
    scheme = urlparse(url).scheme
    _writer.path = None
    if scheme.startswith("sqlite"):
        path = db_url.parse(url).get("database") or ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            _writer.path = f"{path}-writer.lock"
        db = db_url.connect(
            pooled_url(url),
            max_connections=POOL_SIZE,
            timeout=POOL_WAIT_SECONDS,
            stale_timeout=300,
            check_same_thread=False,
            pragmas={
                "journal_mode": "wal",
                "busy_timeout": 10_000,
                "synchronous": sqlite_synchronous,
                "foreign_keys": 1,
                "cache_size": -32_000,
            },
        )
    else:
        db = _postgres_database(url, max_connections=POOL_SIZE, stale_timeout=300, timeout=POOL_WAIT_SECONDS)
    database.initialize(db)
    return db


def is_sqlite() -> bool:
    return isinstance(database.obj, peewee.SqliteDatabase)


class _SqliteWriter:
    """Queues SQLite writers on a lock that wakes the next one as soon as the current one commits.

    SQLite lets one writer in at a time; the others poll in its busy handler, sleeping 1, 2, 5, 10 …
    100 ms between tries. Under load (10 threads in each of several uvicorn workers) most of a write's
    time went to those sleeps (p99 > 1 s for one-reading stores). So writers first queue here, in the
    kernel: a thread lock within the process, and an flock on a file beside the database across
    processes. BEGIN IMMEDIATE and busy_timeout still guard against writers that do not queue here
    (another program, or an in-memory database).
    """

    def __init__(self) -> None:
        self.path: str | None = None
        self._thread_lock = threading.RLock()
        self._local = threading.local()
        self._fd: int | None = None
        self._fd_path: str | None = None
        self._fd_pid: int | None = None

    def _file(self) -> int | None:
        if self.path is None:
            return None
        if self._fd is None or self._fd_path != self.path or self._fd_pid != os.getpid():
            if self._fd is not None and self._fd_pid == os.getpid():
                os.close(self._fd)  # the database moved (tests open one per test)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            self._fd_path, self._fd_pid = self.path, os.getpid()
        return self._fd

    @contextlib.contextmanager
    def hold(self):
        depth = getattr(self._local, "depth", 0)
        if depth:  # nested: this thread holds both locks already
            self._local.depth = depth + 1
            try:
                yield
            finally:
                self._local.depth = depth
            return
        with self._thread_lock:
            fd = self._file()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            self._local.depth = 1
            try:
                yield
            finally:
                self._local.depth = 0
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)


_writer = _SqliteWriter()


@contextlib.contextmanager
def write_transaction():
    """A write transaction; on SQLite, writers queue for the lock (see _SqliteWriter) and then take
    SQLite's write lock up front.

    A deferred SQLite transaction that reads and then writes fails at once with "database is locked"
    when another process wrote in between; IMMEDIATE waits on busy_timeout instead.
    """
    if not is_sqlite():
        with database.atomic():
            yield
        return
    with _writer.hold(), database.atomic("IMMEDIATE"):
        yield


def unmasked(error: BaseException) -> BaseException:
    """The error that ended a transaction. On some errors (a full disk, an I/O error) SQLite rolls the
    transaction back itself; peewee's own rollback then fails with "no transaction is active", and that
    error would hide the one that matters."""
    while "no transaction is active" in str(error) and error.__context__ is not None:
        error = error.__context__
    return error


class _GroupedWrite:
    __slots__ = ("work", "key", "result", "error", "finished", "leads", "wake")

    def __init__(self, work, key=None) -> None:
        self.work = work  # what the group's _execute runs: a function on SQLite
        self.key = key
        self.result = None
        self.error: BaseException | None = None
        self.finished = False
        self.leads = False
        self.wake = threading.Event()


class GroupCommit:
    """Group commit: the writes that queue up while one transaction runs share the next one.

    The first writer to arrive leads: it runs every write queued by then (up to MAX_BATCH; of writes
    with a key, one per key, the others wait for the next group) through _execute, which commits once
    and sets each write's result or error, then wakes the writers and hands the lead to the next one
    queued. Nobody returns before the commit that holds its write, so an answered request is still a
    committed one. Subclasses say how a group is executed (and what the leader holds meanwhile).
    """

    MAX_BATCH = 64

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._queue: list[_GroupedWrite] = []
        self._leading = False

    def run(self, work, key=None):
        item = _GroupedWrite(work, key)
        with self._mutex:
            self._queue.append(item)
            if not self._leading:
                self._leading = item.leads = True
        if not item.leads:
            item.wake.wait()  # until a leader ran it, or handed this thread the lead
        if not item.finished:
            self._lead()
        if item.error is not None:
            raise item.error
        return item.result

    def _hold(self):
        return contextlib.nullcontext()

    def _execute(self, batch: list[_GroupedWrite]) -> None:
        raise NotImplementedError

    def _lead(self) -> None:
        batch: list[_GroupedWrite] = []
        try:
            # What the leader holds first, then the batch: the writes that queue up while the leader
            # waits for it (another process's transaction) join this transaction instead of the next.
            with self._hold():
                batch = self._take_batch()
                self._execute(batch)
        except Exception as error:  # noqa: BLE001 - the lock could not be taken: every write of the batch fails
            batch = batch or self._take_batch()
            for item in batch:
                item.result = None
                item.error = item.error or error
        except BaseException as error:
            # Interrupted midway (SystemExit in this thread): whatever ran, no writer may take it as stored.
            for item in batch:
                item.error = item.error or error
            raise
        finally:
            for item in batch:
                item.finished = True
                item.wake.set()
            with self._mutex:
                if self._queue:
                    self._queue[0].leads = True
                    self._queue[0].wake.set()
                else:
                    self._leading = False

    def _take_batch(self) -> list[_GroupedWrite]:
        with self._mutex:
            batch: list[_GroupedWrite] = []
            waiting: list[_GroupedWrite] = []
            keys = set()
            for item in self._queue:
                if len(batch) >= self.MAX_BATCH or (item.key is not None and item.key in keys):
                    waiting.append(item)
                else:
                    batch.append(item)
                    keys.add(item.key)
            self._queue = waiting
        return batch


class _GroupCommit(GroupCommit):
    """Group commit for SQLite.

    Under load each one-reading store spent ~4x its own work waiting: for the write lock (its handover
    between processes), the commit's fsync, and this process's GIL after every SQLite call. Here the
    leader takes the lock, then runs every write queued by then in one transaction, each in its own
    savepoint (a failing write is rolled back alone and gets its exception), and commits once.
    """

    def _hold(self):
        return _writer.hold()

    @staticmethod
    def _execute(batch: list[_GroupedWrite]) -> None:
        try:
            with _pending_owned(), database.atomic("IMMEDIATE"):
                if len(batch) == 1:  # alone, its transaction is its savepoint: an error rolls back just it
                    batch[0].result = batch[0].work()
                    _flush_pending()
                    return
                for item in batch:
                    try:
                        with database.atomic():  # a savepoint
                            item.result = item.work()
                    except Exception as error:  # noqa: BLE001 - handed to the writer it belongs to
                        item.error = unmasked(error)
                        if not database.connection().in_transaction:
                            # SQLite rolled the whole transaction back (a full disk, an I/O error): the
                            # writes before are gone, and the next would run outside it and commit alone.
                            raise item.error from None
                _flush_pending()
        except Exception as error:  # noqa: BLE001 - BEGIN, a flush or COMMIT failed: none of the batch is stored
            for item in batch:
                item.result = None
                item.error = item.error or unmasked(error)


_group = _GroupCommit()


def grouped_write(fn):
    """fn() in a write transaction, and its result. On SQLite, concurrent callers in this process share
    transactions (see _GroupCommit); inside a transaction already, or on PostgreSQL (whose writers run
    in parallel), fn runs in a transaction of its own. What fn left in pending_until_grouped_commit is
    flushed before that transaction commits (after fn, inside an outer transaction)."""
    if getattr(_pending, "owned", False):  # inside another grouped write, which flushes before it commits
        with write_transaction():
            return fn()
    if not is_sqlite() or database.in_transaction():
        with write_transaction(), _pending_owned():
            result = fn()
            _flush_pending()
            return result
    return _group.run(fn)


_pending = threading.local()


def pending_until_grouped_commit(key: str, factory):
    """This thread's object for `key` (made by factory() when there is none yet), whose flush() runs once,
    inside the transaction, before the grouped write that is running commits. Writes that share a group
    commit thus share what they defer (one UPDATE of a counter instead of one per write). Call it last in
    a grouped write: a write that fails afterwards would leave its share behind. A flush that fails fails
    every write of the group."""
    objects = _pending.__dict__.setdefault("objects", {})
    if key not in objects:
        objects[key] = factory()
    return objects[key]


@contextlib.contextmanager
def _pending_owned():
    """This thread runs a grouped write (or a group of them) that flushes what they leave before committing;
    grouped writes nested in it leave theirs to it (a nested one flushing inside its own savepoint would
    have its rollback take the earlier writes' statistics with it)."""
    _pending.owned = True
    try:
        yield
    finally:
        _pending.owned = False
        _pending.__dict__.pop("objects", None)


def _flush_pending() -> None:
    for deferred in _pending.__dict__.pop("objects", {}).values():
        deferred.flush()


def ping() -> bool:
    try:
        database.execute_sql("SELECT 1").fetchone()
        return True
    except UNAVAILABLE_ERRORS:
        with contextlib.suppress(Exception):
            database.close()
        return False


def connect() -> None:
    database.connect(reuse_if_open=True)


def close() -> None:
    """Give this thread's connection back to the pool."""
    if not database.is_closed():
        database.close()


def close_all() -> None:
    close()
    database.close_all()
