"""Response builders. Operations that document JSON and problem+json answers must say which one they
send, so controllers answer through these instead of bare dicts (orjson also makes them faster)."""

from __future__ import annotations

import orjson
from flask import Response

from jsonify import json_default


def json_response(body, status: int = 200, headers: dict | None = None) -> Response:
    return Response(
        orjson.dumps(body, default=json_default), status=status, headers=headers, mimetype="application/json"
    )
