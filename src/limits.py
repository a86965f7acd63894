"""Bounds on what one client can make a web process hold (OWASP API4), README "Limits".

`RequestLimits`, an ASGI middleware just inside the request observation (so its refusals are logged and
counted), runs before Connexion reads anything:

- a declared Content-Length over MAX_BODY_BYTES answers 413 at once, unread; a body without one (chunked)
  is counted as it arrives and cut off with a 413 at the bound. Either way the connection is closed, so
  the server does not go on reading the rest.
- the body must be all there BODY_TIMEOUT_SECONDS after the headers, else 408 (a client trickling it
  byte by byte is cut off). Only then is the request handed on: a slow client holds no thread, no
  database connection and no slot of the next bound, only the bytes it sent.
- at most MAX_CONCURRENT_REQUESTS requests run in a process at once; the next one answers 503 with
  Retry-After immediately instead of queueing for Flask's threads with its body in memory.

The body is read here whole (it is at most MAX_BODY_BYTES) and handed on as one message; every handler
here reads it whole anyway.

Headers never reach the application: uvicorn (0.54) parses them in its event loop and times out only
idle keep-alive connections, never a connection that trickles its headers. `HeaderTimeoutHttpToolsProtocol`
is uvicorn's httptools protocol with that bound added (HEADER_TIMEOUT_SECONDS); `src/serve.py` selects it
with `--http limits:HeaderTimeoutHttpToolsProtocol`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools

from connexion import FlaskApp
from connexion.middleware import MiddlewarePosition
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

import errors
from config import Config

# Scraped by monitoring, which most needs an answer when the process is saturated; it is cheap.
NOT_COUNTED_PATHS = frozenset({"/metrics"})
RETRY_AFTER_SECONDS = b"1"
CLOSE = (b"connection", b"close")


class BodyTooLarge(Exception):
    pass


class BodyTimedOut(Exception):
    pass


class BodyDeadlines:
    """The body deadline of every request whose body is being read, enforced by one sweep a second (a
    tenth of the bound when that is shorter) instead of a timer per request: asyncio.timeout() schedules
    and cancels a timer for each, which cost more than the rest of this middleware. A body is cut off
    between its deadline and one sweep after it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.sweep_every = min(1.0, seconds / 10)
        self.reading: dict[asyncio.Task, float] = {}
        self.expired: set[asyncio.Task] = set()
        self.sweeping_on: asyncio.AbstractEventLoop | None = None  # the loop a sweep is scheduled on

    @contextlib.contextmanager
    def bound(self):
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        self.reading[task] = loop.time() + self.seconds
        if self.sweeping_on is not loop:
            self.sweeping_on = loop
            loop.call_later(self.sweep_every, self._sweep, loop)
        try:
            yield
        except asyncio.CancelledError:
            if task not in self.expired:
                raise
            task.uncancel()
            raise BodyTimedOut from None
        finally:
            del self.reading[task]
            self.expired.discard(task)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for task, deadline in self.reading.items():
            if deadline <= now and task not in self.expired:
                self.expired.add(task)
                task.cancel()
        if self.reading and self.sweeping_on is loop:
            loop.call_later(self.sweep_every, self._sweep, loop)
        elif self.sweeping_on is loop:
            self.sweeping_on = None


def body_framing(scope: Scope) -> tuple[bool, int | None]:
    """Whether the request has a body (a Content-Length or Transfer-Encoding header), and its declared
    length (None when chunked; uvicorn refuses a malformed Content-Length)."""
    has_body, declared = False, None
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            has_body = True
            with contextlib.suppress(ValueError):
                declared = int(value)
        elif name == b"transfer-encoding":
            has_body = True
    return has_body, declared


class RequestLimits:
    def __init__(
        self,
        next_app: ASGIApp,
        *,
        max_body_bytes: int,
        body_timeout_seconds: float,
        max_concurrent_requests: int,
    ) -> None:
        self.next_app = next_app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_seconds = body_timeout_seconds
        self.max_concurrent_requests = max_concurrent_requests
        self.running = 0  # one event loop per process: no lock needed
        self.deadlines = BodyDeadlines(body_timeout_seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.next_app(scope, receive, send)
            return
        has_body, declared = body_framing(scope)
        if has_body:
            if declared is not None and declared > self.max_body_bytes:
                await self._too_large(scope, send)
                return
            try:
                with self.deadlines.bound():
                    body = await self._read_body(receive)
            except BodyTooLarge:
                await self._too_large(scope, send)
                return
            except BodyTimedOut:
                detail = f"the request body did not arrive within {self.body_timeout_seconds:g} seconds"
                await refuse(scope, send, 408, "Request Timeout", detail, [CLOSE])
                return
            if body is None:  # the client went away
                return
            receive = _replayed(body, receive)
        if self.running >= self.max_concurrent_requests and scope.get("path") not in NOT_COUNTED_PATHS:
            detail = "the server is at its limit of requests running at once; nothing was changed. Retry shortly."
            await refuse(scope, send, 503, "Service Unavailable", detail, [(b"retry-after", RETRY_AFTER_SECONDS)])
            return
        self.running += 1
        try:
            await self.next_app(scope, receive, send)
        finally:
            self.running -= 1

    async def _read_body(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        detail = f"the request body is larger than {self.max_body_bytes} bytes"
        await refuse(scope, send, 413, "Content Too Large", detail, [CLOSE])


def _replayed(body: bytes, receive: Receive) -> Receive:
    """The body as one message, then the client's own channel (for its disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


async def refuse(scope: Scope, send: Send, status: int, title: str, detail: str, extra_headers: list) -> None:
    content_type, body = errors.refusal(scope.get("path", ""), status, title, detail)
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *extra_headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def install(app: FlaskApp, config: Config) -> None:
    """Called by create_app after observability.install, so it sits just inside the observation."""
    app.add_middleware(
        RequestLimits,
        position=MiddlewarePosition.BEFORE_EXCEPTION,
        max_body_bytes=config.max_body_bytes,
        body_timeout_seconds=config.body_timeout_seconds,
        max_concurrent_requests=config.max_concurrent_requests,
    )


# ------------------------------------------------------------------------------------ slow headers


def _request_timeout_response() -> bytes:
    body = b"the request headers did not arrive in time"
    return (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
        + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
        + body
    )


@functools.cache
def header_timeout_seconds() -> float:
    return Config.from_env().header_timeout_seconds


class HeaderTimeoutHttpToolsProtocol(HttpToolsProtocol):
    """A connection's request headers must be complete HEADER_TIMEOUT_SECONDS after it opened (its first
    request) or after the request's first byte (later ones; the idle time between requests is uvicorn's
    keep-alive timeout). Past that a started request gets a 408 and the connection is closed."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._request_begun = False

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._request_begun = True
        if self._header_timer is None:
            self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        self._request_begun = False
        super().on_headers_complete()

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(header_timeout_seconds(), self._headers_timed_out)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False  # a pipelined request trickles behind one being answered
            return
        if self._request_begun:
            self.transport.write(_request_timeout_response())
        self.transport.close()
