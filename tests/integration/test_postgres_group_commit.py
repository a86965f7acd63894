"""Stores to known meters on PostgreSQL that queue while another group runs share one transaction
(repository.readings._PostgresStoreGroup): each returns only once that transaction is committed, a commit
that fails fails every store of the group (503 at the API, nothing stored), and any other failure is
retried store by store so that only its own store fails."""

import threading
import time

import peewee
import psycopg2
import pytest

from domain.usage import Reading
from repository import readings as readings_repo

GAP = 3600
METERS = ("m0", "m1", "m2", "m3")
REFUSED = 666.0  # a reading the test's deferred trigger refuses at COMMIT


@pytest.fixture
def postgres(database_url):
    if database_url.startswith("sqlite"):
        pytest.skip("the PostgreSQL group commit (SQLite's is tests/integration/test_group_commit.py)")
    return database_url


@pytest.fixture
def known_meters(postgres, database):
    """METERS with a sample each: their keys are remembered, so their next stores are grouped."""
    for meter_id in METERS:
        readings_repo.store(meter_id, [Reading(0, 1.0)], GAP)
    return postgres


def connect(url):
    connection = psycopg2.connect(url.replace("postgresql+pool://", "postgresql://"))
    connection.autocommit = True
    return connection


def refuse_at_commit(url, errcode):
    """A deferred trigger: a sample of REFUSED fails its transaction's COMMIT with SQLSTATE `errcode`."""
    with connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            f" IF NEW.reading = {REFUSED} THEN RAISE EXCEPTION 'refused at commit' USING ERRCODE = '{errcode}';"
            " END IF; RETURN NULL; END $$;"
            " CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT OR UPDATE ON meter_samples"
            " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit()"
        )


class HeldMeterLock:
    """Another session holding a meter's store lock, as a writer in another process would."""

    def __init__(self, url, meter_id):
        self.connection = connect(url)
        with self.connection.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (readings_repo._METER_LOCK_CLASS, meter_id)
            )

    def release(self):
        self.connection.rollback()
        self.connection.close()


def run_grouped(url, stores, monkeypatch, store=None):
    """stores: {meter_id: reading at time 60}. m0's store leads first, alone, while m0's lock is held;
    the others queue meanwhile and form the next group. Returns (group sizes, {meter_id: result}) where a
    result is "stored" or the error raised, and whether each stored reading was visible to another session
    the moment its store returned."""
    sizes = group_sizes(monkeypatch)
    store = store or (lambda meter_id, reading: readings_repo.store(meter_id, [Reading(60, reading)], GAP))
    results, visible = {}, {}
    watcher = connect(url)

    def one(meter_id, reading):
        from repository import db

        db.connect()
        try:
            results[meter_id] = store(meter_id, reading)
            with watcher.cursor() as cursor:
                cursor.execute(
                    "SELECT reading FROM meter_samples JOIN meters USING (meter_key) WHERE meter_id = %s AND time = 60",
                    (meter_id,),
                )
                visible[meter_id] = cursor.fetchone()
        except Exception as error:  # noqa: BLE001 - the test inspects it
            results[meter_id] = error
        finally:
            db.close()

    lock = HeldMeterLock(url, "m0")
    threads = [threading.Thread(target=one, args=("m0", 2.0))]
    threads[0].start()
    wait_until(lambda: sizes == [1], "m0 leads alone")
    time.sleep(0.1)  # m0's group waits for the lock
    for meter_id, reading in stores.items():
        threads.append(threading.Thread(target=one, args=(meter_id, reading)))
        threads[-1].start()
    wait_until(lambda: len(readings_repo._store_group._queue) == len(stores), "the others queue")
    time.sleep(0.1)
    assert results == {}  # nobody answered while the first group has not committed
    lock.release()
    for thread in threads:
        thread.join(20)
    watcher.close()
    return sizes, results, visible


def group_sizes(monkeypatch):
    """The size of each group executed from now on, in order."""
    sizes = []
    execute = readings_repo._store_group._execute
    monkeypatch.setattr(
        readings_repo._store_group, "_execute", lambda batch: (sizes.append(len(batch)), execute(batch))[1]
    )
    return sizes


