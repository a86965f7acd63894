"""The front door (fastpath.FrontDoor) answers the plainest hot requests before Connexion routes them; it is
installed when responses are not validated (the default in production). Every request here is sent to an
app with it and then to one without it, on the same database, and both must answer alike (the second of
two equal telegrams is a duplicate, answered as the first); the plain requests must not reach Connexion's
stack at all, and every other one must."""

from __future__ import annotations

import random
import urllib.parse
from datetime import UTC, datetime, timedelta

import pytest
from connexion.middleware.swagger_ui import SwaggerUIMiddleware

from app import create_app
from config import Config
from repository import db
from tests.support.telegrams import make_telegram

KEY = "front-door-key-0123456789"
AUTH = {"X-AUTHKEY": KEY}
V1 = "/api/v1/datalogger/dsmrreading"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
START = datetime(2024, 3, 1, tzinfo=UTC)
METER = "E0025123456789012"


def telegram(n: int, **overrides) -> str:
    rng = random.Random(n)
    values = {"timestamp": START + timedelta(seconds=10 * n), "equipment_id": METER, "second_channel": None}
    return make_telegram("v5", rng, **{**values, **overrides})


def form(**fields) -> bytes:
    return urllib.parse.urlencode(fields).encode()


@pytest.fixture
def routed(monkeypatch):
    """The paths of the requests that reached Connexion's stack (its Swagger UI middleware, the first one
    after the front door), in either app: a request the front door answers is seen once (in the app
    without it), any other twice."""
    calls = []
    swagger_ui = SwaggerUIMiddleware.__call__

    async def counted(self, scope, receive, send):
        if scope["type"] == "http":
            calls.append(scope["path"])
        await swagger_ui(self, scope, receive, send)

    monkeypatch.setattr(SwaggerUIMiddleware, "__call__", counted)
    return calls


@pytest.fixture
def clients(database_url):
    """(with the front door, without it): the same settings on the test database."""
    made = []
    for validate in (False, True):
        config = Config(
            database_url=database_url,
            validate_responses=validate,
            dsmr_api_enabled=True,
            dsmr_api_key=KEY,
            dsmr_verify_crc=True,
        )
        made.append(create_app(config).test_client())
    entered = [client.__enter__() for client in made]
    yield entered
    for client in made:
        client.__exit__(None, None, None)
    db.close_all()


def answer(response) -> tuple:
    return response.status_code, response.headers.get("content-type"), response.content, response.headers.get("link")


def both(clients, method: str, path: str, **kwargs) -> tuple:
    front, plain = (answer(client.request(method, path, **kwargs)) for client in clients)
    assert front == plain, f"{method} {path} {kwargs}"
    return front


