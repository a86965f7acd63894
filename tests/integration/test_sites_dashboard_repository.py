"""The sites dashboard's queries on SQLite and PostgreSQL: sites per owner, chart specs, bucketed series."""

import pytest

from domain.errors import NotFound
from domain.modbus import HostOutcome
from domain.sites_dashboard import MINUTE, Window, line_bucket_ms
from modbus_reader import Sample
from repository import modbus as modbus_repo
from repository import sites_dashboard as repo
from tests.support import silesia_sites

T0 = 1_796_102_400_000  # 2026-12-01T05:20:00Z
WEEK = 7 * 86_400_000


@pytest.fixture
def sites(database):
    owner, other = silesia_sites.account(), silesia_sites.account()
    site = silesia_sites.location(owner)
    first = silesia_sites.host(owner, 1502, site=site, measurements=["active_power", "active_energy_consumed"])
    second = silesia_sites.host(owner, 1503, site=site)
    empty_site = silesia_sites.location(owner)
    theirs = silesia_sites.host(other, 1504, measurements=["voltage_ac"])
    return dict(owner=owner, other=other, site=site, empty_site=empty_site, hosts=(first, second), theirs=theirs)


def test_a_user_sees_their_own_sites_with_hosts_measurements_and_poll_records(sites):
    first, second = sites["hosts"]
    modbus_repo.store_round([], [HostOutcome(first, T0, 0, 2, ("refused",))])
    found = repo.sites(sites["owner"].id)
    assert [(site.location.id, [summary.host.id for summary in site.hosts]) for site in found] == [
        (sites["site"], [first, second]),
        (sites["empty_site"], []),
    ]
    summary = found[0].hosts[0]
    assert summary.meter_name == "sdm630"
    assert summary.measurements == ("active_power", "active_energy_consumed")
    assert (summary.status.consecutive_failures, summary.status.failing_since_ms) == (1, T0)
    assert found[0].hosts[1].status is None


def test_an_admin_sees_everyones_sites(sites):
    owners = {site.owner_name for site in repo.sites(None)}
    assert len(owners) == 2
    assert sites["theirs"] in {summary.host.id for site in repo.sites(None) for summary in site.hosts}


def test_another_users_host_is_missing_but_an_admin_finds_it(sites):
    with pytest.raises(NotFound):
        repo.host(sites["theirs"], sites["owner"].id)
    summary, location = repo.host(sites["theirs"], None)
    assert (summary.host.id, summary.measurements, location.user) == (
        sites["theirs"],
        ("voltage_ac",),
        sites["other"].id,
    )


def test_chart_specs_follow_the_assignments_with_their_register_units(sites):
    specs = repo.chart_specs(sites["hosts"][0])
    assert [(spec.measurement, spec.measurement_type) for spec in specs] == [
        ("active_power", 1),
        ("active_energy_consumed", 2),
    ]
    assert all(spec.unit for spec in specs)


def test_a_week_of_minute_samples_comes_back_as_at_most_2000_buckets_per_line(sites):
    host = sites["hosts"][0]
    minutes = WEEK // MINUTE
    samples = [
        Sample(host, "active_power", 1, "W", T0 + index * MINUTE, float(index % 100)) for index in range(minutes)
    ]
    samples += [
        Sample(host, "active_energy_consumed", 2, "kWh", T0 + index * MINUTE, index / 60) for index in range(minutes)
    ]
    modbus_repo.store_round(samples, [])
    assert repo.latest_sample_ms(host) == T0 + (minutes - 1) * MINUTE
    window = Window(T0, T0 + WEEK)
    width = line_bucket_ms(window)
    power = repo.series_buckets(host, "active_power", width, window)
    assert len(power) <= 2000 and {bucket.samples for bucket in power} <= {width // MINUTE}
    hours = repo.series_buckets(host, "active_energy_consumed", 3_600_000, window)
    assert len(hours) == 169  # from 05:20 to 05:19 a week later: 169 UTC hours
    assert sum(bucket.increase for bucket in hours) == pytest.approx((minutes - 1) / 60)
    assert repo.has_counter_samples(host, "active_energy_consumed", window)
    assert not repo.has_counter_samples(host, "active_energy_consumed", Window(T0 - WEEK, T0 - 1))
    assert repo.series_buckets(host, "voltage_ac", width, window) == []
