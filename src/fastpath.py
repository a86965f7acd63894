"""ASGI fast paths for the service's hot operations: its two hot writes, POST /readings/store (JOI) and
POST /api/v1/datalogger/dsmrreading (a P1 telegram from a data logger), and the JOI customers' reads
(compare-all, recommend and readings/read of a meter).

Connexion's FlaskApp runs every Flask view through a2wsgi in a thread pool; for a one-reading store
those hand-offs took about a third of the process's GIL time, and for a telegram about half of it.
These middlewares sit in Connexion's stack after routing, security and request validation (the body
was checked against the spec and parsed by validation.py, which left it in the scope) and before the
context middleware and Flask. For their operations they call the same Flask-free functions the
Flask controllers call and write the answer themselves: the reads in a worker thread; the stores, on
SQLite, in the event loop's own thread (`db.in_event_loop`, whose group commit waits for the lock and the
disk in threads of its own) and, on PostgreSQL, in a worker thread. Every other request goes
on to Flask (a read with a query value that is not a plain integer goes on too, so that Connexion's
own conversion decides it).

Errors other than the domain's own answers are not mapped here: a database error propagates to
Connexion's exception middleware, where errors.py turns it into the same problem+json answer the
Flask path gives. Response validation (when enabled) still sees these answers, since its middleware
wraps these.

`FrontDoor` goes further for the same operations when responses are not validated (the default): it
sits before Connexion's routing, security and request validation (about half of a telegram's GIL time
under load: py-spy) and recognises the plainest form of each request itself — the exact path, a
urlencoded form with one `telegram` field, a meter id matching the spec's pattern, integer query values
within the spec's bounds. Anything else, including every request it would have to refuse, goes on
unchanged to Connexion, whose answers it therefore never has to imitate. In closed mode the reads keep
the inner path, where Connexion's security has identified the caller.
"""

from __future__ import annotations

import asyncio
import binascii
import concurrent.futures
import contextvars
import math
import re
from collections.abc import Callable
from typing import NamedTuple
from urllib.parse import parse_qsl

import orjson
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
from validation import PARSED_BODY_KEY, PARSED_FORM_KEY, compiled_validator

READINGS_STORE = "controllers.readings.store"
DSMR_TELEGRAM = "controllers.dsmr_v1.create_reading"

# The pool holds db.POOL_SIZE connections. Flask's views run in a2wsgi's 10 threads; the fast paths run
# in a pool of their own sized so that, together, they stay within the connection pool and no request
# has to wait for a connection (or time out with a 503). A plain executor, not Starlette's
# run_in_threadpool: anyio's hand-off (capacity limiter, cancel scopes) cost ~10% of a telegram's GIL time.
A2WSGI_WORKERS = 10
_executor = concurrent.futures.ThreadPoolExecutor(db.POOL_SIZE - A2WSGI_WORKERS, thread_name_prefix="fastpath")


def _operation_id(scope: Scope) -> str | None:
    return scope.get("extensions", {}).get("connexion_routing", {}).get("operation_id")


def _with_connection(work: Callable, *args):
    # A pooled connection for this thread, given back whatever happens (as Flask's
    # before_request / teardown_request do on the other path).
    db.connect()
    try:
        return work(*args)
    finally:
        db.close()


