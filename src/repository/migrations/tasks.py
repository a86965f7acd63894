"""Schema of the task queue's own state: named leases (the scheduler's, and any other once-per-deployment work)."""

from __future__ import annotations

import peewee


def _leases(migrator, db: peewee.Database) -> None:
    class Lease(peewee.Model):
        name = peewee.CharField(primary_key=True, max_length=200)
        holder = peewee.CharField(max_length=200)
        expires_at = peewee.DateTimeField()  # naive UTC

        class Meta:
            database = db
            table_name = "leases"

    db.create_tables([Lease])


MIGRATIONS = [
    ("tasks_0001_leases", _leases),
]
