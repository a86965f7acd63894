"""ASGI fast paths for the service's hot operations: its two hot writes, POST /readings/store (JOI) and
POST /api/v1/datalogger/dsmrreading (a P1 telegram from a data logger), and the JOI customers' reads
(compare-all, recommend and readings/read of a meter).

Connexion's FlaskApp runs every Flask view through a2wsgi in a thread pool; for a one-reading store
those hand-offs took about a third of the process's GIL time, and for a telegram about half of it.
These middlewares sit in Connexion's stack after routing, security and request validation (the body
was checked against the spec and parsed by validation.py, which left it in the scope) and before the
context middleware and Flask. For their operations they call the same Flask-free functions the
Flask controllers call, in a worker thread, and write the answer themselves; every other request goes
on to Flask (a read with a query value that is not a plain integer goes on too, so that Connexion's
own conversion decides it).

Errors other than the domain's own answers are not mapped here: a database error propagates to
Connexion's exception middleware, where errors.py turns it into the same problem+json answer the
Flask path gives. Response validation (when enabled) still sees these answers, since its middleware
wraps these.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from urllib.parse import parse_qsl

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send
from werkzeug.sansio.utils import get_current_url, get_host

from config import Config
from controllers.access import caller_in_scope
from controllers.dsmr_v1 import answer_telegram
from controllers.price_plans import compare_all_json, recommend_json
from controllers.readings import page_url, read_readings, store_readings
from jsonify import json_default
from repository import db
from validation import PARSED_BODY_KEY, PARSED_FORM_KEY

READINGS_STORE = "controllers.readings.store"
DSMR_TELEGRAM = "controllers.dsmr_v1.create_reading"

# The pool holds db.POOL_SIZE connections. Flask's views run in a2wsgi's 10 threads, but
# run_in_threadpool allows 40, so the fast paths' writes are capped: together with a2wsgi's threads
# they stay within the pool, and no request has to wait for a connection (or time out with a 503).
A2WSGI_WORKERS = 10
_connections = threading.BoundedSemaphore(db.POOL_SIZE - A2WSGI_WORKERS)


def _operation_id(scope: Scope) -> str | None:
    return scope.get("extensions", {}).get("connexion_routing", {}).get("operation_id")


def _with_connection(work: Callable, *args):
    # A pooled connection for this thread, given back whatever happens (as Flask's
    # before_request / teardown_request do on the other path).
    with _connections:
        db.connect()
        try:
            return work(*args)
        finally:
            db.close()


async def _answer(send: Send, status: int, body: bytes, content_type: bytes, headers: dict | None = None) -> None:
    head = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    head += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


class ReadingsStoreFastPath:
    def __init__(self, next_app: ASGIApp, *, config: Config) -> None:
        self.next_app = next_app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or PARSED_BODY_KEY not in scope or _operation_id(scope) != READINGS_STORE:
            await self.next_app(scope, receive, send)
            return
        who = caller_in_scope(scope, self.config)
        answer = await run_in_threadpool(_with_connection, store_readings, scope[PARSED_BODY_KEY], self.config, who)
        await _answer(send, 200, orjson.dumps(answer, default=json_default), b"application/json")


class DsmrTelegramFastPath:
    """v1 answers plain text, as DSMR-reader does (controllers.dsmr_v1.answer_telegram)."""

    def __init__(self, next_app: ASGIApp, *, config: Config) -> None:
        self.next_app = next_app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or PARSED_FORM_KEY not in scope or _operation_id(scope) != DSMR_TELEGRAM:
            await self.next_app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        status, text, extra = await run_in_threadpool(
            _with_connection,
            answer_telegram,
            self.config,
            headers.get("x-authkey"),
            headers.get("authorization"),
            scope[PARSED_FORM_KEY].get("telegram"),
        )
        await _answer(send, status, text.encode(), b"text/plain; charset=utf-8", extra)


READ_OPERATIONS = {
    "controllers.price_plans.compare_all": ("from", "to"),
    "controllers.price_plans.recommend": ("limit", "from", "to"),
    "controllers.readings.read": ("from", "to", "limit", "after"),
}
_INTEGER = re.compile(r"-?[0-9]{1,19}\Z")


class MeterReadsFastPath:
    """compare-all, recommend and readings/read: JSON built by the controllers' Flask-free functions.
    A domain refusal (404, 400) goes to Connexion's exception middleware as a raised error does on the
    Flask path, so errors.py answers it in the JOI shape."""

    def __init__(self, next_app: ASGIApp, *, config: Config) -> None:
        self.next_app = next_app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        operation = _operation_id(scope) if scope["type"] == "http" and scope.get("method") == "GET" else None
        arguments = _integer_arguments(scope, READ_OPERATIONS[operation]) if operation in READ_OPERATIONS else None
        meter_id = scope.get("path_params", {}).get("smartMeterId")
        if arguments is None or not isinstance(meter_id, str):
            await self.next_app(scope, receive, send)
            return
        who = caller_in_scope(scope, self.config)
        answer, headers = await run_in_threadpool(
            _with_connection, self._answer, scope, operation, meter_id, arguments, who
        )
        await _answer(send, 200, orjson.dumps(answer, default=json_default), b"application/json", headers)

    def _answer(self, scope: Scope, operation: str, meter_id: str, arguments: dict, who) -> tuple:
        since, until = arguments.get("from"), arguments.get("to")
        if operation == "controllers.price_plans.compare_all":
            return compare_all_json(meter_id, since, until, self.config, who), None
        if operation == "controllers.price_plans.recommend":
            return recommend_json(meter_id, arguments.get("limit"), since, until, self.config, who), None
        return read_readings(meter_id, since, until, arguments.get("limit"), arguments.get("after"), who, _pager(scope))


def _integer_arguments(scope: Scope, names: tuple[str, ...]) -> dict | None:
    """The query's integer parameters, or None when any value is not a plain integer (or repeated, or not
    one of `names`): those requests take the Flask path and get Connexion's conversion and answers."""
    arguments: dict[str, int] = {}
    for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
        if name not in names or name in arguments or not _INTEGER.match(value):
            return None
        arguments[name] = int(value)
    return arguments


def _pager(scope: Scope) -> Callable[[int], str]:
    """The next page's URL as Flask's request.base_url and request.args would give it."""
    headers = Headers(scope=scope)
    scheme = scope.get("scheme", "http")
    host = get_host(scheme, headers.get("host"), scope.get("server"))
    base = get_current_url(scheme, host, scope.get("root_path", ""), scope.get("path", ""))
    args = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    return lambda after: page_url(base, args, after)
