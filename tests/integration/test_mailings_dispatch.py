"""The dispatcher in-process against a real HTTP send server on 127.0.0.1, and the daily SMTP report."""

from __future__ import annotations

import email
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time

import pytest
from aiosmtpd.controller import Controller

import mailing_dispatch
from config import Config
from domain.mailings import Client, Mailing
from repository import db, leases
from repository import mailings as repo
from tests.support.send_server import Running, SendServer, free_port


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def send_server():
    server = SendServer(hang_seconds=5)
    with Running(server) as running:
        server.url = running.url
        yield server


def dispatcher(config: Config, url: str | None, **settings) -> mailing_dispatch.Dispatcher:
    values = dict(
        send_api_url=url,
        send_api_token="secret",
        send_timeout_seconds=1,
        send_retry_base_seconds=0.1,
        send_retry_max_seconds=0.2,
    )
    return mailing_dispatch.Dispatcher(Config(database_url=config.database_url, **{**values, **settings}))


def mailing(**changes) -> Mailing:
    fields = dict(start_time=now() - timedelta(minutes=1), end_time=now() + timedelta(hours=1), text="hello")
    return repo.create_mailing(Mailing(**{**fields, **changes}), now())


def hhmm(moment: datetime) -> dt_time:
    return dt_time(moment.hour, moment.minute)


def rounds(d: mailing_dispatch.Dispatcher, count: int, pause: float = 0.2) -> None:
    db.close()
    try:
        for _ in range(count):
            d.run_round()
            time.sleep(pause)
    finally:
        d.close()
        db.connect()


def test_the_request_has_the_send_apis_path_token_and_body(database, config, send_server):
    repo.create_client(Client("79000000001", "900", "UTC"))
    created = mailing()
    rounds(dispatcher(config, send_server.url), 1)
    [request] = send_server.received
    [message], _ = repo.messages(created.id, 10, 0)
    assert request.path == f"/v1/send/{message.id}"
    assert request.body == {"id": message.id, "phone": 79000000001, "text": "hello"}
    assert request.authorization == "Bearer secret"
    assert message.status == "SENT" and message.attempts == 1


def test_nothing_is_sent_outside_the_clients_window_and_it_waits_for_the_opening(database, config, send_server):
    repo.create_client(Client("79000000001", "900", "UTC"))
    closed = mailing(
        send_window_start=hhmm(now() + timedelta(hours=2)), send_window_end=hhmm(now() + timedelta(hours=3))
    )
    rounds(dispatcher(config, send_server.url), 2)
    assert send_server.received == []
    [message], _ = repo.messages(closed.id, 10, 0)
    assert message.status == "PENDING" and message.attempts == 0
    opening = (now() + timedelta(hours=2)).replace(second=0, microsecond=0)
    assert abs((message.next_attempt_at - opening).total_seconds()) < 61


def test_a_window_open_now_in_the_clients_zone_sends(database, config, send_server):
    repo.create_client(Client("79000000001", "900", "Asia/Tokyo"))
    tokyo_now = now() + timedelta(hours=9)
    mailing(
        send_window_start=hhmm(tokyo_now - timedelta(hours=1)), send_window_end=hhmm(tokyo_now + timedelta(hours=1))
    )
    rounds(dispatcher(config, send_server.url), 1)
    assert len(send_server.sent_ok()) == 1


def test_a_request_in_flight_is_abandoned_at_end_time_and_the_message_expires(database, config, send_server):
    repo.create_client(Client("79000000001", "900", "UTC"))
    send_server.behaviours["79000000001"] = ("hang", 99)
    end = now() + timedelta(seconds=1.5)
    short = mailing(end_time=end)
    rounds(dispatcher(config, send_server.url, send_timeout_seconds=10), 4, pause=0.3)
    assert send_server.received and all(r.at < end.timestamp() for r in send_server.received)
    assert repo.status_counts(short.id) == {"EXPIRED": 1}


def test_a_refused_connection_is_a_failure_that_is_retried(database, config):
    repo.create_client(Client("79000000001", "900", "UTC"))
    created = mailing()
    rounds(dispatcher(config, f"http://127.0.0.1:{free_port()}/v1"), 2)
    [message], _ = repo.messages(created.id, 10, 0)
    assert message.status == "FAILED" and message.attempts >= 2 and "ConnectError" in message.last_error


def test_without_a_send_api_url_messages_are_made_and_wait(database, config):
    repo.create_client(Client("79000000001", "900", "UTC"))
    created = mailing()
    rounds(dispatcher(config, None), 1)
    assert repo.status_counts(created.id) == {"PENDING": 1}


def test_a_client_who_stops_matching_gets_nothing(database, config, send_server):
    vip = repo.create_client(Client("79000000001", "900", "UTC", "VIP"))
    mailing(client_tag_filter="VIP", start_time=now() - timedelta(seconds=1))
    repo.make_messages(now())
    repo.update_client(Client("79000000001", "900", "UTC", None, id=vip.id))
    rounds(dispatcher(config, send_server.url), 1)
    assert send_server.received == []
    assert repo.status_counts() == {}


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.url = f"smtp://127.0.0.1:{controller.port}"
    yield inbox
    controller.stop()


def test_the_daily_report_is_mailed_once_after_its_time_with_yesterdays_statistics(database, config, smtp_server):
    repo.create_client(Client("79000000001", "900", "UTC"))
    today = now().replace(hour=9, minute=0, second=0, microsecond=0)
    ran = mailing(start_time=today - timedelta(days=1), end_time=today - timedelta(hours=12), text="yesterday's news")
    settings = Config(
        database_url=config.database_url,
        smtp_url=smtp_server.url,
        mailing_report_to="ops@example.org, boss@example.org",
        mailing_report_at="08:00",
    )
    assert not mailing_dispatch.send_daily_report(settings, today.replace(hour=7), "worker-a")
    assert mailing_dispatch.send_daily_report(settings, today, "worker-a")
    assert not mailing_dispatch.send_daily_report(settings, today + timedelta(minutes=1), "worker-b")
    [report] = smtp_server.messages
    day = (today - timedelta(days=1)).date().isoformat()
    assert report["Subject"] == f"Mailings on {day}: 1 mailings, 0 messages sent"
    assert report["To"] == "ops@example.org, boss@example.org"
    assert f'mailing {ran.id} "yesterday\'s news"' in report.get_payload()


def test_a_report_that_could_not_be_mailed_is_tried_again(database, config, smtp_server):
    dead = Config(
        database_url=config.database_url,
        smtp_url=f"smtp://127.0.0.1:{free_port()}",
        mailing_report_to="ops@example.org",
    )
    moment = now().replace(hour=9)
    with pytest.raises(OSError):
        mailing_dispatch.send_daily_report(dead, moment, "worker-a")
    assert leases.holder_of(f"mailing-report:{(moment - timedelta(days=1)).date()}") is None
    alive = Config(database_url=config.database_url, smtp_url=smtp_server.url, mailing_report_to="ops@example.org")
    assert mailing_dispatch.send_daily_report(alive, moment, "worker-a")
    assert len(smtp_server.messages) == 1


def test_no_report_without_smtp_settings(database, config):
    assert not mailing_dispatch.send_daily_report(Config(database_url=config.database_url), now().replace(hour=9), "w")
