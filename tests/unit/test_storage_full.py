"""A full disk is told apart from a database that cannot be reached, also when a failed rollback hides it."""

import sqlite3

import peewee

from errors import storage_full
from repository.db import unmasked


def wrapped(driver_error: Exception) -> peewee.OperationalError:
    """As peewee re-raises a driver's error: the original kept as `orig`, its arguments as its own."""
    return peewee.OperationalError(driver_error, *driver_error.args)


def rollback_failure_after(error: Exception) -> Exception:
    """What peewee raises when SQLite had already rolled the transaction back itself."""
    try:
        try:
            raise error
        except Exception:  # raised while handling it, as peewee's rollback does
            raise wrapped(sqlite3.OperationalError("cannot rollback - no transaction is active"))  # noqa: B904
    except peewee.OperationalError as masking:
        return masking


def test_sqlite_full_is_storage_full_even_behind_the_failed_rollback():
    full = wrapped(sqlite3.OperationalError("database or disk is full"))
    assert storage_full(full)
    assert storage_full(rollback_failure_after(full))
    assert unmasked(rollback_failure_after(full)) is full


def test_an_unreachable_or_locked_database_is_not_storage_full():
    assert not storage_full(peewee.OperationalError("connection to server at 127.0.0.1 failed: Connection refused"))
    assert not storage_full(rollback_failure_after(wrapped(sqlite3.OperationalError("database is locked"))))
    assert not storage_full(peewee.InterfaceError("connection already closed"))
