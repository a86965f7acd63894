"""Modbus samples, buckets and poll records on SQLite and PostgreSQL."""

import pytest

from domain.modbus import HostOutcome
from modbus_reader import Sample
from repository import modbus as repo
from repository import silesia as silesia_repo
from tests.support import silesia_sites

T0 = 1_796_100_000_000  # 2026-12-01T05:20:00Z, a whole minute
MINUTE = 60_000
HOUR = 3_600_000


@pytest.fixture
def database(database):
    """Hosts 1, 2 and 3 exist (samples and poll records belong to SilesiaSolar hosts)."""
    owner = silesia_sites.account()
    assert silesia_sites.many_hosts(owner, [(1502, 1), (1502, 2), (1502, 3)]) == [1, 2, 3]
    return database


def volt(time_ms, value, host=1):
    return Sample(host, "voltage_ac", 1, "V", time_ms, value)


def energy(time_ms, value, host=1, unit="kWh"):
    return Sample(host, "active_energy_consumed", 2, unit, time_ms, value)


def stored(host=1, measurement=None, start_ms=None, end_ms=None):
    found = repo.samples(host, measurement=measurement, start_ms=start_ms, end_ms=end_ms, limit=1000)
    return [(item.time_ms, item.measurement, item.value, item.unit) for item in found]


def test_samples_keep_their_milliseconds_and_do_not_overwrite_each_other(database):
    repo.store_round([volt(T0 + 1, 230.0), volt(T0 + 2, 231.0), energy(T0 + 1, 10.5)], [])
    assert stored() == [
        (T0 + 1, "voltage_ac", 230.0, "V"),
        (T0 + 1, "active_energy_consumed", 10.5, "kWh"),
        (T0 + 2, "voltage_ac", 231.0, "V"),
    ]


def test_a_sample_stored_twice_at_the_same_millisecond_keeps_the_later_value(database):
    repo.store_round([volt(T0, 230.0)], [])
    repo.store_round([volt(T0, 232.5)], [])
    assert stored() == [(T0, "voltage_ac", 232.5, "V")]


def test_samples_filter_by_measurement_and_inclusive_window_and_page_by_cursor(database):
    repo.store_round([volt(T0 + index * MINUTE, 230.0 + index) for index in range(10)], [])
    repo.store_round([energy(T0 + index * MINUTE, float(index)) for index in range(10)], [])
    window = stored(measurement="voltage_ac", start_ms=T0 + MINUTE, end_ms=T0 + 3 * MINUTE)
    assert [value for _, _, value, _ in window] == [231.0, 232.0, 233.0]
    first = repo.samples(1, measurement=None, start_ms=None, end_ms=None, limit=3)
    rest = repo.samples(
        1, measurement=None, start_ms=None, end_ms=None, limit=100, after=(first[-1].time_ms, first[-1].series_id)
    )
    assert len(first) == 3 and len(rest) == 17
    assert [(item.time_ms, item.series_id) for item in first + rest] == sorted(
        (item.time_ms, item.series_id) for item in first + rest
    )
    assert stored(host=2) == []
    assert stored(measurement="frequency") == []


def test_minute_buckets_give_min_mean_max_of_instantaneous_values(database):
    repo.store_round(
        [volt(T0 + 1_000, 229.0), volt(T0 + 30_000, 231.0), volt(T0 + 59_999, 233.0), volt(T0 + MINUTE, 240.0)], []
    )
    found = repo.buckets(1, measurement=None, bucket_ms=MINUTE, start_ms=None, end_ms=None, limit=100)
    assert [(item.start_ms, item.samples, item.minimum, item.mean, item.maximum, item.increase) for item in found] == [
        (T0, 3, 229.0, 231.0, 233.0, None),
        (T0 + MINUTE, 1, 240.0, 240.0, 240.0, None),
    ]


