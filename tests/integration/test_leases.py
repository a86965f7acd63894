import threading
from datetime import timedelta

from repository import db, leases
from repository.leases import _utcnow


def test_a_free_lease_is_taken_and_a_held_one_is_refused(database):
    assert leases.try_acquire("scheduler", "a", 10)
    assert not leases.try_acquire("scheduler", "b", 10)
    assert leases.holder_of("scheduler") == "a"


def test_the_holder_renews_its_lease(database):
    now = _utcnow()
    assert leases.try_acquire("scheduler", "a", 10, now=now)
    assert leases.try_acquire("scheduler", "a", 10, now=now + timedelta(seconds=8))
    assert not leases.try_acquire("scheduler", "b", 10, now=now + timedelta(seconds=15))


def test_another_holder_takes_an_expired_lease(database):
    now = _utcnow()
    assert leases.try_acquire("scheduler", "a", 10, now=now)
    assert leases.try_acquire("scheduler", "b", 10, now=now + timedelta(seconds=10))
    assert not leases.try_acquire("scheduler", "a", 10, now=now + timedelta(seconds=11))


def test_only_the_holder_can_release_and_then_the_lease_is_free_at_once(database):
    assert leases.try_acquire("scheduler", "a", 60)
    assert not leases.release("scheduler", "b")
    assert not leases.try_acquire("scheduler", "b", 60)
    assert leases.release("scheduler", "a")
    assert leases.try_acquire("scheduler", "b", 60)


def test_leases_of_different_names_are_independent(database):
    assert leases.try_acquire("one", "a", 60)
    assert leases.try_acquire("two", "b", 60)


def test_of_many_concurrent_contenders_exactly_one_gets_the_lease(database):
    winners = []
    start = threading.Barrier(8)

    def contend(holder: str) -> None:
        db.connect()
        try:
            start.wait()
            if leases.try_acquire("contested", holder, 60):
                winners.append(holder)
        finally:
            db.close()

    threads = [threading.Thread(target=contend, args=(f"holder-{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    assert leases.holder_of("contested") == winners[0]
