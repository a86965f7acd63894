"""Fixtures shared by every level: a database per test (SQLite always, PostgreSQL when configured)
and the app built on it with response validation on.

PostgreSQL tests need TEST_DATABASE_URL (e.g. postgresql://postgres@127.0.0.1:5432/test). Without it,
or when the server cannot be reached, they are skipped locally and fail in CI (CI=true).
"""

from __future__ import annotations

import os
import warnings

import psycopg2
import pytest

warnings.filterwarnings("ignore", message=".*httpx2.*")

from app import create_app  # noqa: E402
from config import Config  # noqa: E402
from repository import db  # noqa: E402

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _reset_postgres(url: str) -> None:
    """Drop everything the previous test made: a fresh public schema."""
    connection = psycopg2.connect(url.replace("postgresql+pool://", "postgresql://"), connect_timeout=3)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
    finally:
        connection.close()


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"PostgreSQL is required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.sqlite3'}"
    if not POSTGRES_URL:
        _unavailable("TEST_DATABASE_URL is not set")
    try:
        _reset_postgres(POSTGRES_URL)
    except psycopg2.OperationalError as error:
        _unavailable(f"PostgreSQL at TEST_DATABASE_URL is unreachable: {error}")
    return POSTGRES_URL


@pytest.fixture(autouse=True)
def _tasks_enqueued_stay_in_memory(monkeypatch):
    """What a request enqueues (tasks.start_mailing) goes to a queue of the test's own, never into the
    queue file or Redis database a real worker of this checkout reads."""
    from huey.storage import MemoryStorage

    import tasks

    monkeypatch.setattr(tasks.huey, "storage", MemoryStorage(tasks.huey.name))


@pytest.fixture
def config(database_url) -> Config:
    return Config(database_url=database_url, validate_responses=True)


@pytest.fixture
def app(config):
    application = create_app(config)
    yield application
    db.close_all()


@pytest.fixture
def client(app):
    with app.test_client() as test_client:
        yield test_client


@pytest.fixture
def database(config):
    """The repository layer alone, on a migrated database (integration tests)."""
    from app import prepare_database

    prepare_database(config)
    db.connect()
    yield db.database
    db.close_all()
