"""Database outage: a PostgreSQL of the test's own is crashed (`pg_ctl stop -m immediate`) in the middle of
mixed load and started again. Meanwhile every request is answered 503 with Retry-After, none 500 and none
slower than ANSWER_BOUND_SECONDS (the load's client gives up then and counts it as no answer, which fails);
once the database is back the same service processes answer 2xx again, without a restart, and every write
answered 2xx before, during or after the outage is there.

tests/api/test_unavailable_database.py covers a database that is never reachable.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from repository import db
from tests.support import ledger
from tests.support.load import Load
from tests.support.postgres_server import PostgresServer, postgres_bin
from tests.support.service import ROOT, Service

# A request may wait POOL_WAIT_SECONDS (10) for a pooled connection before its 503; 5 s more is the bound.
ANSWER_BOUND_SECONDS = 15
DSMR_KEY = "outage-test-key"
KEY = {"X-AUTHKEY": DSMR_KEY}
UNAVAILABLE_ANSWERS = 30  # 503s to see before the database comes back
READS = (
    "/health",
    "/readings/read/load-2-0",
    "/price-plans/compare-all/load-2-0",
    "/export",
    "/oms/devices",
    "/api/v1/mailings/",
    "/api/v1/clients/",
    "/api/v2/datalogger/dsmrreading?limit=1",
)


@pytest.fixture(scope="module")
def postgres():
    if postgres_bin() is None:
        pytest.fail("PostgreSQL's server binaries (initdb, pg_ctl) are needed for the outage test")
    server = PostgresServer()
    server.start()
    yield server
    server.remove()


def invalid(ack) -> bool:
    return ack.kind == "joi" and any(reading < 0 for _time, reading in ack.key[1])


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {seconds} s")
        time.sleep(0.05)


def test_a_database_outage_mid_load_is_503_with_retry_after_and_the_service_recovers_by_itself(postgres, tmp_path):
    env = {
        "DATABASE_URL": postgres.url,
        "AUTO_MIGRATE": "0",
        "DEMO": "0",
        "DSMR_API_ENABLED": "1",
        "DSMR_API_KEY": DSMR_KEY,
        "REDIS_URL": "",
        "QUEUE_SQLITE_PATH": str(tmp_path / "huey.sqlite3"),
        "MAILING_DISPATCH_SECONDS": "0.5",
        "SCHEDULER_LEASE_SECONDS": "2",
    }
    migrate = [sys.executable, str(ROOT / "src" / "cli.py"), "migrate"]
    migrated = subprocess.run(migrate, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    assert migrated.returncode == 0, migrated.stderr
    service = Service(env, tmp_path / "service.log", workers=1).start()
    serving = service.process.pid
    load = Load(service.url, dsmr_key=DSMR_KEY, threads=4, seed=2, timeout=ANSWER_BOUND_SECONDS).start()
    try:
        load.wait_for_acknowledged(40, seconds=60)
        stopped_at = time.monotonic()
        postgres.stop("immediate")
        down_at = time.monotonic()

        def unavailable_answers() -> int:
            return sum(1 for ack in list(load.acks) if ack.sent_at > down_at and ack.status == 503)

        wait_for(lambda: unavailable_answers() >= UNAVAILABLE_ANSWERS, 60, "no 503s came")
        reads = {path: httpx.get(f"{service.url}{path}", headers=KEY, timeout=ANSWER_BOUND_SECONDS) for path in READS}
        restart_at = time.monotonic()
        postgres.start()
        back_at = time.monotonic()
        load.wait_for_acknowledged(40, seconds=60)  # the same processes answer 2xx again
        survived = service.process.poll() is None
    finally:
        load.stop()
        service.stop()

    acks = load.acks
    outage = [ack for ack in acks if ack.sent_at > down_at and ack.sent_at + ack.seconds < restart_at]
    after = [ack for ack in acks if ack.sent_at > back_at]
    first_2xx = min(ack.sent_at for ack in after if ack.acknowledged) - back_at
    print(
        f"outage {back_at - stopped_at:.1f} s; answers during it: {ledger.summary(outage)}; first 2xx "
        f"{first_2xx:.1f} s after the database was back; answers after: {ledger.summary(after)}"
    )
    refused = [ack for ack in outage if invalid(ack)]  # checked before the database is asked: 400 still
    assert refused and all(ack.status == 400 for ack in refused)
    assert all(ack.status == 503 and ack.retry_after for ack in outage if not invalid(ack))
    assert {path: (read.status_code, "retry-after" in read.headers) for path, read in reads.items()} == {
        path: (503, True) for path in READS
    }
    assert all(ack.status is not None for ack in acks)  # no hang past the bound, no dropped connection
    assert not [ack.status for ack in acks if ack.status >= 500 and ack.status != 503]
    assert survived and service.starts == 1 and serving == service.process.pid  # recovered without a restart
    assert any(ack.acknowledged and ack.sent_at > back_at for ack in acks)

    db.open_database(postgres.url)
    db.connect()
    try:
        assert ledger.problems(acks) == []  # nothing answered 2xx was lost in the crash of the database
    finally:
        db.close_all()
