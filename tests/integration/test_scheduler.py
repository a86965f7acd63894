"""The lease scheduler in-process (fake monotonic clocks, real leases), and huey's immediate mode."""

import time

import pytest

import tasks
from repository import leases
from tasks import PeriodicJob, Scheduler


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def jobs(runs: list[str]) -> list[PeriodicJob]:
    return [
        PeriodicJob("fast", 2, lambda: runs.append("fast")),
        PeriodicJob("slow", 5, lambda: runs.append("slow")),
    ]


def test_only_the_lease_holder_enqueues_and_each_job_runs_at_its_interval(database):
    clock, runs_a, runs_b = Clock(), [], []
    a = Scheduler(jobs(runs_a), "a", lease_seconds=30, clock=clock)
    b = Scheduler(jobs(runs_b), "b", lease_seconds=30, clock=clock)
    for _ in range(21):  # 0 … 10 seconds in half seconds
        a.tick()
        b.tick()
        clock.now += 0.5
    assert runs_b == []
    assert runs_a.count("fast") == 6  # at 0, 2, 4, 6, 8, 10
    assert runs_a.count("slow") == 3  # at 0, 5, 10


def test_missed_intervals_give_one_run_not_a_burst(database):
    clock, runs = Clock(), []
    scheduler = Scheduler(jobs(runs), "a", lease_seconds=600, clock=clock)
    scheduler.tick()
    clock.now += 60
    scheduler.tick()
    assert runs.count("fast") == 2


def test_another_scheduler_takes_over_when_the_holder_stops_renewing(database):
    clock, runs_a, runs_b = Clock(), [], []
    a = Scheduler(jobs(runs_a), "a", lease_seconds=1, clock=clock)
    b = Scheduler(jobs(runs_b), "b", lease_seconds=1, clock=clock)
    a.tick()
    b.tick()
    assert runs_a and not runs_b
    time.sleep(1.1)  # a died: its lease expires in the database
    clock.now += 1
    assert a.holds_lease() is False  # a stops trusting its lease before it expires
    b.tick()
    assert runs_b == ["fast", "slow"]
    assert leases.holder_of(tasks.SCHEDULER_LEASE) == "b"


def test_a_released_lease_is_taken_by_the_next_candidate_at_once(database):
    clock, runs_b = Clock(), []
    a = Scheduler(jobs([]), "a", lease_seconds=60, clock=clock)
    b = Scheduler(jobs(runs_b), "b", lease_seconds=60, clock=clock)
    a.tick()
    a.release()
    b.tick()
    assert runs_b == ["fast", "slow"]


def test_a_job_needs_a_positive_interval():
    with pytest.raises(ValueError):
        tasks.every(0, lambda: None)


def test_tasks_run_in_process_in_immediate_mode(tmp_path):
    from tests.support.queue_jobs import write_marker

    tasks.huey.immediate = True
    try:
        write_marker(str(tmp_path / "marker"), "ran")
    finally:
        tasks.huey.immediate = False
    assert (tmp_path / "marker").read_text() == "ran"
