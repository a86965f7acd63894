"""The poll_round task end to end: SilesiaSolar hosts in the database, simulated meters on 127.0.0.1,
samples and poll records stored; in this process, then in real worker processes."""

from __future__ import annotations

import dataclasses
import time

import pytest

import tasks
from repository import modbus as modbus_repo
from repository import silesia as silesia_repo
from tests.support import modbus_simulator as sim
from tests.support import silesia_sites
from tests.support.workers import Worker, flush_queue, queue_settings

SDM630_MEASUREMENTS = ["voltage_ac", "current", "active_power", "frequency", "active_energy_consumed"]


@pytest.fixture(scope="module")
def gateway():
    with sim.sdm630_gateway() as running:
        yield running


@pytest.fixture
def quick_settings(monkeypatch):
    monkeypatch.setattr(
        tasks, "settings", dataclasses.replace(tasks.settings, modbus_poll_seconds=2, modbus_timeout_seconds=1)
    )


def latest(host_id: int) -> dict[str, float]:
    found = modbus_repo.samples(host_id, measurement=None, start_ms=None, end_ms=None, limit=10_000)
    return {sample.measurement: sample.value for sample in found}


def test_a_round_stores_exactly_the_values_of_each_register_block_and_layout(database, gateway, quick_settings):
    owner = silesia_sites.account()
    model = silesia_sites.custom_meter_model()
    measurements = ["voltage_ac", "holding_voltage", "little_float", "signed_int16", "scaled_int32"]
    host = silesia_sites.host(owner, gateway.port, meter=model, measurements=[*measurements, "missing_register"])
    tasks.poll_round.call_local()
    assert latest(host) == {
        "voltage_ac": 230.1,  # input register 0
        "holding_voltage": 111.5,  # holding register 0: another block, another value
        "little_float": 42.75,
        "signed_int16": -1234.0,
        "scaled_int32": 1000.0,
    }
    status = modbus_repo.poll_status(host)
    assert (status.last_outcome, status.measurements_read, status.measurements_failed) == ("partial", 5, 1)
    assert "missing_register" in status.last_error and "illegal data address" in status.last_error


def test_the_seeded_sdm630_map_reads_the_simulated_meter_and_each_unit_id_separately(database, gateway, quick_settings):
    owner = silesia_sites.account()
    first = silesia_sites.host(owner, gateway.port, unit_id=1, measurements=SDM630_MEASUREMENTS)
    second = silesia_sites.host(owner, gateway.port, unit_id=2, measurements=["voltage_ac"])
    tasks.poll_round.call_local()
    assert latest(first) == {
        "voltage_ac": 230.1,
        "current": 5.25,
        "active_power": 1234.5,
        "frequency": 50.0,
        "active_energy_consumed": 12345.625,
    }
    assert latest(second) == {"voltage_ac": 1230.1}
    assert modbus_repo.poll_status(first).last_outcome == "ok"


def test_a_refused_port_and_a_silent_host_are_recorded_and_the_other_hosts_are_stored(
    database, gateway, quick_settings
):
    owner = silesia_sites.account()
    with sim.silent_host() as silent:
        refused = silesia_sites.host(owner, sim.refused_port(), measurements=["voltage_ac"])
        quiet = silesia_sites.host(owner, silent.port, measurements=["voltage_ac", "current"])
        working = silesia_sites.host(owner, gateway.port, measurements=["voltage_ac"])
        tasks.poll_round.call_local()
    assert latest(working) == {"voltage_ac": 230.1}
    assert latest(refused) == {} and latest(quiet) == {}
    refused_status, quiet_status = modbus_repo.poll_status(refused), modbus_repo.poll_status(quiet)
    assert "refused" in refused_status.last_error and refused_status.consecutive_failures == 1
    assert "no answer" in quiet_status.last_error and quiet_status.measurements_failed == 2
    assert refused_status.last_success_at_ms is None and quiet_status.last_outcome == "failed"


def test_a_host_is_not_polled_twice_in_one_interval_and_new_assignments_count_from_the_next_round(
    database, gateway, quick_settings
):
    owner = silesia_sites.account()
    host = silesia_sites.host(owner, gateway.port, measurements=["voltage_ac"])
    tasks.poll_round.call_local()
    tasks.poll_round.call_local()  # a second round at once: the host is not due yet
    assert len(modbus_repo.samples(host, measurement=None, start_ms=None, end_ms=None, limit=100)) == 1
    silesia_repo.assign(host, None, ["frequency"])
    later = silesia_sites.host(owner, gateway.port, unit_id=2, measurements=["current"])
    time.sleep(2)
    tasks.poll_round.call_local()
    assert latest(host) == {"voltage_ac": 230.1, "frequency": 50.0}
    assert latest(later) == {"current": 1005.25}


def test_hosts_without_assigned_measurements_are_not_polled(database, gateway, quick_settings):
    owner = silesia_sites.account()
    idle = silesia_sites.host(owner, gateway.port)
    tasks.poll_round.call_local()
    assert modbus_repo.poll_status(idle) is None


# ---- real worker processes ----


@pytest.fixture
def worker_env(database, database_url, tmp_path):
    env = {
        "DATABASE_URL": database_url,
        **queue_settings(database_url, tmp_path),
        "MODBUS_POLL_SECONDS": "2",
        "MODBUS_TIMEOUT_SECONDS": "1",
        "SCHEDULER_LEASE_SECONDS": "3",
    }
    flush_queue(env)
    yield env
    flush_queue(env)


def wait_for(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def sample_times(host_id: int) -> list[int]:
    found = modbus_repo.samples(host_id, measurement="voltage_ac", start_ms=None, end_ms=None, limit=10_000)
    return [sample.time_ms for sample in found]


def test_a_host_added_while_the_worker_runs_is_polled_without_a_restart(worker_env, gateway, tmp_path):
    owner = silesia_sites.account()
    first = silesia_sites.host(owner, gateway.port, measurements=["voltage_ac"])
    worker = Worker(worker_env, tmp_path / "worker.log")
    try:
        wait_for(lambda: sample_times(first))
        added = silesia_sites.host(owner, gateway.port, unit_id=2, measurements=["voltage_ac"])
        wait_for(lambda: sample_times(added))
        assert latest(added) == {"voltage_ac": 1230.1}
        assert modbus_repo.poll_status(added).last_outcome == "ok"
    finally:
        worker.stop()


def test_two_worker_processes_poll_each_host_once_per_interval(worker_env, gateway, tmp_path):
    owner = silesia_sites.account()
    hosts = [silesia_sites.host(owner, gateway.port, unit_id=unit, measurements=["voltage_ac"]) for unit in (1, 2)]
    workers = [Worker(worker_env, tmp_path / f"worker-{n}.log") for n in range(2)]
    try:
        wait_for(lambda: all(sample_times(host) for host in hosts))
        start = time.time() * 1000
        time.sleep(8.5)
        for host in hosts:
            window = [at for at in sample_times(host) if start <= at < start + 8_000]
            # One round every 2 s: about 4 polls in 8 s; two pollers would make about 8.
            assert 3 <= len(window) <= 5, window
            gaps = [later - earlier for earlier, later in zip(window, window[1:], strict=False)]
            assert all(gap >= 1_000 for gap in gaps), gaps
    finally:
        for worker in workers:
            worker.stop()
