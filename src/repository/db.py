"""The database handle. Every other module reaches the database through this proxy."""

from __future__ import annotations

import contextlib
from pathlib import Path
from urllib.parse import urlparse

import peewee
from playhouse import db_url

database = peewee.DatabaseProxy()

# Errors that mean "the database cannot be reached or is busy", answered 503, never 500.
UNAVAILABLE_ERRORS = (peewee.OperationalError, peewee.InterfaceError)


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


POOL_SIZE = 32


def pooled_url(url: str) -> str:
    """sqlite:// and postgresql:// become their playhouse.pool variants: each request borrows a
    connection and gives it back, so no thread holds one between requests."""
    scheme, rest = url.split("://", 1)
    return url if "+pool" in scheme else f"{scheme}+pool://{rest}"


def open_database(url: str, *, sqlite_synchronous: str = "FULL") -> peewee.Database:
    """Open the database at a `playhouse.db_url` URL and point the shared proxy at it."""
    scheme = urlparse(url).scheme
    if scheme.startswith("sqlite"):
        path = db_url.parse(url).get("database") or ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = db_url.connect(
            pooled_url(url),
            max_connections=POOL_SIZE,
            stale_timeout=300,
            check_same_thread=False,
            pragmas={
                "journal_mode": "wal",
                "busy_timeout": 10_000,
                "synchronous": sqlite_synchronous,
                "foreign_keys": 1,
                "cache_size": -32_000,
            },
        )
    else:
        db = db_url.connect(pooled_url(url), max_connections=POOL_SIZE, stale_timeout=300)
    database.initialize(db)
    return db


def is_sqlite() -> bool:
    return isinstance(database.obj, peewee.SqliteDatabase)


def write_transaction():
    """A transaction that takes the write lock up front on SQLite.

    A deferred SQLite transaction that reads and then writes fails at once with "database is locked"
    when another process wrote in between; IMMEDIATE waits on busy_timeout instead.
    """
    if is_sqlite():
        return database.atomic("IMMEDIATE")
    return database.atomic()


def ping() -> bool:
    try:
        database.execute_sql("SELECT 1").fetchone()
        return True
    except UNAVAILABLE_ERRORS:
        with contextlib.suppress(Exception):
            database.close()
        return False


def connect() -> None:
    database.connect(reuse_if_open=True)


def close() -> None:
    """Give this thread's connection back to the pool."""
    if not database.is_closed():
        database.close()


def close_all() -> None:
    close()
    database.close_all()
