"""ASGI fast paths for the service's two hot writes: POST /readings/store (JOI) and
POST /api/v1/datalogger/dsmrreading (a P1 telegram from a data logger).

Connexion's FlaskApp runs every Flask view through a2wsgi in a thread pool; for a one-reading store
those hand-offs took about a third of the process's GIL time, and for a telegram about half of it.
These middlewares sit in Connexion's stack after routing, security and request validation (the body
was checked against the spec and parsed by validation.py, which left it in the scope) and before the
context middleware and Flask. For their one operation each calls the same Flask-free function the
Flask controller calls, in a worker thread, and writes the answer itself; every other request goes
on to Flask.

Errors other than the domain's own answers are not mapped here: a database error propagates to
Connexion's exception middleware, where errors.py turns it into the same problem+json answer the
Flask path gives. Response validation (when enabled) still sees these answers, since its middleware
wraps these.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from config import Config
from controllers.access import caller_in_scope
from controllers.dsmr_v1 import answer_telegram
from controllers.readings import store_readings
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
