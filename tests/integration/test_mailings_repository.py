"""Messages made, claimed, recorded and expired in the database (SQLite and PostgreSQL)."""

import threading
from datetime import UTC, datetime, timedelta

from domain.mailings import Client, Mailing
from repository import db
from repository import mailings as repo


def now() -> datetime:
    return datetime.now(UTC)


def running_mailing(**changes) -> Mailing:
    fields = dict(start_time=now() - timedelta(minutes=1), end_time=now() + timedelta(hours=1), text="hi")
    return repo.create_mailing(Mailing(**{**fields, **changes}), now())


def clients(count: int, **fields) -> None:
    repo.create_clients(
        [Client(f"7{n:010d}", fields.get("operator_code", "900"), "UTC", fields.get("tag")) for n in range(count)]
    )


def test_messages_are_made_for_matching_clients_once_and_for_clients_who_come_later(database):
    clients(3, tag="VIP")
    repo.create_client(Client("79999999999", "900", "UTC", None))
    mailing = running_mailing(client_tag_filter="VIP")
    assert repo.make_messages(now()) == {mailing.id: 3}
    assert repo.make_messages(now()) == {}
    repo.create_client(Client("79999999998", "900", "UTC", "VIP"))
    assert repo.make_messages(now()) == {mailing.id: 1}


def test_no_messages_before_the_start_or_after_the_end(database):
    clients(2)
    running_mailing(start_time=now() + timedelta(minutes=5), end_time=now() + timedelta(hours=1))
    running_mailing(start_time=now() - timedelta(hours=2), end_time=now() - timedelta(hours=1))
    assert repo.make_messages(now()) == {}


def test_a_claimed_message_is_not_claimed_again_until_its_claim_expires(database):
    clients(3)
    running_mailing()
    repo.make_messages(now())
    first = repo.claim_due(now(), 2, claim_seconds=30)
    second = repo.claim_due(now(), 10, claim_seconds=30)
    assert len(first) == 2 and len(second) == 1
    assert {m.id for m in first}.isdisjoint({m.id for m in second})
    assert repo.claim_due(now(), 10, claim_seconds=30) == []
    later = repo.claim_due(now() + timedelta(seconds=31), 10, claim_seconds=30)
    assert len(later) == 3


def test_a_sent_message_is_recorded_once_and_never_claimed_again(database):
    clients(1)
    running_mailing()
    repo.make_messages(now())
    [message] = repo.claim_due(now(), 1, 30)
    assert repo.record_sent(message, message.client.phone, now(), now())
    assert not repo.record_sent(message, message.client.phone, now(), now())
    assert repo.claim_due(now() + timedelta(hours=0.5), 10, 30) == []
    assert repo.status_counts() == {"SENT": 1}


def test_a_worker_whose_claim_expired_cannot_record_over_the_new_claim(database):
    clients(1)
    running_mailing()
    repo.make_messages(now())
    [stale] = repo.claim_due(now(), 1, 30)
    [fresh] = repo.claim_due(now() + timedelta(seconds=31), 1, 30)
    assert not repo.record_failure(stale, stale.client.phone, now(), "late", now())
    assert repo.record_sent(fresh, fresh.client.phone, now(), now())
    [view], _ = repo.messages(fresh.mailing.id, 10, 0)
    assert view.status == "SENT" and view.attempts == 1


def test_a_failure_is_retried_at_its_time(database):
    clients(1)
    running_mailing()
    repo.make_messages(now())
    [message] = repo.claim_due(now(), 1, 30)
    assert repo.record_failure(message, message.client.phone, now(), "HTTP 500", now() + timedelta(seconds=60))
    assert repo.claim_due(now(), 1, 30) == []
    [again] = repo.claim_due(now() + timedelta(seconds=61), 1, 30)
    assert again.attempts == 1
    [view], _ = repo.messages(message.mailing.id, 10, 0)
    assert view.status == "FAILED" and view.last_error == "HTTP 500"


def test_unsent_messages_expire_at_end_time_but_not_while_a_live_claim_holds_them(database):
    clients(2)
    mailing = running_mailing(end_time=now() + timedelta(seconds=1))
    repo.make_messages(now())
    [claimed] = repo.claim_due(now(), 1, claim_seconds=60)
    after_end = now() + timedelta(seconds=2)
    assert repo.expire_messages(after_end) == {mailing.id: 1}
    assert repo.claim_due(after_end, 10, 60) == []  # an ended mailing's messages are never claimed
    assert repo.expire(claimed)
    assert repo.status_counts(mailing.id) == {"EXPIRED": 2}


def test_concurrent_claimers_never_get_the_same_message(database):
    clients(200)
    running_mailing()
    repo.make_messages(now())
    claimed: list[list[int]] = []
    start = threading.Barrier(4)

    def claimer():
        db.connect()
        try:
            start.wait()
            mine = []
            while batch := repo.claim_due(now(), 7, 60):
                mine.extend(m.id for m in batch)
            claimed.append(mine)
        finally:
            db.close()

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [message_id for mine in claimed for message_id in mine]
    assert len(every) == 200 and len(set(every)) == 200


def test_a_page_of_mailings_comes_newest_first_with_its_messages_counted_per_status(database):
    clients(3)
    older, newer = running_mailing(), running_mailing(client_operator_code_filter="901")
    repo.make_messages(now())
    claimed = repo.claim_due(now(), 1, 30)
    repo.record_sent(claimed[0], "70000000000", now(), now())
    page, total = repo.mailings_with_counts(10, 0)
    assert total == 2
    assert [(mailing.id, counts) for mailing, counts in page] == [
        (newer.id, {}),
        (older.id, {"PENDING": 2, "SENT": 1}),
    ]
    assert [mailing.id for mailing, _ in repo.mailings_with_counts(1, 1)[0]] == [older.id]
