"""The series the README documents move when the work they count happens: Modbus polls and rounds against
the pymodbus simulator, mailing messages sent to a real HTTP send server, the task queue's depth; each
read from GET /metrics with prometheus_client's parser. And a request's id followed from its answer into
the log line a real worker process writes for the task the request enqueued."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from datetime import UTC, datetime, timedelta

import pytest

import mailing_dispatch
import tasks
from config import Config
from domain.mailings import Client, Mailing
from repository import db
from repository import mailings as mailings_repo
from tests.support import modbus_simulator as sim
from tests.support import silesia_sites
from tests.support.observed import json_lines, value
from tests.support.send_server import Running, SendServer
from tests.support.workers import Worker, flush_queue, queue_settings


def scrape(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    return response.text


def moved(before: str, after: str, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def wait_for(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


# --- Modbus ---------------------------------------------------------------------------------------------


@pytest.fixture
def quick_polls(monkeypatch):
    monkeypatch.setattr(
        tasks, "settings", dataclasses.replace(tasks.settings, modbus_poll_seconds=2, modbus_timeout_seconds=1)
    )


def test_a_poll_round_counts_each_hosts_outcome_and_the_rounds_duration(database, client, quick_polls):
    owner = silesia_sites.account()
    with sim.sdm630_gateway() as gateway:
        silesia_sites.host(owner, gateway.port, measurements=["voltage_ac", "current"])
        model = silesia_sites.custom_meter_model()
        silesia_sites.host(owner, gateway.port, unit_id=2, meter=model, measurements=["voltage_ac", "missing_register"])
        silesia_sites.host(owner, sim.refused_port(), measurements=["voltage_ac"])
        before = scrape(client)
        tasks.poll_round.call_local()
    after = scrape(client)
    assert moved(before, after, "joi_modbus_polls_total", outcome="ok") == 1
    assert moved(before, after, "joi_modbus_polls_total", outcome="partial") == 1
    assert moved(before, after, "joi_modbus_polls_total", outcome="failed") == 1
    assert moved(before, after, "joi_modbus_polls_total", outcome="other") == 0
    assert moved(before, after, "joi_modbus_round_seconds_count") == 1
    assert moved(before, after, "joi_modbus_round_seconds_bucket", le="+Inf") == 1


# --- Mailings -------------------------------------------------------------------------------------------


def now() -> datetime:
    return datetime.now(UTC)


def test_mailing_messages_count_what_the_dispatcher_did_with_their_send_latency(database, client, config):
    sent_phone, failing_phone = "79000000001", "79000000002"
    server = SendServer(behaviours={failing_phone: ("http500", 1)})
    for phone in (sent_phone, failing_phone):
        mailings_repo.create_client(Client(phone, "900", "UTC"))
    mailings_repo.create_mailing(Mailing(now() - timedelta(minutes=1), now() + timedelta(hours=1), "hi"), now())
    before = scrape(client)
    with Running(server) as running:
        dispatcher = mailing_dispatch.Dispatcher(
            Config(database_url=config.database_url, send_api_url=running.url, send_retry_base_seconds=60)
        )
        db.close()
        try:
            dispatcher.run_round()
        finally:
            dispatcher.close()
            db.connect()
    after = scrape(client)
    assert moved(before, after, "joi_mailing_messages_total", status="sent") == 1
    assert moved(before, after, "joi_mailing_messages_total", status="failed") == 1
    assert moved(before, after, "joi_mailing_send_seconds_count") == 2
    assert moved(before, after, "joi_mailing_send_seconds_bucket", le="+Inf") == 2
    assert mailings_repo.status_counts()["SENT"] == 1 and len(server.received) == 2


def test_an_ended_mailings_unsent_messages_count_as_expired(database, client, config):
    mailings_repo.create_client(Client("79000000001", "900", "UTC"))
    ended = mailings_repo.create_mailing(
        Mailing(now() - timedelta(hours=2), now() - timedelta(minutes=1), "too late"), now() - timedelta(hours=2)
    )
    assert mailings_repo.make_messages(now() - timedelta(hours=1)) == {ended.id: 1}  # made while it ran
    before = scrape(client)
    dispatcher = mailing_dispatch.Dispatcher(Config(database_url=config.database_url))
    db.close()
    try:
        dispatcher.run_round()
    finally:
        dispatcher.close()
        db.connect()
    assert moved(before, scrape(client), "joi_mailing_messages_total", status="expired") == 1


# --- The task queue -------------------------------------------------------------------------------------


def started_mailing(client, **headers) -> dict:
    body = {
        "start_time": (now() - timedelta(minutes=1)).isoformat(),
        "end_time": (now() + timedelta(hours=1)).isoformat(),
        "text": "hello",
    }
    response = client.post("/api/v1/mailings/", json=body, headers=headers)
    assert response.status_code == 201
    return response


def test_the_queue_depth_counts_the_tasks_a_request_enqueued(client):
    before = value(scrape(client), "joi_task_queue_depth", queue="tasks")
    started_mailing(client)
    started_mailing(client)
    assert value(scrape(client), "joi_task_queue_depth", queue="tasks") == before + 2 == tasks.huey.pending_count()
    tasks.huey.flush()
    assert value(scrape(client), "joi_task_queue_depth", queue="tasks") == 0


def test_a_mailing_that_starts_later_enqueues_nothing(client):
    before = tasks.huey.pending_count()
    body = {"start_time": "2099-01-01T00:00:00Z", "end_time": "2099-01-02", "text": "later"}
    assert client.post("/api/v1/mailings/", json=body).status_code == 201
    assert tasks.huey.pending_count() == before


# --- A request id in the worker's log -------------------------------------------------------------------


@pytest.fixture
def queue_env(database, database_url, tmp_path):
    env = {"DATABASE_URL": database_url, **queue_settings(database_url, tmp_path), "LOG_FORMAT": "json"}
    flush_queue(env)
    yield env
    flush_queue(env)


def test_a_request_id_is_followed_from_the_answer_into_the_log_line_of_the_task_it_enqueued(
    queue_env, client, tmp_path, monkeypatch
):
    mailings_repo.create_client(Client("79000000001", "900", "UTC"))
    worker_config = Config(
        database_url=queue_env["DATABASE_URL"],
        redis_url=queue_env.get("REDIS_URL") or None,
        queue_sqlite_path=queue_env.get("QUEUE_SQLITE_PATH"),
    )
    monkeypatch.setattr(tasks.huey, "storage", tasks.build_huey(worker_config).storage)  # the worker's queue
    answer = started_mailing(client, **{"X-Request-ID": "trace-mailing-42"})
    request_id = answer.headers["X-Request-ID"]
    mailing_id = answer.json()["id"]
    assert request_id == "trace-mailing-42"
    log_path = tmp_path / "worker.log"
    worker = Worker(queue_env, log_path)
    try:

        def started_line() -> dict | None:
            lines = json_lines(log_path.read_text()) if log_path.exists() else []
            return next((line for line in lines if f"mailing_id={mailing_id} started" in line["message"]), None)

        wait_for(lambda: started_line() is not None)
    finally:
        worker.stop()
    line = started_line()
    assert line["request_id"] == request_id and line["logger"] == "joi.mailings", json.dumps(line)
    # 1, or 0 when the worker's first dispatch round made the message before the task ran
    assert re.search(r"started: [01] new messages", line["message"]), line["message"]
