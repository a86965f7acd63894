"""Writes that queue while another commits share its successor's transaction (SQLite group commit),
and each still succeeds or fails on its own."""

import threading
import time

import peewee
import pytest

from domain.usage import HourRollup
from repository import db
from repository import readings as readings_repo


def hours_of(meter_id):
    return {
        row.hour_start: row.kwh
        for row in readings_repo.EnergyHour.select().where(readings_repo.EnergyHour.meter_id == meter_id)
    }


def write_hour(meter_id, fail=False):
    def fn():
        readings_repo.replace_hourly_energy(meter_id, {0: HourRollup(1.0, 0.25, 0.5, 0.75)})
        if fail:
            raise peewee.IntegrityError(f"{meter_id} refused")
        return meter_id

    return fn


def in_thread(target, results, key):
    def run():
        db.connect()
        try:
            results[key] = target()
        except Exception as error:  # noqa: BLE001 - the test inspects it
            results[key] = error
        finally:
            db.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_lone_failing_write_raises_its_own_error_and_stores_nothing(database):
    with pytest.raises(peewee.IntegrityError, match="alone refused"):
        db.grouped_write(write_hour("alone", fail=True))
    assert hours_of("alone") == {}


def test_a_failing_write_in_a_group_is_rolled_back_alone(database):
    release = threading.Event()
    results = {}

    def first():
        readings_repo.replace_hourly_energy("first", {0: HourRollup(1.0, 0.25, 0.5, 0.75)})
        release.wait(10)
        return "first"

    threads = [in_thread(lambda: db.grouped_write(first), results, "first")]
    time.sleep(0.2)  # "first" leads and holds the transaction open
    for name, fail in (("b", False), ("c", True), ("d", False)):
        threads.append(in_thread(lambda name=name, fail=fail: db.grouped_write(write_hour(name, fail)), results, name))
    if db.is_sqlite():
        deadline = time.monotonic() + 10
        while len(db._group._queue) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(db._group._queue) == 3  # b, c and d will share one transaction
    release.set()
    for thread in threads:
        thread.join(20)

    assert results["first"] == "first" and results["b"] == "b" and results["d"] == "d"
    assert isinstance(results["c"], peewee.IntegrityError)
    assert hours_of("b") == {0: 1.0} and hours_of("d") == {0: 1.0}
    assert hours_of("c") == {}


def test_writes_that_queue_while_the_leader_waits_for_the_lock_share_its_transaction(database, monkeypatch):
    if not db.is_sqlite():
        pytest.skip("PostgreSQL writers run in parallel, each in its own transaction")
    sizes = []
    execute = db._group._execute
    monkeypatch.setattr(db._group, "_execute", lambda batch: (sizes.append(len(batch)), execute(batch))[1])
    results = {}
    with db._writer.hold():  # as another process's transaction would
        threads = [in_thread(lambda: db.grouped_write(write_hour("leader")), results, "leader")]
        time.sleep(0.2)  # the leader is waiting for the lock
        for name in ("b", "c"):
            threads.append(in_thread(lambda name=name: db.grouped_write(write_hour(name)), results, name))
        deadline = time.monotonic() + 10
        while len(db._group._queue) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    for thread in threads:
        thread.join(20)
    assert sizes == [3]
    assert results == {"leader": "leader", "b": "b", "c": "c"}
    assert hours_of("b") == {0: 1.0}


class _Deferred:
    flushed: list[int] = []

    def __init__(self) -> None:
        self.count = 0

    def flush(self) -> None:
        _Deferred.flushed.append(self.count)


def _defer_one() -> None:
    db.pending_until_grouped_commit("test", _Deferred).count += 1


def test_what_grouped_writes_defer_is_flushed_once_before_the_commit_of_the_outermost(database):
    _Deferred.flushed = []

    def outer():
        db.grouped_write(_defer_one)
        db.grouped_write(_defer_one)
        assert _Deferred.flushed == []  # not inside the nested writes' savepoints
        _defer_one()

    db.grouped_write(outer)
    assert _Deferred.flushed == [3]
    db.grouped_write(_defer_one)
    assert _Deferred.flushed == [3, 1]


def test_what_a_failed_grouped_write_deferred_is_not_flushed_with_the_next(database):
    _Deferred.flushed = []

    def failing():
        _defer_one()
        raise peewee.IntegrityError("refused")

    with pytest.raises(peewee.IntegrityError):
        db.grouped_write(failing)
    db.grouped_write(_defer_one)
    assert _Deferred.flushed == [1]
