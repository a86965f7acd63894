"""Hour pages (repository/sample_pages.py): whatever the writers do, a window read from pages and rows is
exactly the stored samples, and the pages keep their two rules."""

import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.usage import HOUR, Reading
from repository import db, sample_pages
from repository import imports as imports_repo
from repository import readings as readings_repo

GAP = 3600
SPAN = 6 * HOUR  # samples fall in six hours, so writes keep meeting pages and marks
METERS = ["p-1", "p-2"]


@pytest.fixture
def sqlite_database(database):
    if not sample_pages.in_use():
        pytest.skip("hour pages are SQLite's")
    return database


def _empty_all() -> None:
    for table in ("sample_pages", "sample_page_marks", "meter_samples", "energy_rollups", "meters"):
        db.database.execute_sql(f"DELETE FROM {table}")
    readings_repo._key_cache.owner = None  # processes may remember keys because meters are never deleted


def _key(meter_id: str) -> int | None:
    return readings_repo._meter_key(meter_id)


def _rows(meter_id: str, start: int, end: int) -> list[tuple[int, float]]:
    return readings_repo._sample_rows(meter_id, start, end)


# An hour and a second in it, so that samples spread over the six hours rather than gather near 0.
times = st.builds(lambda hour, second: hour * HOUR + second, st.integers(0, SPAN // HOUR - 1), st.integers(0, HOUR - 1))
values = st.floats(min_value=0, max_value=50, allow_nan=False)
samples = st.dictionaries(times, values, min_size=1, max_size=40)
# Each write is followed, or not, by the paging run of the hour after its first `hours` (None: no run), so
# that writes keep meeting pages and marks.
paging = st.one_of(st.none(), st.integers(min_value=0, max_value=SPAN // HOUR + 1))
operations = st.lists(
    st.tuples(
        st.one_of(
            st.tuples(st.just("store"), st.sampled_from(METERS), samples),
            st.tuples(st.just("import"), st.sampled_from(METERS), samples),
            st.tuples(st.just("delete"), st.sampled_from(METERS), st.tuples(times, times)),
            st.tuples(st.just("delete open"), st.sampled_from(METERS), st.tuples(st.booleans(), times)),
            st.tuples(st.just("delete meter"), st.sampled_from(METERS), st.none()),
        ),
        paging,
    ),
    min_size=1,
    max_size=12,
)
windows = st.lists(st.tuples(times, st.integers(min_value=0, max_value=2 * HOUR)), min_size=1, max_size=4)


def _apply(operation: str, meter_id: str | None, argument) -> None:
    if operation == "store":
        readings_repo.store(meter_id, [Reading(t, v) for t, v in sorted(argument.items())], GAP)
    elif operation == "import":
        ordered = sorted(argument)
        with db.write_transaction():
            imports_repo.import_samples(meter_id, ordered, [argument[t] for t in ordered], GAP)
    elif operation == "delete":
        readings_repo.delete_samples(meter_id, min(argument), max(argument), GAP)
    elif operation == "delete open":
        from_start, at = argument
        readings_repo.delete_samples(meter_id, None if from_start else at, at if from_start else None, GAP)
    else:
        readings_repo.delete_meter(meter_id)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=operations, windows=windows)
def test_windows_read_through_pages_equal_the_stored_samples_whatever_was_written(sqlite_database, operations, windows):
    _empty_all()
    for (operation, meter_id, argument), hours in operations:
        _apply(operation, meter_id, argument)
        if hours is not None:
            sample_pages.page_sealed_hours(hours * HOUR + sample_pages.PAGE_DELAY_SECONDS)
        for meter in METERS:
            key = _key(meter)
            if key is None:
                continue
            assert sample_pages.differences(key) == []
            for start, length in windows:
                assert sample_pages.window(key, start, start + length) == _rows(meter, start, start + length)


def test_a_paged_day_is_read_from_its_pages_and_the_hours_after_them_from_rows(sqlite_database):
    day = [Reading(t, t / 1000) for t in range(0, 86_400 + 3 * HOUR, 60)]
    readings_repo.store("day", day, GAP)
    assert sample_pages.page_sealed_hours(86_400 + sample_pages.PAGE_DELAY_SECONDS) == 1440
    pages = db.database.execute_sql("SELECT COUNT(*) FROM sample_pages").fetchone()[0]
    assert pages == 24
    window = readings_repo.sample_pairs("day", 43_200, 86_400 + 2 * HOUR - 1)
    assert window == [(t, v) for t, v in day if 43_200 <= t < 86_400 + 2 * HOUR]


def test_a_write_to_a_paged_hour_drops_the_pages_from_it_on_and_they_are_paged_again(sqlite_database):
    readings_repo.store("m", [Reading(t, 1.0) for t in range(0, 4 * HOUR, 60)], GAP)
    sample_pages.page_sealed_hours(4 * HOUR + sample_pages.PAGE_DELAY_SECONDS)
    readings_repo.store("m", [Reading(HOUR + 30, 7.0)], GAP)
    assert sample_pages.differences(_key("m")) == []
    assert _page_hours() == [0]
    assert (HOUR + 30, 7.0) in readings_repo.sample_pairs("m", HOUR, 2 * HOUR)
    assert sample_pages.page_sealed_hours(4 * HOUR + sample_pages.PAGE_DELAY_SECONDS) == 3 * 60 + 1
    assert sample_pages.page_sealed_hours(4 * HOUR + sample_pages.PAGE_DELAY_SECONDS) == 0
    assert _page_hours() == [0, HOUR, 2 * HOUR, 3 * HOUR]


def test_an_append_past_the_mark_leaves_every_page_as_it_was(sqlite_database):
    readings_repo.store("m", [Reading(t, 1.0) for t in range(0, 2 * HOUR, 60)], GAP)
    sample_pages.page_sealed_hours(2 * HOUR + sample_pages.PAGE_DELAY_SECONDS)
    readings_repo.store("m", [Reading(2 * HOUR + 60 * n, 3.0) for n in range(5)], GAP)
    assert _page_hours() == [0, HOUR]
    assert sample_pages.differences(_key("m")) == []


def _page_hours() -> list[int]:
    return [hour for (hour,) in db.database.execute_sql("SELECT hour_start FROM sample_pages ORDER BY 1")]


def test_paging_goes_in_transactions_of_bounded_size_and_reaches_the_end(sqlite_database, monkeypatch):
    monkeypatch.setattr(sample_pages, "ROWS_PER_PAGING_TRANSACTION", 3601)
    readings_repo.store("m", [Reading(t, 2.0) for t in range(0, 5 * HOUR, 1)], GAP)
    assert sample_pages.page_sealed_hours(5 * HOUR + sample_pages.PAGE_DELAY_SECONDS) == 5 * HOUR
    assert sample_pages.differences(_key("m")) == []
    assert db.database.execute_sql("SELECT COUNT(*) FROM sample_pages").fetchone()[0] == 5


def test_an_hour_still_under_way_is_not_paged(sqlite_database):
    readings_repo.store("m", [Reading(t, 2.0) for t in range(0, HOUR + 600, 60)], GAP)
    sample_pages.page_sealed_hours(HOUR + sample_pages.PAGE_DELAY_SECONDS - 1)
    assert db.database.execute_sql("SELECT COUNT(*) FROM sample_pages").fetchone()[0] == 0
    sample_pages.page_sealed_hours(HOUR + sample_pages.PAGE_DELAY_SECONDS)
    assert db.database.execute_sql("SELECT hour_start FROM sample_pages").fetchall() == [(0,)]


def test_pages_round_trip_every_float_and_time_exactly():
    times = [-(2**62), -1, 0, 1, 2**62]
    readings = [0.1, -0.0, 1e-310, 1.7976931348623157e308, 123456789.123456789]
    assert [list(column) for column in sample_pages.decode(*sample_pages.encode(times, readings))] == [
        times,
        readings,
    ]


def test_verify_statistics_reports_a_page_that_differs_and_fix_drops_it(sqlite_database, config, tmp_path):
    readings_repo.store("m", [Reading(t, 1.0) for t in range(0, 3 * HOUR, 60)], GAP)
    sample_pages.page_sealed_hours(3 * HOUR + sample_pages.PAGE_DELAY_SECONDS)
    wrong = sample_pages.encode([0], [5.0])
    db.database.execute_sql("UPDATE sample_pages SET times = ?, readings = ? WHERE hour_start = 0", wrong)
    env = {"DATABASE_URL": config.database_url, "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "src/cli.py", "verify-statistics"]
    found = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert found.returncode == 1
    assert "m (hour pages): 1 differences" in found.stdout
    fixed = subprocess.run([*command, "--fix"], capture_output=True, text=True, env=env, check=False)
    assert fixed.returncode == 0
    assert subprocess.run(command, capture_output=True, text=True, env=env, check=False).returncode == 0
    assert readings_repo.sample_pairs("m", 0, HOUR - 1) == [(t, 1.0) for t in range(0, HOUR, 60)]


def test_the_queue_worker_pages_past_hours_every_minute(sqlite_database):
    import time

    import tasks

    assert any(job.name == "page_sealed_hours" and job.seconds == 60 for job in tasks.periodic_jobs())
    two_hours_ago = int(time.time()) // HOUR * HOUR - 2 * HOUR
    readings_repo.store("m", [Reading(two_hours_ago + t, 1.0) for t in range(0, HOUR, 60)], GAP)
    tasks.page_sealed_hours.call_local()
    assert db.database.execute_sql("SELECT hour_start FROM sample_pages").fetchall() == [(two_hours_ago,)]
