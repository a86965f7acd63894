"""`cli.py backup` while the service takes writes, then `cli.py restore` into an empty database: every
write acknowledged before the backup began is in the restored copy, whose statistics pass verification."""

from __future__ import annotations

import calendar
import os
import signal
import subprocess
import sys
import time
from urllib.parse import urlparse, urlunparse

import psycopg2
import pytest

from cli import main as cli_main
from cli_backup import BackupRefused, backup, restore
from repository import db
from repository.dsmr import ReadingRow
from repository.oms import DeviceRow, MessageRow
from repository.readings import Meter, MeterSample
from tests.integration.test_limits_serve import wait_up
from tests.integration.test_serve import ROOT, free_port, wait_exit
from tests.support.mixed_load import MixedLoad

DSMR_KEY = "backup-test-key-0123456789abcdef"
RATES = {"joi": 30, "dsmr": 10, "oms": 10}


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "src" / "cli.py"), *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url, "REDIS_URL": ""},
        capture_output=True,
        text=True,
        timeout=300,
    )


def empty_database_beside(database_url: str, tmp_path) -> str:
    """A new SQLite file, or TEST_DATABASE_URL's database with `_restore` appended, emptied."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'restored.sqlite3'}"
    parsed = urlparse(database_url)
    name = parsed.path.lstrip("/") + "_restore"
    admin = psycopg2.connect(urlunparse(parsed._replace(path="/postgres")), connect_timeout=5)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    url = urlunparse(parsed._replace(path=f"/{name}"))
    connection = psycopg2.connect(url, connect_timeout=5)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
    connection.close()
    return url


def stored_keys(database_url: str) -> dict[str, set]:
    db.open_database(database_url)
    db.connect()
    try:
        joi = {
            (row.meter_id, row.time)
            for row in MeterSample.select(Meter.meter_id, MeterSample.time)
            .join(Meter, on=(Meter.meter_key == MeterSample.meter_key))
            .objects()
        }
        dsmr = {row.timestamp for row in ReadingRow.select(ReadingRow.timestamp)}
        oms = {
            (row.identnr, calendar.timegm(row.message_time.timetuple()))
            for row in MessageRow.select(DeviceRow.identnr, MessageRow.message_time).join(DeviceRow).objects()
        }
    finally:
        db.close_all()
    return {"joi": joi, "dsmr": dsmr, "oms": oms}


def wait_for(condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the load did not get going"
        time.sleep(0.1)


def test_a_backup_taken_under_write_load_restores_every_acknowledged_write(database_url, tmp_path, monkeypatch, capsys):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "src" / "serve.py"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": "",
            "WORKER": "0",
            "ACCESS_LOG": "0",
            "DSMR_API_ENABLED": "1",
            "DSMR_API_KEY": DSMR_KEY,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    load = MixedLoad(f"http://127.0.0.1:{port}", rates=RATES, dsmr_key=DSMR_KEY, prefix="backup-")
    backup_path = tmp_path / ("joi.sqlite3" if database_url.startswith("sqlite") else "joi.pgdump")
    try:
        wait_up(port)
        load.start()
        wait_for(lambda: all(len(load.acknowledged(kind)) >= 10 for kind in RATES))
        began = time.monotonic()
        answered_before = len(load.answers)
        made = cli(database_url, "backup", str(backup_path))
        assert made.returncode == 0, made.stderr
        wait_for(lambda: len(load.answers) > answered_before + 10)  # the load went on through the backup
    finally:
        load.stop()
        server.send_signal(signal.SIGTERM)
        wait_exit(server)
    refused = [answer for answer in load.answers if answer.status // 100 != 2]
    assert refused == []
    acknowledged = {kind: load.acknowledged(kind, before=began) for kind in RATES}
    restored_url = empty_database_beside(database_url, tmp_path)
    monkeypatch.setenv("DATABASE_URL", restored_url)

    assert cli_main(["restore", str(backup_path)]) == 0

    restored = stored_keys(restored_url)
    for kind in RATES:
        assert acknowledged[kind] <= restored[kind], f"{kind}: {sorted(acknowledged[kind] - restored[kind])[:5]}"
    assert cli_main(["verify-statistics"]) == 0
    assert "statistics agree with a recomputation" in capsys.readouterr().out
    db.close_all()


def test_restore_refuses_a_database_that_is_not_empty_and_changes_nothing(database, config, tmp_path):
    backup_path = tmp_path / "copy"
    backup(config.database_url, backup_path)
    tables_before = database.get_tables()

    with pytest.raises(BackupRefused, match="not empty .* nothing was changed"):
        restore(config.database_url, backup_path)

    assert database.get_tables() == tables_before
    assert Meter.select().count() == 0


def test_restore_refuses_a_backup_of_the_other_kind_of_database(tmp_path):
    not_a_dump = tmp_path / "notes.txt"
    not_a_dump.write_text("hello")

    with pytest.raises(BackupRefused, match="is not a SQLite backup"):
        restore(f"sqlite:///{tmp_path / 'new.sqlite3'}", not_a_dump)

    assert not (tmp_path / "new.sqlite3").exists()
