"""End to end: a real worker process (`python src/worker.py`) sends a mailing to a real HTTP send server on
127.0.0.1 that fails, lies, breaks and hangs; SQLite + its SQLite queue, and PostgreSQL + Redis
(TEST_REDIS_URL) when given."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from domain.mailings import Client
from repository import mailings as repo
from tests.support.send_server import Running, SendServer
from tests.support.workers import Worker, flush_queue, queue_settings

SEND = {
    "SEND_TIMEOUT_SECONDS": "1",
    "SEND_RETRY_BASE_SECONDS": "0.2",
    "SEND_RETRY_MAX_SECONDS": "0.5",
    "MAILING_DISPATCH_SECONDS": "0.5",
    "SCHEDULER_LEASE_SECONDS": "2",
    "SEND_API_TOKEN": "e2e-token",
}


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def worker_env(database, database_url, tmp_path):
    env = {"DATABASE_URL": database_url, **queue_settings(database_url, tmp_path), **SEND}
    flush_queue(env)
    yield env
    flush_queue(env)


def wait_for(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def phone(n: int) -> str:
    return f"7900{n:07d}"


def test_a_worker_sends_every_matching_client_the_text_exactly_once_within_time_and_window(
    worker_env, client, tmp_path
):
    server = SendServer(hang_seconds=3)
    server.behaviours.update(
        {
            phone(0): ("http500", 2),
            phone(1): ("http500", 3),
            phone(2): ("wrong_code", 1),
            phone(3): ("broken_json", 2),
            phone(4): ("hang", 1),
            phone(5): ("http500", 10_000),
        }
    )
    matching = [phone(n) for n in range(12)]
    for number in matching:
        client.post("/api/v1/clients/", json={"phone": number, "operator_code": "900", "tag": "VIP", "timezone": "UTC"})
    others = [
        {"phone": phone(50), "operator_code": "901", "tag": "VIP", "timezone": "UTC"},
        {"phone": phone(51), "operator_code": "900", "tag": None, "timezone": "UTC"},
        {"phone": phone(52), "operator_code": "900", "tag": "vip", "timezone": "UTC"},
    ]
    outside_window = {"phone": phone(60), "operator_code": "900", "tag": "VIP", "timezone": "Etc/GMT-12"}  # UTC+12
    for body in [*others, outside_window]:
        assert client.post("/api/v1/clients/", json=body).status_code == 201
    start, end = now(), now() + timedelta(seconds=10)
    window = (start - timedelta(hours=1), start + timedelta(hours=2))  # open now in UTC, closed at UTC+12
    with Running(server) as running:
        mailing = client.post(
            "/api/v1/mailings/",
            json={
                "start_time": start.isoformat(),
                "end_time": end.isoformat(),
                "text": "Привет, VIP!",
                "client_tag_filter": "VIP",
                "client_operator_code_filter": "900",
                "send_window_start": window[0].strftime("%H:%M"),
                "send_window_end": window[1].strftime("%H:%M"),
            },
        ).json()
        worker = Worker({**worker_env, "SEND_API_URL": running.url}, tmp_path / "worker.log")
        try:
            wait_for(lambda: len(server.sent_ok()) >= 4, seconds=20)
            late = phone(70)  # a client added after the start who matches is included
            client.post(
                "/api/v1/clients/", json={"phone": late, "operator_code": "900", "tag": "VIP", "timezone": "UTC"}
            )
            matching.append(late)
            wait_for(lambda: now() > end + timedelta(seconds=2), seconds=30)
        finally:
            worker.stop()
    log = (tmp_path / "worker.log").read_text()

    accepted = Counter(int(r.body["phone"]) for r in server.sent_ok())
    expected = {int(n) for n in matching} - {int(phone(5))}
    assert set(accepted) == expected and set(accepted.values()) == {1}  # exactly once each
    phones_seen = {int(r.body["phone"]) for r in server.received}
    assert phones_seen <= {int(n) for n in matching}  # no other client, nobody outside the window
    assert all(r.at < end.timestamp() for r in server.received)  # nothing after end_time
    assert all(r.authorization == "Bearer e2e-token" and r.body["text"] == "Привет, VIP!" for r in server.received)

    messages = client.get(f"/api/v1/mailings/{mailing['id']}/messages?limit=1000").json()["results"]
    by_phone = {m["phone"] or "": m for m in messages}
    for request in server.received:  # the message id in the path and body is that client's message
        message = by_phone[str(request.body["phone"])]
        assert request.message_id == request.body["id"] == message["id"]
    attempts = Counter(int(r.body["phone"]) for r in server.received)
    for number in expected:
        assert by_phone[str(number)]["status"] == "SENT"
        assert by_phone[str(number)]["attempts"] == attempts[number]
    assert attempts[int(phone(0))] == 3 and attempts[int(phone(1))] == 4 and attempts[int(phone(4))] == 2
    assert by_phone[phone(5)]["status"] == "EXPIRED" and "HTTP 500" in by_phone[phone(5)]["last_error"]

    stats = client.get(f"/api/v1/mailings/{mailing['id']}").json()["message_data"]
    assert stats == [
        {"status": "PENDING", "count": 0},
        {"status": "SENT", "count": len(accepted)},
        {"status": "FAILED", "count": 0},
        {"status": "EXPIRED", "count": 2},  # the one that always failed, the one outside its window
    ]
    assert f"mailing_id={mailing['id']} message_id={by_phone[phone(0)]['id']}" in log


def test_a_worker_killed_mid_mailing_and_restarted_still_sends_each_message_once(worker_env, database, tmp_path):
    server = SendServer(delay=0.05)
    count = 150
    repo.create_clients([Client(phone(n), "900", "UTC") for n in range(count)])
    start = now()
    with Running(server) as running:
        env = {**worker_env, "SEND_API_URL": running.url, "SEND_CONCURRENCY": "10"}
        mailing = repo.create_mailing(
            repo.Mailing(start_time=start, end_time=start + timedelta(minutes=5), text="once"), start
        )
        worker = Worker(env, tmp_path / "worker-1.log")
        wait_for(lambda: len(server.received) >= count // 3, seconds=30)
        worker.kill()
        killed_at = time.time()
        sent_before = {m.id for m in repo.messages(mailing.id, 1000, 0, status="SENT")[0]}
        assert 0 < len(sent_before) < count
        restarted = Worker(env, tmp_path / "worker-2.log")
        try:
            wait_for(lambda: repo.status_counts(mailing.id).get("SENT") == count, seconds=60)
        finally:
            restarted.stop()

    per_message = Counter(r.message_id for r in server.sent_ok())
    assert set(per_message) == {m.id for m in repo.messages(mailing.id, 1000, 0)[0]}
    resent = {message_id for message_id, times in per_message.items() if times > 1}
    assert len(resent) <= 10  # at most the requests in flight when the worker died
    assert resent.isdisjoint(sent_before)  # a message recorded as sent is never sent again
    assert all(times <= 2 for times in per_message.values())
    assert not any(r.message_id in sent_before for r in server.received if r.at > killed_at)
