"""SQLite group commits sync the WAL themselves once the write lock is let go, before any writer of the group
returns; writes made by code that db.in_event_loop runs share a group commit run by the event loop itself."""

import asyncio
import contextvars
import errno
import fcntl
import os
import sqlite3
import threading
import time

import peewee
import pytest

from domain.usage import HourRollup
from repository import db
from repository import readings as readings_repo
from tests.integration.test_group_commit import hours_of, write_hour

REQUEST = contextvars.ContextVar("request", default=None)


@pytest.fixture
def sqlite_database(database):
    if not db.is_sqlite():
        pytest.skip("the WAL sync and the event loop's group commit are SQLite's")
    return database


def database_path() -> str:
    return db.database.obj.database


def committed_elsewhere(meter_id) -> bool:
    """Whether another connection (as another process would) sees the meter's hour."""
    connection = sqlite3.connect(database_path())
    try:
        return bool(connection.execute("SELECT 1 FROM energy_rollups WHERE meter_id = ?", (meter_id,)).fetchall())
    finally:
        connection.close()


def write_lock_is_free() -> bool:
    fd = os.open(f"{database_path()}-writer.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


class SyncRecorder:
    """Stands in for os.fdatasync: records what was true when the group synced, then syncs (or fails)."""

    def __init__(self, meter_id, error: OSError | None = None):
        self.meter_id = meter_id
        self.error = error
        self.calls = []
        self.real = os.fdatasync

    def __call__(self, fd):
        self.calls.append(
            {
                "file": os.readlink(f"/proc/self/fd/{fd}"),
                "lock_free": write_lock_is_free(),
                "committed": committed_elsewhere(self.meter_id),
            }
        )
        if self.error is not None:
            raise self.error
        self.real(fd)


def test_a_group_commit_syncs_the_wal_after_letting_the_lock_go_and_before_the_write_returns(
    sqlite_database, monkeypatch
):
    recorder = SyncRecorder("synced")
    monkeypatch.setattr(db.os, "fdatasync", recorder)

    assert db.grouped_write(write_hour("synced")) == "synced"

    assert recorder.calls == [
        {"file": f"{os.path.realpath(database_path())}-wal", "lock_free": True, "committed": True}
    ]


def test_the_group_runs_without_sqlite_own_sync_and_leaves_the_connection_at_full(sqlite_database):
    def level():
        return db.database.execute_sql("PRAGMA synchronous").fetchone()[0]

    assert db.grouped_write(level) == 1  # NORMAL inside the group's transaction
    assert level() == 2  # FULL again for every other write on the connection


def test_a_sync_that_fails_fails_the_write_though_it_committed(sqlite_database, monkeypatch):
    monkeypatch.setattr(db.os, "fdatasync", SyncRecorder("unsynced", OSError(errno.EIO, "I/O error")))

    with pytest.raises(peewee.OperationalError, match="could not be synced to disk"):
        db.grouped_write(write_hour("unsynced"))


def test_with_synchronous_normal_the_group_leaves_the_sync_to_sqlite_checkpoints(sqlite_database, monkeypatch):
    db.close_all()
    db.open_database(f"sqlite:///{database_path()}", sqlite_synchronous="NORMAL")
    db.connect()
    recorder = SyncRecorder("normal")
    monkeypatch.setattr(db.os, "fdatasync", recorder)

    db.grouped_write(write_hour("normal"))

    assert recorder.calls == []
    assert db.database.execute_sql("PRAGMA synchronous").fetchone()[0] == 1


def wal_restarts() -> int:
    """The WAL header's checkpoint sequence number: SQLite adds one each time it starts the WAL over."""
    with open(f"{database_path()}-wal", "rb") as wal:
        return int.from_bytes(wal.read(16)[12:16], "big")


def test_under_steady_writes_the_wal_starts_over_instead_of_growing_without_end(sqlite_database, monkeypatch):
    """The background checkpoint runs while writers go on adding frames; SQLite starts the WAL over only
    after a checkpoint that left none behind, so the one that writers outran is finished with them held off."""
    monkeypatch.setattr(db._WalSync, "CHECKPOINT_INTERVAL_SECONDS", 0.02)
    monkeypatch.setattr(db._WalSync, "AUTOCHECKPOINT_PAGES", 50)
    db.grouped_write(write_hour("first"))
    restarts_before = wal_restarts()
    samples = [(1_700_000_000 + minute * 60, 1.0) for minute in range(300)]
    deadline = time.monotonic() + 3
    while wal_restarts() < restarts_before + 3 and time.monotonic() < deadline:
        db.grouped_write(lambda batch=samples: readings_repo.store("steady", batch, 3600))
        samples = [(moment + 300 * 60, value) for moment, value in samples]
    assert wal_restarts() >= restarts_before + 3


# --- the event loop's group commit ---------------------------------------------------------------------


def store_in_loop(meter_id, fail=False):
    """What a request's synchronous code does: work before, a grouped write, work after."""
    before = threading.get_ident()
    stored = db.grouped_write(write_hour(meter_id, fail))
    return stored, before, threading.get_ident(), REQUEST.get()


@pytest.fixture
def groups(monkeypatch):
    """The sizes of the groups the event loop's group commit ran."""
    sizes = []
    execute = db._group.execute_items

    def recorded(batch):
        sizes.append(len(batch))
        return execute(batch)

    monkeypatch.setattr(db._group, "execute_items", recorded)
    return sizes


async def call_in_loop(meter_id, fail=False):
    REQUEST.set(meter_id)
    return await db.in_event_loop(store_in_loop, meter_id, fail)


def test_writes_of_event_loop_calls_made_together_share_one_transaction_in_the_loop_thread(sqlite_database, groups):
    async def main():
        return await asyncio.gather(*(call_in_loop(f"loop-{n}") for n in range(5)))

    answers = asyncio.run(main())

    loop_thread = threading.get_ident()
    assert answers == [(f"loop-{n}", loop_thread, loop_thread, f"loop-{n}") for n in range(5)]
    assert groups == [5]
    assert all(hours_of(f"loop-{n}") == {0: 1.0} for n in range(5))


def test_a_failing_write_among_event_loop_calls_is_rolled_back_alone(sqlite_database, groups):
    async def main():
        calls = [call_in_loop("kept-1"), call_in_loop("refused", fail=True), call_in_loop("kept-2")]
        return await asyncio.gather(*calls, return_exceptions=True)

    first, refused, second = asyncio.run(main())

    assert first[0] == "kept-1" and second[0] == "kept-2"
    assert isinstance(refused, peewee.IntegrityError)
    assert groups == [3]
    assert hours_of("kept-1") == {0: 1.0} and hours_of("kept-2") == {0: 1.0} and hours_of("refused") == {}


def test_an_event_loop_write_resumes_only_after_its_commit_was_synced_with_the_lock_let_go(
    sqlite_database, monkeypatch
):
    recorder = SyncRecorder("loop-synced")
    monkeypatch.setattr(db.os, "fdatasync", recorder)

    def store_then_look():
        db.grouped_write(write_hour("loop-synced"))
        return list(recorder.calls)

    seen_after_resuming = asyncio.run(db.in_event_loop(store_then_look))

    assert seen_after_resuming == [
        {"file": f"{os.path.realpath(database_path())}-wal", "lock_free": True, "committed": True}
    ]


def test_a_failed_sync_fails_the_event_loop_writes_of_the_group(sqlite_database, monkeypatch):
    monkeypatch.setattr(db.os, "fdatasync", SyncRecorder("loop-unsynced", OSError(errno.EIO, "I/O error")))

    async def main():
        return await asyncio.gather(call_in_loop("loop-unsynced"), call_in_loop("also"), return_exceptions=True)

    answers = asyncio.run(main())

    assert all(isinstance(answer, peewee.OperationalError) for answer in answers)
    assert all("could not be synced to disk" in str(answer) for answer in answers)


def test_the_event_loop_waits_for_a_write_lock_held_elsewhere_without_blocking(sqlite_database, groups):
    holding, release = threading.Event(), threading.Event()

    def hold_the_lock():
        db.connect()
        try:

            def work():
                holding.set()
                release.wait(10)

            db.grouped_write(work)
        finally:
            db.close()

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    assert holding.wait(10)

    async def main():
        write = asyncio.ensure_future(call_in_loop("waited"))
        late = None
        ticks = 0
        while not write.done() and ticks < 400:
            await asyncio.sleep(0.005)  # the loop goes on serving while the write waits for the lock
            ticks += 1
            if ticks == 20:
                late = asyncio.ensure_future(call_in_loop("joined"))  # queues behind the first, same group
                release.set()
        return await write, await late, ticks

    (stored, *_), (joined, *_), ticks = asyncio.run(main())
    holder.join(10)

    assert stored == "waited" and joined == "joined"
    assert ticks >= 20
    assert groups == [1, 2]  # the thread's group that held the lock, then both loop writes in one
    assert hours_of("waited") == {0: 1.0}


def test_nested_writes_inside_an_event_loop_call_that_holds_a_transaction_run_in_it(sqlite_database, groups):
    def outer():
        with db.write_transaction():
            db.grouped_write(write_hour("nested"))
            return db.database.in_transaction()

    assert asyncio.run(db.in_event_loop(outer)) is True
    assert groups == []  # in a transaction already: the write joined it instead of a group
    assert hours_of("nested") == {0: 1.0}


def test_an_event_loop_write_waits_its_turn_behind_a_thread_group_of_the_same_process(sqlite_database, groups):
    """Both group commits of a process queue on the same write lock (the loop's waits in a thread)."""
    order = []
    release = threading.Event()

    def slow():
        order.append("thread group")
        release.wait(10)
        time.sleep(0.05)
        order.append("thread group done")

    thread = threading.Thread(target=lambda: (db.connect(), db.grouped_write(slow), db.close()))
    thread.start()
    while not order:
        time.sleep(0.01)

    def loop_write():
        db.grouped_write(lambda: order.append("loop group"))

    async def main():
        write = asyncio.ensure_future(db.in_event_loop(loop_write))
        await asyncio.sleep(0.05)
        release.set()
        await write

    asyncio.run(main())
    thread.join(10)
    assert order == ["thread group", "thread group done", "loop group"]


def test_a_write_transaction_of_event_loop_code_waits_for_the_lock_without_stopping_the_loop(sqlite_database):
    """While the loop's group commit waits for the lock another process holds, event loop code that opens a
    write transaction of its own queues behind it instead of blocking the loop's thread (which would never
    see the group's lock arrive)."""
    other_process = os.open(f"{database_path()}-writer.lock", os.O_RDWR)
    fcntl.flock(other_process, fcntl.LOCK_EX)
    outcome = {}

    def own_transaction():
        with db.write_transaction():
            readings_repo.replace_hourly_energy("own", {0: HourRollup(2.0, 0.5, 1.0, 1.5)})
        return "own"

    async def main():
        grouped = asyncio.ensure_future(call_in_loop("grouped"))
        await asyncio.sleep(0.05)  # the group now waits for the lock in a thread
        own = asyncio.ensure_future(db.in_event_loop(own_transaction))
        ticks = 0
        while ticks < 20:
            await asyncio.sleep(0.005)
            ticks += 1
        fcntl.flock(other_process, fcntl.LOCK_UN)
        outcome["answers"] = ((await grouped)[0], await own, ticks)

    def run():
        db.connect()
        try:
            asyncio.run(main())
        finally:
            db.close()

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    runner.join(20)
    os.close(other_process)

    assert not runner.is_alive(), "the event loop stopped"
    assert outcome["answers"] == ("grouped", "own", 20)
    assert hours_of("grouped") == {0: 1.0} and hours_of("own") == {0: 2.0}


def test_an_event_loop_write_whose_lock_wait_is_cancelled_leaves_no_lock_behind(sqlite_database):
    other_process = os.open(f"{database_path()}-writer.lock", os.O_RDWR)
    fcntl.flock(other_process, fcntl.LOCK_EX)

    async def main():
        waiting = asyncio.ensure_future(db.in_event_loop(lambda: db.grouped_write(write_hour("cancelled"))))
        await asyncio.sleep(0.05)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        fcntl.flock(other_process, fcntl.LOCK_UN)
        await asyncio.sleep(0.1)  # the waiting thread takes the lock, and gives it back at once

    asyncio.run(main())
    os.close(other_process)

    assert write_lock_is_free()
    assert db.grouped_write(write_hour("after")) == "after"


def test_a_group_whose_sync_is_cancelled_leaves_its_writes_failed_not_stored(sqlite_database, monkeypatch):
    """The server stopping mid-sync (asyncio cancels the tasks left): the writes are not known to be on
    disk, so none may be taken as stored."""
    syncing = threading.Event()
    real = os.fdatasync

    def slow_sync(fd):
        syncing.set()
        time.sleep(0.3)
        real(fd)

    monkeypatch.setattr(db.os, "fdatasync", slow_sync)
    submitted = []
    submit = db._LoopGroupCommit.submit
    monkeypatch.setattr(
        db._LoopGroupCommit, "submit", lambda group, item: (submitted.append(item), submit(group, item))[1]
    )

    async def main():
        asyncio.ensure_future(call_in_loop("stopping"))
        while not syncing.is_set():
            await asyncio.sleep(0.01)
        # returning now: asyncio.run cancels the writer and the group's sync

    asyncio.run(main())

    assert len(submitted) == 1
    assert submitted[0].finished
    assert isinstance(submitted[0].error, asyncio.CancelledError)
