"""orjson behind Connexion's Jsonifier: several times faster than the standard json module."""

from __future__ import annotations

import datetime
import decimal

import orjson
from connexion.jsonifier import Jsonifier


def json_default(value):
    if isinstance(value, decimal.Decimal):
        # Money and meter positions are formatted as strings by the controllers; a stray Decimal must
        # never become a lossy float silently, so it is written exactly.
        return str(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


class _OrjsonModule:
    @staticmethod
    def dumps(value, **_ignored) -> str:
        return orjson.dumps(value, default=json_default).decode()

    @staticmethod
    def loads(text, **_ignored):
        return orjson.loads(text)


def jsonifier() -> Jsonifier:
    return Jsonifier(_OrjsonModule)
