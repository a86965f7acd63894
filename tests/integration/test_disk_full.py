"""Disk full: the SQLite database lives on a small tmpfs of its own (mounted by the test, which needs root or
CAP_SYS_ADMIN), filled up by the service's own writes and a file beside it. A store that no longer fits is
refused (507 or 503, never a 500) and changes nothing; what was acknowledged before is all still there, the
database passes its integrity check, and once space is freed the same app stores again."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from app import create_app
from config import Config
from repository import db

FILE_SYSTEM_BYTES = 6 * 1024 * 1024
BATCH = 1000
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture
def small_disk(tmp_path):
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={FILE_SYSTEM_BYTES}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        reason = f"cannot mount a small tmpfs here: {mounted.stderr.strip()}"
        pytest.fail(reason) if IN_CI else pytest.skip(reason)
    yield mount_point
    db.close_all()
    subprocess.run(["umount", "-l", str(mount_point)], check=True)


def fill(folder: Path, leave_bytes: int) -> Path:
    """A file that takes all the free space of `folder`'s file system but `leave_bytes`."""
    filler = folder / "filler"
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    with open(filler, "wb") as out:
        out.write(b"\0" * max(0, free - leave_bytes))
    return filler


def batch(number: int) -> dict:
    first = 1_700_000_000 + number * BATCH * 60
    return {
        "smartMeterId": f"full-{number % 3}",
        "electricityReadings": [{"time": first + i * 60, "reading": 1.0 + i % 7} for i in range(BATCH)],
    }


def test_a_full_disk_refuses_the_write_keeps_what_it_had_and_stores_again_once_space_is_freed(small_disk):
    path = small_disk / "joi.sqlite3"
    app = create_app(Config(database_url=f"sqlite:///{path}", sqlite_synchronous="FULL", auto_migrate=True))
    with app.test_client() as client:
        filler = fill(small_disk, leave_bytes=1024 * 1024)
        stored, refusals = [], []
        for number in range(200):  # 1 MiB holds far fewer than 200 batches of 1,000 readings
            response = client.post("/readings/store", json=batch(number))
            if response.status_code == 200:
                stored.append(number)
                continue
            refusals.append((number, response.status_code, response.headers.get("retry-after"), response.json()))
            if len(refusals) >= 3:
                break
        print(f"stored {len(stored)} batches of {BATCH}, then {[(n, s) for n, s, _r, _b in refusals]}")
        assert stored and len(refusals) == 3
        assert all(status in (503, 507) for _n, status, _r, _body in refusals)
        assert all("full" in body["detail"] for _n, _s, _r, body in refusals)

        for number in (stored[0], stored[-1]):  # what was acknowledged is there; the refused is not
            meter, first = batch(number)["smartMeterId"], batch(number)["electricityReadings"][0]["time"]
            readings = client.get(f"/readings/read/{meter}?from={first}&to={first + (BATCH - 1) * 60}").json()
            assert len(readings) == BATCH
        refused = batch(refusals[0][0])
        meter, first = refused["smartMeterId"], refused["electricityReadings"][0]["time"]
        assert client.get(f"/readings/read/{meter}?from={first}&to={first + (BATCH - 1) * 60}").json() == []

        filler.unlink()
        again = client.post("/readings/store", json=refused)
        assert again.status_code == 200
        assert len(client.get(f"/readings/read/{meter}?from={first}&to={first + (BATCH - 1) * 60}").json()) == BATCH
    db.close_all()
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_group_commit_batch_that_fills_the_disk_stores_none_of_it_and_tells_every_writer_so(small_disk):
    """SQLite rolls the whole transaction back when the disk fills up mid-transaction (a write larger than its
    page cache spills to the WAL before the commit): the writes of the batch before the failing
    one are gone with it, and none after it may run outside the transaction and commit alone while its
    writer hears an error."""
    from app import prepare_database
    from errors import storage_full
    from repository import readings as readings_repo

    prepare_database(Config(database_url=f"sqlite:///{small_disk / 'joi.sqlite3'}"))
    db.connect()
    filler = fill(small_disk, leave_bytes=256 * 1024)
    db.database.execute_sql("PRAGMA cache_size = 20")  # pages: the big write spills to the WAL mid-batch

    def small(meter: str):
        return lambda: readings_repo.store(meter, [(1_700_000_000, 1.0)], 3600)

    def big():
        readings_repo.store("big", [(1_700_000_000 + i * 60, 1.0) for i in range(50_000)], 3600)

    batch = [db._GroupedWrite(small("before")), db._GroupedWrite(big), db._GroupedWrite(small("after"))]
    db._group.execute_items(batch)

    assert [storage_full(item.error) for item in batch] == [True, True, True]
    assert readings_repo.MeterSample.select().count() == 0
    filler.unlink()
    db.grouped_write(small("after"))  # the same connection stores again once there is room
    assert readings_repo.MeterSample.select().count() == 1
