"""Request ids: taken from X-Request-ID or made, echoed, and on every log line the request causes."""

import logging

import pytest

from app import create_app
from config import Config
from repository import db
from tests.api.test_oms_api import SEED as OMS_SEED
from tests.support.observed import json_lines


@pytest.fixture
def json_client(database_url):
    application = create_app(Config(database_url=database_url, validate_responses=True, log_format="json"))
    with application.test_client() as client:
        yield client
    db.close_all()
    create_app_logging_back_to_text()


def create_app_logging_back_to_text():
    import logs

    logs.configure_logging("text", "INFO")


@pytest.fixture
def debug_ingest():
    logger = logging.getLogger("joi.ingest")
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    yield
    logger.setLevel(previous)


def store(client, meter="rid-meter", **headers):
    body = {"smartMeterId": meter, "electricityReadings": [{"time": 1606636800, "reading": 0.5}]}
    return client.post("/readings/store", json=body, headers=headers)


def test_the_callers_request_id_is_echoed(client):
    response = store(client, **{"X-Request-ID": "caller-id-42"})
    assert response.headers["x-request-id"] == "caller-id-42"


@pytest.mark.parametrize("sent", ["a" * 200, "two words", "id\x7f"])
def test_an_unsafe_request_id_is_replaced_and_the_new_one_echoed(client, sent):
    response = client.get("/health", headers={"X-Request-ID": sent})
    assert response.status_code == 200
    echoed = response.headers["x-request-id"]
    assert echoed != sent and len(echoed) == 32


def test_every_answer_gets_an_id_also_errors_and_unknown_paths(client):
    ids = {
        client.get("/health").headers["x-request-id"],
        client.get("/nowhere").headers["x-request-id"],
        client.post("/readings/store", json={}).headers["x-request-id"],
    }
    assert len(ids) == 3


def test_a_request_id_is_followed_from_the_answer_through_its_log_lines(json_client, capsys, debug_ingest):
    capsys.readouterr()
    fast = store(json_client)  # the ASGI fast path, in anyio's worker thread
    flask = json_client.post("/commit", json=OMS_SEED)  # a Flask view, in a2wsgi's thread pool
    assert fast.status_code == 200 and flask.status_code == 200
    lines = json_lines(capsys.readouterr().err)
    for answer, logger, subject in (
        (fast, "joi.ingest", {"meter": "rid-meter"}),
        (flask, "joi.ingest", {"device": 83251076}),
    ):
        request_id = answer.headers["x-request-id"]
        mine = [line for line in lines if line["request_id"] == request_id]
        stored = [line for line in mine if line["logger"] == logger]
        assert stored and all(stored[0][key] == wanted for key, wanted in subject.items())
        (access,) = [line for line in mine if line["logger"] == "joi.access"]
        assert access["status"] == 200 and access["method"] == "POST" and access["duration_ms"] >= 0
        assert access["operation"] in ("controllers.readings.store", "controllers.oms.commit")
        assert {"time", "level", "message"} <= set(access)


def test_one_access_line_per_request_in_text_too(client, capsys):
    capsys.readouterr()
    response = client.get("/readings/read/nobody", headers={"X-Request-ID": "text-id-1"})
    assert response.status_code == 404
    access = [line for line in capsys.readouterr().err.splitlines() if " joi.access " in line]
    assert len(access) == 1
    assert "[text-id-1] GET /readings/read/nobody 404" in access[0]


def test_no_secret_header_or_key_reaches_the_log(database_url, capsys):
    config = Config(database_url=database_url, log_format="json", dsmr_api_enabled=True, dsmr_api_key="dsmr-secret-1")
    application = create_app(config)
    try:
        with application.test_client() as client:
            capsys.readouterr()
            logging.getLogger("joi.test").warning(
                "request headers: %s", {"Authorization": "Bearer metrics-secret-2", "X-AUTHKEY": "dsmr-secret-1"}
            )
            client.get("/api/v2/application/version?token=query-secret-3", headers={"X-AUTHKEY": "dsmr-secret-1"})
            text = capsys.readouterr().err
    finally:
        db.close_all()
        create_app_logging_back_to_text()
    assert json_lines(text)
    for secret in ("metrics-secret-2", "dsmr-secret-1", "query-secret-3"):
        assert secret not in text
