"""Small key/value facts about the stored data itself (e.g. the gap rule the rollups were built with)."""

from __future__ import annotations

import peewee

from repository.db import BaseModel


class Setting(BaseModel):
    key = peewee.CharField(primary_key=True, max_length=100)
    value = peewee.TextField()

    class Meta:
        table_name = "settings"


def get(key: str) -> str | None:
    row = Setting.get_or_none(Setting.key == key)
    return row.value if row else None


def put(key: str, value: str) -> None:
    Setting.insert(key=key, value=value).on_conflict(conflict_target=[Setting.key], preserve=[Setting.value]).execute()


def put_if_absent(key: str, value: str) -> str:
    """The stored value of `key`, storing `value` first when there is none: of several processes racing,
    the first insert wins and every one of them reads that value back."""
    Setting.insert(key=key, value=value).on_conflict_ignore().execute()
    return get(key)