def test_hour_buckets_give_a_counters_increase_including_the_rise_from_the_sample_before_the_window(database):
    # 05:10 100 kWh, 05:30 101.5, 06:10 103, 06:20 103.25; the window starts at 05:20.
    readings = [(T0 - 10 * MINUTE, 100.0), (T0 + 10 * MINUTE, 101.5), (T0 + 50 * MINUTE, 103.0), (T0 + HOUR, 103.25)]
    repo.store_round([energy(time, value) for time, value in readings], [])
    hour = (T0 // HOUR) * HOUR
    found = repo.buckets(1, measurement="active_energy_consumed", bucket_ms=HOUR, start_ms=T0, end_ms=None, limit=100)
    assert [(item.start_ms, item.increase, item.samples) for item in found] == [
        (hour, 1.5, 1),  # 100 (before the window) -> 101.5
        (hour + HOUR, 1.75, 2),  # -> 103 -> 103.25
    ]


def test_a_counter_that_falls_is_a_reset_and_adds_nothing(database):
    repo.store_round(
        [energy(T0, 500.0), energy(T0 + MINUTE, 501.0), energy(T0 + 2 * MINUTE, 2.0), energy(T0 + 3 * MINUTE, 3.0)], []
    )
    (day,) = repo.buckets(1, measurement=None, bucket_ms=86_400_000, start_ms=None, end_ms=None, limit=10)
    assert day.increase == 2.0


def test_bucket_pages_follow_the_cursor_across_series(database):
    repo.store_round(
        [volt(T0 + index * MINUTE, 1.0) for index in range(3)]
        + [energy(T0 + index * MINUTE, float(index)) for index in range(3)],
        [],
    )
    everything = repo.buckets(1, measurement=None, bucket_ms=MINUTE, start_ms=None, end_ms=None, limit=100)
    pages, after = [], None
    while True:
        page = repo.buckets(1, measurement=None, bucket_ms=MINUTE, start_ms=None, end_ms=None, limit=2, after=after)
        if not page:
            break
        pages += page
        after = (page[-1].start_ms, page[-1].series_id)
    assert pages == everything and len(everything) == 6


def test_counter_slices_convert_to_kwh_and_skip_rises_across_long_gaps(database):
    repo.store_round(
        [
            energy(T0, 1_000.0, unit="Wh"),
            energy(T0 + MINUTE, 3_000.0, unit="Wh"),
            energy(T0 + 3 * HOUR, 9_000.0, unit="Wh"),
        ],
        [],
    )
    slices, unit = repo.counter_slices(
        1, "active_energy_consumed", start_ms=T0, end_ms=T0 + 4 * HOUR, slice_ms=900_000, max_gap_ms=HOUR
    )
    assert (slices, unit) == ([(T0 // 900_000 * 900_000, 2.0)], {"Wh"})
    assert repo.counter_period(1, "active_energy_consumed") == (T0, T0 + 3 * HOUR)
    assert repo.counter_period(2, "active_energy_consumed") is None


def test_the_poll_record_follows_each_round(database):
    repo.claim_due_hosts([1], now_ms=T0, interval_ms=MINUTE, lease_ms=MINUTE)
    repo.store_round([volt(T0, 230.0)], [HostOutcome(1, T0, 1, 0)])
    repo.store_round(
        [], [HostOutcome(1, T0 + MINUTE, 0, 1, ("cannot connect to 127.0.0.1:502 (refused or unreachable)",))]
    )
    status = repo.poll_status(1)
    assert (status.last_poll_at_ms, status.last_success_at_ms, status.consecutive_failures) == (T0 + MINUTE, T0, 1)
    assert status.last_error.startswith("cannot connect") and status.last_outcome == "failed"
    assert repo.poll_status(2) is None


def test_a_claimed_host_is_not_claimed_again_until_its_round_stores_or_the_claim_expires(database):
    assert repo.claim_due_hosts([1, 2], now_ms=T0, interval_ms=MINUTE, lease_ms=5 * MINUTE) == {1, 2}
    # The next interval's round while the first still runs: the hosts are due but claimed.
    assert repo.claim_due_hosts([1, 2, 3], now_ms=T0 + MINUTE, interval_ms=MINUTE, lease_ms=5 * MINUTE) == {3}
    repo.store_round([], [HostOutcome(1, T0, 1, 0)])
    assert repo.claim_due_hosts([1, 2], now_ms=T0 + MINUTE, interval_ms=MINUTE, lease_ms=5 * MINUTE) == {1}
    assert repo.claim_due_hosts([2], now_ms=T0 + 6 * MINUTE, interval_ms=MINUTE, lease_ms=5 * MINUTE) == {2}


def test_a_host_is_polled_once_per_interval_however_many_rounds_start(database):
    assert repo.claim_due_hosts([1], now_ms=T0, interval_ms=MINUTE, lease_ms=MINUTE) == {1}
    repo.store_round([], [HostOutcome(1, T0, 1, 0)])
    assert repo.claim_due_hosts([1], now_ms=T0 + 100, interval_ms=MINUTE, lease_ms=MINUTE) == set()
    assert repo.claim_due_hosts([1], now_ms=T0 + MINUTE - 50, interval_ms=MINUTE, lease_ms=MINUTE) == {1}


def test_deleting_a_host_deletes_its_samples_and_record(database):
    repo.store_round([volt(T0, 230.0), volt(T0, 1.0, host=2)], [HostOutcome(1, T0, 1, 0)])
    silesia_repo.delete_host(1)
    assert stored() == [] and repo.poll_status(1) is None
    assert stored(host=2) == [(T0, "voltage_ac", 1.0, "V")]


def test_a_round_over_many_hosts_is_stored_in_one_go(database):
    count = 1_200
    silesia_sites.many_hosts(silesia_sites.account(), [(2000 + host, 1) for host in range(4, count)])
    repo.claim_due_hosts(range(count), now_ms=T0, interval_ms=MINUTE, lease_ms=MINUTE)
    repo.store_round(
        [volt(T0, float(host), host=host) for host in range(count)],
        [HostOutcome(host, T0, 1, 0) for host in range(count)],
    )
    assert stored(host=count - 1) == [(T0, "voltage_ac", float(count - 1), "V")]
    assert repo.poll_status(count - 1).last_outcome == "ok"


def test_a_host_deleted_while_its_round_ran_is_left_out_and_the_others_are_stored(database):
    repo.claim_due_hosts([1, 2], now_ms=T0, interval_ms=MINUTE, lease_ms=MINUTE)
    silesia_repo.delete_host(2)
    repo.store_round([volt(T0, 230.0), volt(T0, 1.0, host=2)], [HostOutcome(1, T0, 1, 0), HostOutcome(2, T0, 1, 0)])
    assert stored() == [(T0, "voltage_ac", 230.0, "V")]
    assert repo.poll_status(1).last_outcome == "ok" and repo.poll_status(2) is None


def test_hosts_that_do_not_exist_are_never_claimed(database):
    assert repo.claim_due_hosts([1, 99], now_ms=T0, interval_ms=MINUTE, lease_ms=MINUTE) == {1}
