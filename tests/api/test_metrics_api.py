"""GET /metrics: the page parses, the series move with the requests, and the scrape token guards it."""

import json

import pytest

from app import create_app
from config import Config
from repository import db
from tests.api.test_oms_api import SEED as OMS_SEED
from tests.support.observed import samples, value
from tests.support.telegrams import SEED_TELEGRAM

KEY = "metrics-test-key"
STORE = "controllers.readings.store"


@pytest.fixture
def config(database_url) -> Config:
    return Config(
        database_url=database_url,
        validate_responses=True,
        dsmr_api_enabled=True,
        dsmr_api_key=KEY,
        dsmr_verify_crc=False,
    )


@pytest.fixture
def app_with(database_url):
    def build(**settings):
        return create_app(Config(database_url=database_url, validate_responses=True, **settings)).test_client()

    yield build
    db.close_all()


def scrape(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def test_the_page_parses_and_describes_the_build(client):
    page = scrape(client)
    assert samples(page)  # prometheus_client's own parser read it
    assert any(name == "joi_build_info" for name, _ in samples(page))
    assert "# TYPE joi_http_request_duration_seconds histogram" in page


def test_requests_count_by_operation_and_status_with_their_latency(client):
    before = scrape(client)
    body = {
        "smartMeterId": "metrics-meter",
        "electricityReadings": [{"time": 1606636800 + i, "reading": 1.0} for i in range(3)],
    }
    assert client.post("/readings/store", json=body).status_code == 200
    assert client.post("/readings/store", json={"smartMeterId": "x"}).status_code == 400
    assert client.get("/readings/read/metrics-meter").status_code == 200
    after = scrape(client)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("joi_http_requests_total", operation=STORE, status="200") == 1
    assert moved("joi_http_requests_total", operation=STORE, status="400") == 1
    assert moved("joi_http_requests_total", operation="controllers.readings.read", status="200") == 1
    assert moved("joi_http_request_duration_seconds_count", operation=STORE) == 2
    assert moved("joi_http_request_duration_seconds_bucket", operation=STORE, le="+Inf") == 2
    assert moved("joi_readings_stored_total") == 3
    assert moved("joi_http_requests_total", operation="controllers.metrics.scrape", status="200") == 1


def test_an_unknown_path_gets_a_fixed_label_never_the_path(client):
    before = scrape(client)
    for path in ("/no/such/meter-123", "/another-secret-looking-path"):
        assert client.get(path).status_code == 404
    after = scrape(client)
    assert (
        value(after, "joi_http_requests_total", operation="unmatched", status="404")
        - value(before, "joi_http_requests_total", operation="unmatched", status="404")
        == 2
    )
    assert "meter-123" not in after and "secret-looking" not in after
    operations = {dict(labels).get("operation") for name, labels in samples(after) if name == "joi_http_requests_total"}
    assert all(
        operation.startswith("controllers.") or operation in {"unmatched", "openapi.json", "swagger-ui"}
        for operation in operations
    )


def test_dsmr_telegrams_count_accepted_duplicate_and_rejected(client):
    auth = {"X-AUTHKEY": KEY}
    v1 = "/api/v1/datalogger/dsmrreading"
    before = scrape(client)
    assert client.post(v1, headers=auth, data={"telegram": SEED_TELEGRAM}).status_code == 201
    assert client.post(v1, headers=auth, data={"telegram": SEED_TELEGRAM}).status_code == 201
    assert client.post(v1, headers=auth, data={"telegram": "not a telegram"}).status_code == 400
    after = scrape(client)
    for outcome in ("accepted", "duplicate", "rejected"):
        assert (
            value(after, "joi_dsmr_telegrams_total", outcome=outcome)
            - value(before, "joi_dsmr_telegrams_total", outcome=outcome)
            == 1
        )


def test_dsmr_v2_readings_count_created_duplicate_and_conflict(client):
    from tests.api.test_dsmr_api import SEED_READING

    auth = {"X-AUTHKEY": KEY}
    v2 = "/api/v2/datalogger/dsmrreading"
    before = scrape(client)
    assert client.post(v2, headers=auth, json=SEED_READING).status_code == 201
    assert client.post(v2, headers=auth, json=SEED_READING).status_code == 201
    assert client.post(v2, headers=auth, json={**SEED_READING, "electricity_delivered_1": 2001}).status_code == 409
    after = scrape(client)
    for outcome in ("created", "duplicate", "conflict"):
        assert (
            value(after, "joi_dsmr_readings_total", outcome=outcome)
            - value(before, "joi_dsmr_readings_total", outcome=outcome)
            == 1
        )


def test_oms_messages_and_exports_are_counted(client):
    before = scrape(client)
    assert client.post("/commit", json=OMS_SEED).status_code == 200
    assert client.post("/commit", json=OMS_SEED).status_code == 200
    assert client.get("/export").status_code == 200
    after = scrape(client)
    assert (
        value(after, "joi_oms_messages_total", outcome="new") - value(before, "joi_oms_messages_total", outcome="new")
        == 1
    )
    assert (
        value(after, "joi_oms_messages_total", outcome="duplicate")
        - value(before, "joi_oms_messages_total", outcome="duplicate")
        == 1
    )
    assert value(after, "joi_oms_exports_total") - value(before, "joi_oms_exports_total") == 1


def test_the_pool_gauges_show_the_configured_pool(client):
    page = scrape(client)
    assert value(page, "joi_db_pool_max_connections") == db.POOL_SIZE
    assert value(page, "joi_db_pool_connections", state="in_use") >= 1  # the scrape's own


def test_with_a_metrics_token_the_page_needs_it_as_a_bearer_token(app_with):
    client = app_with(metrics_token="scrape-token-1")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Token scrape-token-1"}):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert refused.headers["content-type"] == "application/problem+json"
        assert "joi_" not in refused.text
    allowed = client.get("/metrics", headers={"Authorization": "Bearer scrape-token-1"})
    assert allowed.status_code == 200 and "joi_build_info" in allowed.text


def test_switched_off_the_page_is_not_found(app_with):
    response = app_with(metrics_enabled=False).get("/metrics")
    assert response.status_code == 404
    assert json.loads(response.text)["status"] == 404
