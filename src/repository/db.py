"""The database handle. Every other module reaches the database through this proxy."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import fcntl
import logging
import os
import sqlite3
import threading
import time
import weakref
from pathlib import Path
from urllib.parse import urlparse

import greenlet
import peewee
from playhouse import db_url
from playhouse.pool import MaxConnectionsExceeded, PooledPostgresqlDatabase

database = peewee.DatabaseProxy()
logger = logging.getLogger(__name__)

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
    _wal_sync.configure(None, sqlite_synchronous)
    if scheme.startswith("sqlite"):
        path = db_url.parse(url).get("database") or ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            _writer.path = f"{path}-writer.lock"
            _wal_sync.configure(f"{path}-wal", sqlite_synchronous)
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
        # A plain lock (nesting is counted in _local.depth): the event loop's group commit may take it in a
        # waiting thread and let it go in the loop's own (hold_in_loop).
        self._thread_lock = threading.Lock()
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
        current = greenlet.getcurrent()
        if isinstance(current, _LoopCall):
            # Code that in_event_loop runs, in the loop's thread: blocking here for a lock that the loop's
            # own group commit may hold while it waits would stop the loop for good.
            current.take_writer()
            try:
                yield
            finally:
                _loop_group().release_writer()
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

    async def acquire_in_loop(self, waiter: concurrent.futures.Executor) -> None:
        """Both locks for the event loop's thread, without blocking the loop: when either is taken, a
        thread of `waiter` waits for it (one at a time: callers queue on _LoopGroupCommit's turn first, so
        no waiting thread can be held up by another that waits for a lock this caller would hold). Release
        with release_in_loop."""
        if not self._thread_lock.acquire(blocking=False):
            await _waited(waiter, self._thread_lock.acquire, undo=self._thread_lock.release)
        try:
            fd = self._file()
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    await _waited(waiter, fcntl.flock, fd, fcntl.LOCK_EX, undo=lambda: fcntl.flock(fd, fcntl.LOCK_UN))
        except BaseException:
            self._thread_lock.release()
            raise
        self._local.depth = 1

    def release_in_loop(self) -> None:
        self._local.depth = 0
        try:
            fd = self._file()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()


async def _waited(waiter: concurrent.futures.Executor, take, *args, undo) -> None:
    """take(*args) in a waiting thread. When the awaiting task is cancelled the thread still waits (it
    cannot be interrupted): what it takes then is given back at once instead of being held for good."""
    future = asyncio.get_running_loop().run_in_executor(waiter, take, *args)
    try:
        await asyncio.shield(future)
    except asyncio.CancelledError:
        future.add_done_callback(lambda done: undo() if not done.cancelled() and done.exception() is None else None)
        raise


_writer = _SqliteWriter()


class _WalSync:
    """The fsync of a group commit, done after the write lock is let go.

    With synchronous=FULL in WAL mode SQLite makes a commit durable with one fdatasync of the WAL file,
    inside its write lock: under load the lock then sat idle for the ~2 ms of each commit's sync while
    every other writer waited for it. A group commit therefore runs its transaction with synchronous=NORMAL
    (the frames reach the WAL file with write(), unsynced) and its leader syncs the WAL file itself once
    the lock is released, before any writer of the group returns. An answered write is thus on disk exactly
    as with FULL, and the next group writes while this one's sync runs. A sync covers every frame written
    before it, whoever wrote it; a checkpoint that copies frames into the database file syncs both files
    itself (NORMAL still does), so frames that a later writer overwrites after a checkpoint were durable
    already. Every other write keeps SQLite's own FULL sync.

    Checkpoints leave the group's commit too: SQLite runs one inside the COMMIT that takes the WAL past
    1,000 pages, where it held the write lock (and, for the event loop's group, the loop) for 5-12 ms of
    copying and syncing, every few dozen 1,000-reading stores. A group's transaction therefore runs with
    wal_autocheckpoint off, and after a group's sync a thread of its own runs a PASSIVE checkpoint (which
    waits for no writer and no writer waits for) at most every CHECKPOINT_INTERVAL_SECONDS. SQLite starts
    the WAL over only after a checkpoint that copied all of it; one that writers outran, once the WAL holds
    AUTOCHECKPOINT_PAGES, copies the rest again with the write lock held (the frames written meanwhile).
    """

    DEFERRED_LEVELS = ("FULL", "EXTRA")
    CHECKPOINT_INTERVAL_SECONDS = 0.25
    AUTOCHECKPOINT_PAGES = 1000  # SQLite's default, which every other write keeps

    def __init__(self) -> None:
        self.path: str | None = None
        self.level = "FULL"
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._identity: tuple | None = None  # (pid, path, st_dev, st_ino) of the open descriptor
        self._checkpointer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="wal-checkpoint")
        self._checkpoint_due = 0.0
        self._checkpointing = False

    def configure(self, wal_path: str | None, level: str) -> None:
        self.path = wal_path if level.upper() in self.DEFERRED_LEVELS else None
        self.level = level.upper()

    @property
    def deferred(self) -> bool:
        return self.path is not None

    def sync(self) -> None:
        """fdatasync of the WAL file (while this process's pool keeps connections open, SQLite does not
        delete it: it does so when the last connection closes, after a checkpoint that synced it all)."""
        os.fdatasync(self._descriptor())

    def checkpoint_soon(self) -> None:
        """A PASSIVE checkpoint in the checkpoint thread, unless one ran within the interval or runs now."""
        now = time.monotonic()
        with self._lock:
            if self._checkpointing or now < self._checkpoint_due:
                return
            self._checkpointing = True
            self._checkpoint_due = now + self.CHECKPOINT_INTERVAL_SECONDS
        try:
            self._checkpointer.submit(self._checkpoint)
        except RuntimeError:  # the interpreter is shutting down
            self._checkpointing = False

    def _checkpoint(self) -> None:
        # A connection of its own, not the pool's: close_all() (a test's teardown, a restart of the pool)
        # closing a pooled connection while this thread checkpoints on it would crash the process. mode=rw:
        # a database removed meanwhile is not made anew.
        path = self.path
        if path is None:  # another database (or no sync of ours) since this was asked for
            self._checkpointing = False
            return
        try:
            database_file = Path(path.removesuffix("-wal")).resolve().as_uri()
            connection = sqlite3.connect(f"{database_file}?mode=rw", uri=True, timeout=0)
            try:
                logged = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
                if logged >= self.AUTOCHECKPOINT_PAGES:
                    # Writers go on adding frames while it copies, and the WAL starts over only after a
                    # checkpoint that left none behind: under steady writes it grew without end (74 MB for
                    # a 0.9 MB database in 2,000 telegrams, every statement slower for its index). Copying
                    # what was added meanwhile, with the writers held off, takes a moment.
                    with _writer.hold():
                        connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                connection.close()
        except Exception:  # noqa: BLE001 - the next one, or SQLite's own, catches up
            logger.warning("a background WAL checkpoint of %s failed", path, exc_info=True)
        finally:
            self._checkpointing = False

    def _descriptor(self) -> int:
        path = self.path
        status = os.stat(path)
        identity = (os.getpid(), path, status.st_dev, status.st_ino)
        with self._lock:
            if identity != self._identity:
                # A new file (the last connection closed and deleted the old one), a new database, or a
                # forked process: a descriptor of the old inode would sync nothing of the new one.
                if self._fd is not None and self._identity and self._identity[0] == os.getpid():
                    os.close(self._fd)
                self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                self._identity = identity
            return self._fd


_wal_sync = _WalSync()


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
    __slots__ = ("work", "key", "result", "error", "finished", "leads", "wake", "context", "future")

    def __init__(self, work, key=None, wake: threading.Event | None = None) -> None:
        self.work = work  # what the group's _execute runs: a function on SQLite
        self.key = key
        self.result = None
        self.error: BaseException | None = None
        self.finished = False
        self.leads = False
        self.wake = wake  # a writer thread's, set when its write is done or it leads (not for loop writes)
        self.context: contextvars.Context | None = None  # the writer's, when it is not the running thread's
        self.future: asyncio.Future | None = None


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
        item = _GroupedWrite(work, key, threading.Event())
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

    def _settle(self, batch: list[_GroupedWrite], executed) -> None:
        """What a group still needs once the lock is let go and the next group may start, before its
        writers return (the SQLite group's fsync); `executed` is what _execute returned."""

    def _lead(self) -> None:
        batch: list[_GroupedWrite] = []
        executed = None
        try:
            try:
                # What the leader holds first, then the batch: the writes that queue up while the leader
                # waits for it (another process's transaction) join this transaction instead of the next.
                with self._hold():
                    batch = self._take_batch()
                    executed = self._execute(batch)
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
                self._pass_lead()
            self._settle(batch, executed)
        finally:
            for item in batch:
                item.finished = True
                item.wake.set()

    def _pass_lead(self) -> None:
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

    def _execute(self, batch: list[_GroupedWrite]) -> bool:
        return self.execute_items(batch)

    def execute_items(self, batch: list[_GroupedWrite]) -> bool:
        """Runs the group in one transaction (the write lock held); True when its commit is left for
        sync_items to sync."""
        # NORMAL outside WAL mode (a file system without shared memory) would not be safe to sync later.
        if not (_wal_sync.deferred and _in_wal_mode()):
            self._run_transaction(batch)
            return False
        database.execute_sql("PRAGMA synchronous = NORMAL")
        database.execute_sql("PRAGMA wal_autocheckpoint = 0")
        try:
            self._run_transaction(batch)
        finally:
            database.execute_sql(f"PRAGMA synchronous = {_wal_sync.level}")
            database.execute_sql(f"PRAGMA wal_autocheckpoint = {_wal_sync.AUTOCHECKPOINT_PAGES}")
        return True

    def _settle(self, batch: list[_GroupedWrite], executed) -> None:
        if executed:
            self.sync_items(batch)

    @staticmethod
    def sync_items(batch: list[_GroupedWrite]) -> None:
        """The sync of a group that execute_items committed, after the lock is let go."""
        if all(item.error is not None for item in batch):
            return
        try:
            _wal_sync.sync()
            _wal_sync.checkpoint_soon()
        except OSError as error:
            # Committed but perhaps not on disk: no writer may take its write as stored (it is answered as
            # the database being unavailable, as a failed sync inside COMMIT would have been).
            failure = peewee.OperationalError(f"the commit could not be synced to disk: {error}")
            for item in batch:
                item.result = None
                item.error = item.error or failure

    @staticmethod
    def _run_transaction(batch: list[_GroupedWrite]) -> None:
        try:
            with _pending_owned(), database.atomic("IMMEDIATE"):
                if len(batch) == 1:  # alone, its transaction is its savepoint: an error rolls back just it
                    batch[0].result = _run_work(batch[0])
                    _flush_pending()
                    return
                for item in batch:
                    try:
                        with database.atomic():  # a savepoint
                            item.result = _run_work(item)
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


def _run_work(item: _GroupedWrite):
    # In the writer's own context (its request id reaches the log lines written there).
    return item.work() if item.context is None else item.context.run(item.work)


def _in_wal_mode() -> bool:
    return database.execute_sql("PRAGMA journal_mode").fetchone()[0].lower() == "wal"


_group = _GroupCommit()


def grouped_write(fn):
    """fn() in a write transaction, and its result. On SQLite, concurrent callers in this process share
    transactions (see _GroupCommit, and _LoopGroupCommit for code run by in_event_loop); inside a
    transaction already, or on PostgreSQL (whose writers run in parallel), fn runs in a transaction of its
    own. What fn left in pending_until_grouped_commit is flushed before that transaction commits (after
    fn, inside an outer transaction)."""
    if getattr(_pending, "owned", False):  # inside another grouped write, which flushes before it commits
        with write_transaction():
            return fn()
    if not is_sqlite() or database.in_transaction():
        with write_transaction(), _pending_owned():
            result = fn()
            _flush_pending()
            return result
    current = greenlet.getcurrent()
    if isinstance(current, _LoopCall):
        return current.grouped_write(fn)
    return _group.run(fn)


class _LoopCall(greenlet.greenlet):
    """Synchronous code run by in_event_loop: a grouped write in it hands its work to the loop's group
    commit and resumes once that group is committed and synced (the loop runs other requests meanwhile)."""

    def grouped_write(self, fn):
        item = _GroupedWrite(fn)
        item.context = contextvars.copy_context()
        self.parent.switch(item)  # back in in_event_loop, which resumes this greenlet when the item is done
        if item.error is not None:
            raise item.error
        return item.result

    def take_writer(self) -> None:
        """Both write locks for a write_transaction() of this code, taken by the loop (raises what taking
        them raised)."""
        self.parent.switch(_WRITER_WANTED)


_WRITER_WANTED = object()  # what a _LoopCall hands the loop when it needs the write locks


async def in_event_loop(fn, *args):
    """fn(*args) in the event loop's own thread (SQLite only), its grouped writes sharing the loop's group
    commit (_LoopGroupCommit), as SQLAlchemy runs synchronous code over asyncio: fn runs in a greenlet that
    switches back to the loop wherever it waits for a commit.

    Why: a write in a worker thread shared the GIL with the event loop, and every SQLite call inside the
    write lock released it, then waited up to a switch interval to get it back (timed in the lock: a v1
    telegram's eight or so statements took 0.42 ms, mostly that wait). Here the loop runs each group's
    statements itself, with no other thread of the process wanting the GIL, and waits only for the lock
    and the commit's sync, in threads.
    Everything fn does outside grouped writes (parsing, checks, reads, what follows the commit) runs in
    the loop too, as a sync worker would run it."""
    call = _LoopCall(fn)
    call.gr_context = contextvars.copy_context()
    wanted = call.switch(*args)
    while not call.dead:
        group = _loop_group()
        if wanted is _WRITER_WANTED:
            try:
                await group.acquire_writer()
            except BaseException as error:  # noqa: BLE001 - raised where the code asked for the locks
                wanted = call.throw(error)
                continue
        else:
            await group.submit(wanted)
        wanted = call.switch()
    return wanted


_loop_groups: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _loop_group() -> _LoopGroupCommit:
    loop = asyncio.get_running_loop()
    group = _loop_groups.get(loop)
    if group is None:
        group = _loop_groups[loop] = _LoopGroupCommit()
    return group


class _LoopGroupCommit:
    """The group commit of writes that in_event_loop's code makes: the writes that queue up while the loop
    waits for the write lock (or that arrive in the same turn of the loop) share one transaction, run by
    the loop itself as _GroupCommit runs one (a savepoint each, the deferred work flushed before COMMIT).
    The lock is let go after COMMIT; the WAL's sync then runs in a thread while the next group may take
    the lock, and the writers resume once it is done."""

    MAX_BATCH = GroupCommit.MAX_BATCH

    def __init__(self) -> None:
        self._queue: list[_GroupedWrite] = []
        self._draining = False
        self._tasks: set[asyncio.Task] = set()
        self._writer_turn = asyncio.Lock()  # the loop's takers of the write locks, one at a time

    async def acquire_writer(self) -> None:
        await self._writer_turn.acquire()
        try:
            await _writer.acquire_in_loop(_lock_waiters)
        except BaseException:
            self._writer_turn.release()
            raise

    def release_writer(self) -> None:
        try:
            _writer.release_in_loop()
        finally:
            self._writer_turn.release()

    def submit(self, item: _GroupedWrite) -> asyncio.Future:
        """A future that is done (never with an exception: those are the item's) when the item is settled."""
        item.future = asyncio.get_running_loop().create_future()
        self._queue.append(item)
        if not self._draining:
            self._draining = True
            self._spawn(self._drain())
        return item.future

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)  # the loop keeps only weak references to its tasks
        task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        try:
            while self._queue:
                await self._run_group()
        finally:
            self._draining = False

    async def _run_group(self) -> None:
        batch: list[_GroupedWrite] = []
        executed = False
        try:
            await self.acquire_writer()
        except BaseException as error:
            batch, self._queue = self._queue, []
            self._fail(batch, error)
            self._resolve(batch)
            if not isinstance(error, Exception):
                raise
            return
        try:
            batch, self._queue = self._queue[: self.MAX_BATCH], self._queue[self.MAX_BATCH :]
            connect()
            executed = _group.execute_items(batch)
        except BaseException as error:  # handed to the writers; an interruption goes on up once they know
            self._fail(batch, error)
            if not isinstance(error, Exception):
                self._resolve(batch)
                raise
        finally:
            self.release_writer()
        self._spawn(self._settle(batch, executed))

    async def _settle(self, batch: list[_GroupedWrite], executed: bool) -> None:
        try:
            if executed and any(item.error is None for item in batch):
                await asyncio.get_running_loop().run_in_executor(_syncers, _group.sync_items, batch)
        except BaseException as error:
            # Cancelled (the server stopping) while the sync ran: not known to be on disk, so not stored.
            self._fail(batch, error)
            if not isinstance(error, Exception):
                raise
        finally:
            self._resolve(batch)

    @staticmethod
    def _fail(batch: list[_GroupedWrite], error: BaseException) -> None:
        for item in batch:
            item.result = None
            item.error = item.error or error

    @staticmethod
    def _resolve(batch: list[_GroupedWrite]) -> None:
        for item in batch:
            item.finished = True
            if not item.future.done():
                item.future.set_result(None)


# Threads that wait for the write lock, and that sync the WAL, for the event loop's group commit.
_lock_waiters = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="write-lock")
_syncers = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="wal-sync")


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
