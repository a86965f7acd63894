"""An ASGI fast path for POST /readings/store, the service's hot write.

Connexion's FlaskApp runs every Flask view through a2wsgi in a thread pool; for a one-reading store
those hand-offs took about a third of the process's GIL time. This middleware sits in Connexion's
stack after routing, security and request validation (the body was checked against the spec and
parsed by validation.py, which left it in the scope) and before the context middleware and Flask.
For that one operation it calls the same Flask-free function the Flask controller calls
(controllers.readings.store_readings) in a worker thread and writes the answer itself; every other
request goes on to Flask.

Errors are not mapped here: a DomainError or a database error propagates to Connexion's exception
middleware, where errors.py turns it into the same problem+json answer the Flask path gives. Response
validation (when enabled) still sees this answer, since its middleware wraps this one.
"""

from __future__ import annotations

import threading

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from config import Config
from controllers.access import caller_in_scope
from controllers.readings import store_readings
from domain.access import Caller
from jsonify import json_default
from repository import db
from validation import PARSED_BODY_KEY

OPERATION_ID = "controllers.readings.store"

# The pool holds db.POOL_SIZE connections. Flask's views run in a2wsgi's 10 threads, but
# run_in_threadpool allows 40, so the fast path's stores are capped: together with a2wsgi's threads
# they stay within the pool, and no request has to wait for a connection (or time out with a 503).
A2WSGI_WORKERS = 10
_connections = threading.BoundedSemaphore(db.POOL_SIZE - A2WSGI_WORKERS)


class ReadingsStoreFastPath:
    def __init__(self, next_app: ASGIApp, *, config: Config) -> None:
        self.next_app = next_app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or PARSED_BODY_KEY not in scope
            or scope.get("extensions", {}).get("connexion_routing", {}).get("operation_id") != OPERATION_ID
        ):
            await self.next_app(scope, receive, send)
            return
        answer = await run_in_threadpool(self._store, scope[PARSED_BODY_KEY], caller_in_scope(scope, self.config))
        body = orjson.dumps(answer, default=json_default)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _store(self, body: dict, who: Caller) -> dict:
        # A pooled connection for this thread, given back whatever happens (as Flask's
        # before_request / teardown_request do on the other path).
        with _connections:
            db.connect()
            try:
                return store_readings(body, self.config, who)
            finally:
                db.close()