def wait_until(condition, what, seconds=10):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_stores_that_queue_share_one_transaction_and_each_returns_only_once_it_is_committed(known_meters, monkeypatch):
    sizes, results, visible = run_grouped(known_meters, {"m1": 3.0, "m2": 4.0, "m3": 5.0}, monkeypatch)

    assert sizes == [1, 3]
    assert results == dict.fromkeys(METERS)
    assert visible == {"m0": (2.0,), "m1": (3.0,), "m2": (4.0,), "m3": (5.0,)}
    for meter_id in METERS:
        assert readings_repo.rollup_differences(meter_id, GAP) == []
        assert readings_repo.hourly_energy(meter_id, readings_repo.JOI) != {}


def test_two_stores_to_one_meter_go_to_successive_groups_and_both_count(known_meters, monkeypatch):
    sizes = group_sizes(monkeypatch)
    lock = HeldMeterLock(known_meters, "m0")
    errors = []

    def store(meter_id, time_):
        from repository import db

        db.connect()
        try:
            readings_repo.store(meter_id, [Reading(time_, 2.0)], GAP)
        except Exception as error:  # noqa: BLE001 - the test inspects it
            errors.append(error)
        finally:
            db.close()

    threads = [threading.Thread(target=store, args=("m0", 60))]
    threads[0].start()
    wait_until(lambda: sizes == [1], "m0 leads alone")
    for meter_id, time_ in (("m1", 60), ("m1", 120), ("m2", 60)):
        threads.append(threading.Thread(target=store, args=(meter_id, time_)))
        threads[-1].start()
    wait_until(lambda: len(readings_repo._store_group._queue) == 3, "the others queue")
    lock.release()
    for thread in threads:
        thread.join(20)

    assert errors == []
    assert sizes == [1, 2, 1]  # m1's second store waited for the group after its first
    assert readings_repo.samples_between("m1") == [Reading(0, 1.0), Reading(60, 2.0), Reading(120, 2.0)]
    assert readings_repo.rollup_differences("m1", GAP) == []


def test_a_failing_commit_fails_every_store_of_its_group_and_stores_none_of_them(known_meters, monkeypatch):
    refuse_at_commit(known_meters, "53100")  # disk_full: the database cannot take the group

    sizes, results, _ = run_grouped(known_meters, {"m1": 3.0, "m2": REFUSED, "m3": 5.0}, monkeypatch)

    assert sizes == [1, 3]  # no store of the failed group was retried alone
    assert results["m0"] is None
    assert all(isinstance(results[meter_id], peewee.OperationalError) for meter_id in ("m1", "m2", "m3"))
    for meter_id in ("m1", "m2", "m3"):
        assert readings_repo.samples_between(meter_id) == [Reading(0, 1.0)]
        assert readings_repo.rollup_differences(meter_id, GAP) == []


def test_a_failing_commit_answers_503_to_every_request_of_its_group_never_a_2xx(postgres, app, monkeypatch):
    def post(meter_id, reading, time_=60):
        with app.test_client() as client:
            body = {"smartMeterId": meter_id, "electricityReadings": [{"time": time_, "reading": reading}]}
            return client.post("/readings/store", json=body).status_code

    assert [post(meter_id, 1.0, 0) for meter_id in METERS] == [200] * 4  # known to this app's process now
    refuse_at_commit(postgres, "53100")

    sizes, results, _ = run_grouped(postgres, {"m1": 3.0, "m2": REFUSED, "m3": 5.0}, monkeypatch, store=post)

    assert sizes == [1, 3]
    assert results == {"m0": 200, "m1": 503, "m2": 503, "m3": 503}


def test_a_store_whose_error_is_not_unavailability_fails_alone_and_the_rest_of_its_group_is_stored(
    known_meters, monkeypatch
):
    refuse_at_commit(known_meters, "P0001")  # a plain error of one store, not the database's state

    sizes, results, visible = run_grouped(known_meters, {"m1": 3.0, "m2": REFUSED, "m3": 5.0}, monkeypatch)

    assert sizes == [1, 3]
    assert results["m0"] is None and results["m1"] is None and results["m3"] is None
    assert isinstance(results["m2"], peewee.DatabaseError)
    assert visible["m1"] == (3.0,) and visible["m3"] == (5.0,)
    assert readings_repo.samples_between("m2") == [Reading(0, 1.0)]
    for meter_id in METERS:
        assert readings_repo.rollup_differences(meter_id, GAP) == []
