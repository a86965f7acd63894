"""Named leases in the database: at most one holder per name at a time, until the lease expires.

`try_acquire(name, holder, ttl_seconds)` takes a free or expired lease, or renews one the holder already
has, and says whether the holder has it now; `release(name, holder)` gives it up at once. Both are one
conditional statement each, so they are atomic on SQLite (one writer at a time) and on PostgreSQL (a
concurrent UPDATE of the same row waits and re-checks its WHERE; a concurrent INSERT of the same name
conflicts and does nothing). Times are naive UTC from the caller's clock: the processes that share a
lease must share a clock (one machine, or NTP), and a TTL of seconds tolerates the usual skew.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import peewee

from repository.db import BaseModel, write_transaction


class LeaseRow(BaseModel):
    name = peewee.CharField(primary_key=True, max_length=200)
    holder = peewee.CharField(max_length=200)
    expires_at = peewee.DateTimeField()

    class Meta:
        table_name = "leases"


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def try_acquire(name: str, holder: str, ttl_seconds: float, *, now: datetime | None = None) -> bool:
    """Take or renew the lease `name` for `holder` until now + ttl_seconds. True when holder has it."""
    now = now or _utcnow()
    expires_at = now + timedelta(seconds=ttl_seconds)
    with write_transaction():
        taken = (
            LeaseRow.update(holder=holder, expires_at=expires_at)
            .where(
                (LeaseRow.name == name) & ((LeaseRow.holder == holder) | (LeaseRow.expires_at <= now)),
            )
            .execute()
        )
        if taken:
            return True
        inserted = (
            LeaseRow.insert(name=name, holder=holder, expires_at=expires_at)
            .on_conflict_ignore()
            .as_rowcount()
            .execute()
        )
        return bool(inserted)


def release(name: str, holder: str) -> bool:
    """Give the lease up (only its holder can). True when it was held by holder."""
    with write_transaction():
        return bool(LeaseRow.delete().where((LeaseRow.name == name) & (LeaseRow.holder == holder)).execute())


def holder_of(name: str, *, now: datetime | None = None) -> str | None:
    """Who holds the lease now (None when free or expired)."""
    now = now or _utcnow()
    row = LeaseRow.get_or_none((LeaseRow.name == name) & (LeaseRow.expires_at > now))
    return row.holder if row else None