def test_plain_telegrams_are_answered_before_routing_exactly_as_connexion_answers_them(clients, routed):
    for n in range(3):
        assert both(clients, "POST", V1, headers={**AUTH, **FORM}, content=form(telegram=telegram(n)))[0] == 201
    # the same telegram again (a duplicate), other values at a stored instant (409), a bad CRC, a bad key
    assert both(clients, "POST", V1, headers={**AUTH, **FORM}, content=form(telegram=telegram(1)))[0] == 201
    other = telegram(99, timestamp=START + timedelta(seconds=10))
    assert both(clients, "POST", V1, headers={**AUTH, **FORM}, content=form(telegram=other))[0] == 409
    broken = telegram(5).replace("1-0:1.8.1(", "1-0:1.8.1(9")
    assert both(clients, "POST", V1, headers={**AUTH, **FORM}, content=form(telegram=broken))[0] == 400
    bad_key = {"X-AUTHKEY": "wrong", **FORM}
    assert both(clients, "POST", V1, headers=bad_key, content=form(telegram=telegram(6)))[0] == 403
    # a field the form does not take is ignored, as on Connexion's path; charset in the media type is fine
    extra = form(telegram=telegram(7), id="12")
    assert both(clients, "POST", V1, headers={**AUTH, **FORM}, content=extra)[0] == 201
    charset = {**AUTH, "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    assert both(clients, "POST", V1, headers=charset, content=form(telegram=telegram(8)))[0] == 201
    assert len(routed) == 9  # once each
    statistics = both(clients, "GET", "/api/v2/datalogger/meter-statistics", headers=AUTH)[2]
    # five telegrams stored, each sent twice, and one of them twice more
    assert b'"accepted_telegrams":5' in statistics.replace(b" ", b"")
    assert b'"duplicate_telegrams":7' in statistics.replace(b" ", b"")


@pytest.mark.parametrize(
    "headers, body",
    [
        ({**AUTH, **FORM}, form(other="x")),  # no telegram
        ({**AUTH, **FORM}, form(telegram="a") + b"&" + form(telegram="b")),  # two
        ({**AUTH, **FORM}, b"telegram=a;b"),  # a separator some parsers split on
        ({**AUTH, **FORM}, b""),
        ({**AUTH, "Content-Type": "application/json"}, b'{"telegram": "x"}'),
        ({**AUTH, "Content-Type": "text/plain"}, b"telegram=x"),
        (AUTH, b"telegram=x"),  # no content type
    ],
)
def test_every_other_telegram_request_goes_on_to_connexion_and_is_answered_as_before(clients, routed, headers, body):
    status = both(clients, "POST", V1, headers=headers, content=body)[0]
    assert 400 <= status < 500
    assert routed == [V1, V1]


def test_plain_meter_reads_are_answered_before_routing_exactly_as_connexion_answers_them(clients, routed):
    readings = [{"time": 1_700_000_000 + 60 * n, "reading": 0.5 + (n % 7) / 10} for n in range(600)]
    stored = clients[1].post("/readings/store", json={"smartMeterId": "m-1", "electricityReadings": readings})
    assert stored.status_code == 200
    routed.clear()
    plain_reads = [
        "/price-plans/compare-all/m-1",
        "/price-plans/compare-all/m-1?from=1700000000&to=1700018000",
        "/price-plans/recommend/m-1?limit=2",
        "/readings/read/m-1?from=1700000600&to=1700003600",
        "/readings/read/m-1?limit=100&after=1700006000",
        "/readings/read/m-1?to=1700000000",
        "/price-plans/compare-all/nobody",  # 404
        "/readings/read/nobody",  # 404
        "/price-plans/compare-all/m-1?from=1700018000&to=1700000000",  # a window that ends before it starts
    ]
    for path in plain_reads:
        both(clients, "GET", path)
    assert sorted(routed) == sorted(path.split("?")[0] for path in plain_reads)  # once each
    assert [both(clients, "GET", path)[0] for path in plain_reads[:6]] == [200] * 6


@pytest.mark.parametrize(
    "path",
    [
        "/readings/read/m-1?limit=0",  # below the spec's bound
        "/price-plans/recommend/m-1?limit=1001",  # above it
        "/readings/read/m-1?from=-1",
        "/readings/read/m-1?from=4102444801",
        "/readings/read/m-1?from=soon",
        "/readings/read/m-1?from=1&from=2",
        "/readings/read/m-1?unknown=1",
        "/price-plans/compare-all/m-1?limit=3",  # compare-all takes no limit
        "/readings/read/m%C3%A9",  # a letter the meter id pattern does not take
        "/readings/read/" + "m" * 129,
        "/readings/read/m%201",
    ],
)
def test_every_other_meter_read_goes_on_to_connexion_and_is_answered_as_before(clients, routed, path):
    status = both(clients, "GET", path)[0]
    assert 400 <= status < 500
    assert len(routed) == 2


def test_a_request_the_front_door_answers_is_counted_and_logged_under_its_operation(clients):
    front = clients[0]
    assert front.post(V1, headers={**AUTH, **FORM}, content=form(telegram=telegram(1))).status_code == 201
    metrics = front.get("/metrics").text
    assert 'operation="controllers.dsmr_v1.create_reading",status="201"' in metrics


def test_plain_stores_are_answered_before_routing_exactly_as_connexion_answers_them(clients, routed):
    one = {"smartMeterId": "m-2", "electricityReadings": [{"time": 1_700_000_000, "reading": 0.5}]}
    batch = {
        "smartMeterId": "m-2",
        "electricityReadings": [{"time": 1_700_000_060 + 60 * n, "reading": 1.25} for n in range(50)],
    }
    clash = {"smartMeterId": "m-2", "electricityReadings": [{"time": 1_700_000_000, "reading": 1.0}] * 1}
    clash["electricityReadings"].append({"time": 1_700_000_000, "reading": 2.0})  # one time, two readings: 400
    for body in (one, batch, clash):
        both(clients, "POST", "/readings/store", json=body)
    assert len(routed) == 3  # once each
    assert both(clients, "GET", "/readings/read/m-2")[0] == 200


@pytest.mark.parametrize(
    "headers, body",
    [
        ({"Content-Type": "application/json"}, b'{"smartMeterId": "m-3"}'),  # no readings
        ({"Content-Type": "application/json"}, b'{"smartMeterId": "m\\n3", "electricityReadings": []}'),
        (
            {"Content-Type": "application/json"},
            b'{"smartMeterId": "m-3", "electricityReadings": [{"time": -1, "reading": 1}]}',
        ),
        ({"Content-Type": "application/json"}, b"{not json"),
        ({"Content-Type": "application/json"}, b"[]"),
        ({"Content-Type": "application/json"}, b""),
        ({"Content-Type": "text/plain"}, b'{"smartMeterId": "m-3", "electricityReadings": []}'),
    ],
)
def test_every_other_store_goes_on_to_connexion_and_is_answered_as_before(clients, routed, headers, body):
    status = both(clients, "POST", "/readings/store", headers=headers, content=body)[0]
    assert 400 <= status < 500
    assert len(routed) == 2


def test_a_store_with_a_query_string_goes_on_to_connexion(clients, routed):
    body = {"smartMeterId": "m-4", "electricityReadings": [{"time": 1_700_000_000, "reading": 0.5}]}
    assert both(clients, "POST", "/readings/store?dry=1", json=body)[0] == 400  # strict: no query parameters
    assert len(routed) == 2


def test_a_telegram_posted_with_a_query_string_goes_on_to_connexion(clients, routed):
    body = form(telegram=telegram(1))
    assert both(clients, "POST", V1 + "?meter=1", headers={**AUTH, **FORM}, content=body)[0] == 400
    assert routed == [V1, V1]
