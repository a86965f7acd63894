"""The PostgreSQL pool (repository.db._PostgresPool) hands out a connection given back cleanly moments ago
without a `SELECT 1`, and still checks one that sat idle longer, replacing it when it died meanwhile."""

import psycopg2
import pytest

from repository import db


@pytest.fixture
def pool(database_url, monkeypatch):
    if database_url.startswith("sqlite"):
        pytest.skip("the PostgreSQL pool")
    opened = db.open_database(database_url)
    pings = []
    check = opened._adapter.is_connection_closed
    monkeypatch.setattr(opened._adapter, "is_connection_closed", lambda conn: (pings.append(conn), check(conn))[1])
    yield opened, pings
    db.close_all()


def backend_pid() -> int:
    return db.database.execute_sql("SELECT pg_backend_pid()").fetchone()[0]


def test_a_connection_given_back_moments_ago_is_handed_out_again_without_a_ping(pool):
    _, pings = pool
    db.connect()
    first = backend_pid()
    db.close()
    db.connect()
    assert backend_pid() == first
    db.close()
    assert pings == []


def test_a_connection_idle_for_longer_is_pinged_and_replaced_when_it_died_meanwhile(pool, monkeypatch, database_url):
    _, pings = pool
    db.connect()
    dead = backend_pid()
    db.close()
    with psycopg2.connect(database_url) as other, other.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", (dead,))
    monkeypatch.setattr(db._PostgresPool, "PING_AFTER_IDLE_SECONDS", 0.0)  # as if it sat in the pool a while

    db.connect()
    assert backend_pid() != dead
    db.close()
    assert len(pings) == 1