async def _in_thread(work: Callable, *args):
    """work(*args) with a pooled connection in a fast-path thread, in this request's context (its
    request id reaches the log lines written there)."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(_executor, context.run, _with_connection, work, *args)


async def _write(work: Callable, *args):
    """work(*args), a store: on SQLite in the event loop's thread, its writes sharing the loop's group
    commit (db.in_event_loop: no thread of the process then competes with the statements for the GIL while
    they hold the write lock); on PostgreSQL, whose writers wait on the network, in a thread."""
    if db.is_sqlite():
        return await db.in_event_loop(_with_connection, work, *args)
    return await _in_thread(work, *args)


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
        answer = await _write(store_readings, scope[PARSED_BODY_KEY], self.config, who)
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
        await _answer_telegram(send, scope, self.config, scope[PARSED_FORM_KEY].get("telegram"))


async def _answer_telegram(send: Send, scope: Scope, config: Config, telegram: object) -> None:
    headers = Headers(scope=scope)
    status, text, extra = await _write(
        answer_telegram, config, headers.get("x-authkey"), headers.get("authorization"), telegram
    )
    await _answer(send, status, text.encode(), b"text/plain; charset=utf-8", extra)


# Each read's integer query parameters (the inner path gets them validated; the front door bounds them
# as the spec does, see FrontDoor).
READ_OPERATIONS = {
    "controllers.price_plans.compare_all": ("from", "to"),
    "controllers.price_plans.recommend": ("limit", "from", "to"),
    "controllers.readings.read": ("from", "to", "limit", "after"),
}
_ANY_INTEGER = (-(2**63), 2**63 - 1)
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
        names = READ_OPERATIONS.get(operation)
        arguments = None if names is None else _integer_arguments(scope, dict.fromkeys(names, _ANY_INTEGER))
        meter_id = scope.get("path_params", {}).get("smartMeterId")
        if arguments is None or not isinstance(meter_id, str):
            await self.next_app(scope, receive, send)
            return
        await _answer_meter_read(send, scope, self.config, operation, meter_id, arguments)


async def _answer_meter_read(
    send: Send, scope: Scope, config: Config, operation: str, meter_id: str, arguments: dict
) -> None:
    who = caller_in_scope(scope, config)
    if db.is_sqlite():
        # In the event loop, as a sync worker would: a SQLite read in WAL mode waits for no lock, and
        # the queries and arithmetic hold the GIL throughout anyway. Handing them to a thread cost the
        # hand-off and then the GIL's convoy between the loop and the pool (under 8 connections, p99 29
        # ms against 7 ms inline, and a third fewer requests a second). PostgreSQL's round trips wait on
        # the network: those reads keep their thread.
        answer, headers = _with_connection(_meter_read, scope, config, operation, meter_id, arguments, who)
    else:
        answer, headers = await _in_thread(_meter_read, scope, config, operation, meter_id, arguments, who)
    await _answer(send, 200, orjson.dumps(answer, default=json_default), b"application/json", headers)


def _meter_read(scope: Scope, config: Config, operation: str, meter_id: str, arguments: dict, who) -> tuple:
    since, until = arguments.get("from"), arguments.get("to")
    if operation == "controllers.price_plans.compare_all":
        return compare_all_json(meter_id, since, until, config, who), None
    if operation == "controllers.price_plans.recommend":
        return recommend_json(meter_id, arguments.get("limit"), since, until, config, who), None
    return read_readings(meter_id, since, until, arguments.get("limit"), arguments.get("after"), who, _pager(scope))


def _integer_arguments(scope: Scope, bounds: dict[str, tuple[float, float]]) -> dict | None:
    """The query's integer parameters, or None when any value is not a plain integer within its bounds (or
    repeated, or not one of the operation's): those requests take the Flask path and get Connexion's
    conversion and answers."""
    arguments: dict[str, int] = {}
    for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
        if name not in bounds or name in arguments or not _INTEGER.match(value):
            return None
        number = int(value)
        low, high = bounds[name]
        if not low <= number <= high:
            return None
        arguments[name] = number
    return arguments


def _pager(scope: Scope) -> Callable[[int], str]:
    """The next page's URL as Flask's request.base_url and request.args would give it (made only when a
    page has a next one: the URL cost about 6% of an unpaged day's read)."""

    def next_page(after: int) -> str:
        headers = Headers(scope=scope)
        scheme = scope.get("scheme", "http")
        host = get_host(scheme, headers.get("host"), scope.get("server"))
        base = get_current_url(scheme, host, scope.get("root_path", ""), scope.get("path", ""))
        args = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        return page_url(base, args, after)

    return next_page


V1_TELEGRAM_PATH = "/api/v1/datalogger/dsmrreading"
READINGS_STORE_PATH = "/readings/store"
FORM = b"application/x-www-form-urlencoded"
JSON = b"application/json"
# The three reads by path; the meter id is then checked against the spec's own parameter schema.
_METER_READ_PATH = re.compile(r"/(price-plans/compare-all|price-plans/recommend|readings/read)/([^/]+)\Z")
_READ_PATHS = {
    "price-plans/compare-all": "/price-plans/compare-all/{smartMeterId}",
    "price-plans/recommend": "/price-plans/recommend/{smartMeterId}",
    "readings/read": "/readings/read/{smartMeterId}",
}


class _SpecifiedRead(NamedTuple):
    operation: str
    meter_id_schema: dict
    bounds: dict[str, tuple[float, float]]  # the integer query parameters' minimum and maximum


def _specified_read(specification: dict, path: str) -> _SpecifiedRead:
    operation = specification["paths"][path]["get"]
    meter_id_schema, bounds = None, {}
    for parameter in operation["parameters"]:
        schema = parameter["schema"]
        if parameter["in"] == "path":
            meter_id_schema = schema
        elif parameter["in"] == "query" and schema.get("type") == "integer":
            bounds[parameter["name"]] = (schema.get("minimum", -math.inf), schema.get("maximum", math.inf))
    return _SpecifiedRead(operation["operationId"], meter_id_schema, bounds)


class FrontDoor:
    """The hot operations' plainest requests, answered before Connexion routes them (module docstring).
    `specification` is the resolved document the app serves: a JOI store's body is checked against its
    own schema with the same compiled validator Connexion's body validation uses here."""

    def __init__(self, next_app: ASGIApp, *, config: Config, specification: dict) -> None:
        self.next_app = next_app
        self.config = config
        self.open_mode = not config.require_auth
        operation = specification["paths"][READINGS_STORE_PATH]["post"]
        self.store_schema = operation["requestBody"]["content"]["application/json"]["schema"]
        self.reads = {name: _specified_read(specification, path) for name, path in _READ_PATHS.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            method, path = scope["method"], scope["path"]
            if method == "POST" and path == V1_TELEGRAM_PATH:
                await self._telegram(scope, receive, send)
                return
            if method == "POST" and path == READINGS_STORE_PATH and self.open_mode:
                await self._store(scope, receive, send)
                return
            if method == "GET" and self.open_mode and (read := _METER_READ_PATH.match(path)):
                await self._meter_read(scope, receive, send, self.reads[read[1]], read[2])
                return
        await self.next_app(scope, receive, send)

    async def _telegram(self, scope: Scope, receive: Receive, send: Send) -> None:
        if _content_type(scope) != FORM or scope.get("query_string"):  # strict validation refuses a query
            await self.next_app(scope, receive, send)
            return
        message = await receive()
        body = message.get("body", b"") if message["type"] == "http.request" else None
        telegram = None if body is None or message.get("more_body") else _single_telegram_field(body)
        if telegram is None:
            await self.next_app(scope, _replayed(message, receive), send)
            return
        _route(scope, DSMR_TELEGRAM)
        await _answer_telegram(send, scope, self.config, telegram)

    async def _store(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive() if _content_type(scope) == JSON and not scope.get("query_string") else None
        body = _json_body(message)
        if body is None or not compiled_validator(self.store_schema).is_valid(body):
            await self.next_app(scope, receive if message is None else _replayed(message, receive), send)
            return
        _route(scope, READINGS_STORE)
        answer = await _write(store_readings, body, self.config, caller_in_scope(scope, self.config))
        await _answer(send, 200, orjson.dumps(answer, default=json_default), b"application/json")

    async def _meter_read(
        self, scope: Scope, receive: Receive, send: Send, read: _SpecifiedRead, meter_id: str
    ) -> None:
        arguments = _integer_arguments(scope, read.bounds)
        if arguments is None or not compiled_validator(read.meter_id_schema).is_valid(meter_id):
            await self.next_app(scope, receive, send)
            return
        _route(scope, read.operation)
        await _answer_meter_read(send, scope, self.config, read.operation, meter_id, arguments)


def _content_type(scope: Scope) -> bytes | None:
    """The media type the request declares (lowercase, without parameters)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower()
    return None


def _json_body(message: dict | None):
    """The whole body parsed as Connexion's JSON body validator parses it, or None."""
    if message is None or message["type"] != "http.request" or message.get("more_body"):
        return None
    try:
        return orjson.loads(message.get("body", b"")) if message.get("body") else None
    except orjson.JSONDecodeError:
        return None


def _single_telegram_field(body: bytes) -> str | None:
    """The form's one `telegram` value, decoded as Connexion's form parser decodes it (latin-1 bytes,
    then UTF-8 percent escapes); None when the form has none, several, or anything parsers may split
    differently (`;`), so that Connexion decides."""
    if b";" in body:
        return None
    if body.startswith(b"telegram=") and b"&" not in body and body.isascii():
        decoded = _percent_decoded(body[len(b"telegram=") :].replace(b"+", b" "))
        if decoded is not None:
            return decoded
    values = [value for name, value in parse_qsl(body.decode("latin-1"), keep_blank_values=True) if name == "telegram"]
    return values[0] if len(values) == 1 else None


_STRAY_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def _percent_decoded(value: bytes) -> str | None:
    """What urllib's unquote makes of an ASCII form value, decoded in C: with every `%` turned into `=`,
    quoted-printable decoding (binascii.a2b_qp) is exactly percent decoding, provided that the value has
    no `=` of its own and every `%` starts an escape (else None, and unquote decides). unquote's Python loop
    over the escapes took a sixth of a telegram's time in the event loop, a replace per escape 20 us."""
    if b"=" in value or _STRAY_PERCENT.search(value):
        return None
    return binascii.a2b_qp(value.replace(b"%", b"=")).decode("utf-8", "replace")


def _route(scope: Scope, operation_id: str) -> None:
    # What Connexion's routing would have recorded: the request's metrics and access log name the operation.
    scope.setdefault("extensions", {})["connexion_routing"] = {"operation_id": operation_id}


def _replayed(message: dict, receive: Receive) -> Receive:
    pending = [message]

    async def replay() -> dict:
        return pending.pop() if pending else await receive()

    return replay
