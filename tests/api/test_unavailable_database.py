"""A database that cannot be reached is a 503 that says so, never a 500."""

import pytest

from app import create_app
from config import Config
from repository import db


@pytest.fixture
def offline_client():
    app = create_app(Config(database_url="postgresql://postgres@127.0.0.1:1/none", auto_migrate=False))
    with app.test_client() as client:
        yield client
    db.close_all()


def test_health_is_503_when_the_database_does_not_answer(offline_client):
    response = offline_client.get("/health")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"


def test_a_read_is_503_with_a_retry_hint_when_the_database_does_not_answer(offline_client):
    response = offline_client.get("/readings/read/smart-meter-0")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"


def test_a_store_is_503_with_a_retry_hint_when_the_database_does_not_answer(offline_client):
    body = {"smartMeterId": "smart-meter-0", "electricityReadings": [{"time": 1606636800, "reading": 0.05}]}
    response = offline_client.post("/readings/store", json=body)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"


def test_the_pages_answer_a_503_page_with_a_retry_hint_when_the_database_does_not_answer(offline_client):
    for path in ["/", "/login", "/dashboard/meters/smart-meter-0"]:
        response = offline_client.get(path)
        assert response.status_code == 503, path
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers["retry-after"] == "5"
