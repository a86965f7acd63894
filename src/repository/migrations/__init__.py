"""Versioned schema migrations: each area lists its own, applied once each, in order, and recorded.

A migration is `(name, apply)` where `apply(migrator, database)` may create tables (with model classes
frozen inside the migration, never the live models, so later changes do not rewrite history), alter
them with `playhouse.migrate`, or move data. Names are unique across areas.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

import peewee
from playhouse.migrate import SchemaMigrator

from repository.db import database
from repository.migrations import access, accounts, dsmr, joi, mailings, modbus, oms, silesia
from repository.migrations import tasks as tasks_migrations

Migration = tuple[str, Callable[[SchemaMigrator, peewee.Database], None]]

# Areas in the order they were introduced; a new area appends its module here.
AREAS = [joi, oms, dsmr, tasks_migrations, mailings, accounts, silesia, modbus, access]


class AppliedMigration(peewee.Model):
    name = peewee.CharField(primary_key=True, max_length=200)
    applied_at = peewee.DateTimeField()

    class Meta:
        database = database
        table_name = "schema_migrations"


def all_migrations() -> list[Migration]:
    migrations = [migration for area in AREAS for migration in area.MIGRATIONS]
    names = [name for name, _ in migrations]
    if len(names) != len(set(names)):
        raise RuntimeError(f"duplicate migration names in {names}")
    return migrations


def pending() -> list[str]:
    database.create_tables([AppliedMigration], safe=True)
    applied = {row.name for row in AppliedMigration.select(AppliedMigration.name)}
    return [name for name, _ in all_migrations() if name not in applied]


def migrate() -> list[str]:
    """Apply every pending migration, each in its own transaction. Returns the names applied."""
    todo = set(pending())
    migrator = SchemaMigrator.from_database(database.obj)
    applied = []
    for name, apply in all_migrations():
        if name not in todo:
            continue
        with database.atomic():
            apply(migrator, database.obj)
            AppliedMigration.create(name=name, applied_at=datetime.datetime.now(datetime.UTC))
        applied.append(name)
    return applied
