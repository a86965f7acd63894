"""The request-limits middleware alone (src/limits.py), driven with ASGI messages."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from limits import RequestLimits

BOUND = 1000


def scope(path: str = "/readings/store", method: str = "POST", headers: list | None = None) -> dict:
    return {"type": "http", "method": method, "path": path, "headers": headers or []}


class Client:
    """The client side of one request: the body messages it sends, and what it was answered."""

    def __init__(self, chunks: list[bytes] | None = None, *, stall: bool = False) -> None:
        self.messages = [
            {"type": "http.request", "body": chunk, "more_body": stall or index < len(chunks) - 1}
            for index, chunk in enumerate(chunks or [])
        ]
        self.stall = stall
        self.received = 0
        self.sent: list[dict] = []

    async def receive(self) -> dict:
        if self.received < len(self.messages):
            self.received += 1
            return self.messages[self.received - 1]
        if self.stall:
            await asyncio.Event().wait()  # a client that sends no more
        return {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int | None:
        return self.sent[0]["status"] if self.sent else None

    @property
    def headers(self) -> dict:
        return {name: value for name, value in self.sent[0]["headers"]}

    @property
    def body(self) -> bytes:
        return b"".join(message.get("body", b"") for message in self.sent[1:])


class Recorder:
    """An inner app that reads its whole body and answers 200; `gate`, when given, holds it until set."""

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.bodies: list[bytes] = []
        self.gate = gate
        self.started = 0

    async def __call__(self, scope, receive, send) -> None:
        self.started += 1
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        if self.gate is not None:
            await self.gate.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def limits(inner, *, timeout: float = 5.0, concurrent: int = 10) -> RequestLimits:
    return RequestLimits(inner, max_body_bytes=BOUND, body_timeout_seconds=timeout, max_concurrent_requests=concurrent)


def run(middleware, request_scope: dict, client: Client) -> Client:
    asyncio.run(middleware(request_scope, client.receive, client.send))
    return client


def test_a_declared_length_over_the_bound_answers_413_before_any_byte_is_read():
    inner = Recorder()
    client = run(limits(inner), scope(headers=[(b"content-length", b"1001")]), Client([b"x" * 1001]))
    assert client.status == 413
    assert client.received == 0
    assert inner.started == 0
    assert client.headers[b"connection"] == b"close"
    assert orjson.loads(client.body) == {
        "type": "about:blank",
        "title": "Content Too Large",
        "detail": "the request body is larger than 1000 bytes",
        "status": 413,
    }


def test_a_chunked_body_is_cut_off_at_the_bound_with_413():
    inner = Recorder()
    chunks = [b"x" * 400] * 10
    client = run(limits(inner), scope(headers=[(b"transfer-encoding", b"chunked")]), Client(chunks))
    assert client.status == 413
    assert client.received == 3  # 1,200 bytes: the third chunk crossed the bound, nothing after it was read
    assert inner.started == 0


def test_a_body_at_the_bound_reaches_the_app_whole_as_one_message():
    inner = Recorder()
    chunks = [b"a" * 500, b"b" * 500]
    client = run(limits(inner), scope(headers=[(b"transfer-encoding", b"chunked")]), Client(chunks))
    assert client.status == 200
    assert inner.bodies == [b"a" * 500 + b"b" * 500]


def test_a_body_that_does_not_arrive_in_time_answers_408_and_closes():
    inner = Recorder()
    client = Client([b"{"], stall=True)
    run(limits(inner, timeout=0.05), scope(headers=[(b"content-length", b"100")]), client)
    assert client.status == 408
    assert client.headers[b"connection"] == b"close"
    assert inner.started == 0


def test_refusals_take_the_shape_of_the_area_the_request_was_for():
    too_long = [(b"content-length", b"5000")]
    v1 = run(limits(Recorder()), scope("/api/v1/datalogger/dsmrreading", headers=too_long), Client())
    assert v1.headers[b"content-type"].startswith(b"text/plain")
    assert v1.body == b"the request body is larger than 1000 bytes"
    v2 = run(limits(Recorder()), scope("/api/v2/datalogger/dsmrreading", headers=too_long), Client())
    assert v2.headers[b"content-type"] == b"application/json"
    assert orjson.loads(v2.body) == {"detail": "the request body is larger than 1000 bytes"}


def test_a_request_without_a_body_passes_without_its_channel_being_read():
    inner = Recorder()
    client = run(limits(inner), scope("/health", "GET"), Client([b""]))
    assert client.status == 200
    assert client.received == 1  # by the app, not before it


def test_a_client_that_leaves_while_sending_its_body_gets_no_answer():
    inner = Recorder()
    client = Client([b"x" * 10, b"y" * 10])
    client.messages[-1]["more_body"] = True  # then the channel reports the disconnect
    run(limits(inner), scope(headers=[(b"transfer-encoding", b"chunked")]), client)
    assert client.sent == []
    assert inner.started == 0


def test_past_the_concurrency_bound_a_request_answers_503_with_retry_after_at_once():
    async def scenario():
        gate = asyncio.Event()
        inner = Recorder(gate)
        middleware = limits(inner, concurrent=2)
        held = [Client([b"{}"]) for _ in range(2)]
        tasks = [
            asyncio.create_task(middleware(scope(headers=[(b"content-length", b"2")]), c.receive, c.send)) for c in held
        ]
        while inner.started < 2:
            await asyncio.sleep(0)
        refused = Client([b"{}"])
        await middleware(scope(headers=[(b"content-length", b"2")]), refused.receive, refused.send)
        metrics = Client([b""])
        metrics_task = asyncio.create_task(middleware(scope("/metrics", "GET"), metrics.receive, metrics.send))
        while inner.started < 3:
            await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(*tasks, metrics_task)
        after = Client([b"{}"])
        await middleware(scope(headers=[(b"content-length", b"2")]), after.receive, after.send)
        return held, refused, metrics, after, middleware

    held, refused, metrics, after, middleware = asyncio.run(scenario())
    assert refused.status == 503
    assert refused.headers[b"retry-after"] == b"1"
    assert orjson.loads(refused.body)["status"] == 503
    assert [client.status for client in held] == [200, 200]
    assert metrics.status == 200  # monitoring is not counted against the bound
    assert after.status == 200  # the slots were given back
    assert middleware.running == 0


def test_the_limits_settings_are_read_from_the_environment_and_checked(monkeypatch):
    from config import Config

    monkeypatch.setenv("MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("MAX_CONCURRENT_REQUESTS", "5")
    config = Config.from_env()
    assert (config.max_body_bytes, config.max_concurrent_requests) == (2048, 5)
    assert (config.body_timeout_seconds, config.header_timeout_seconds) == (30.0, 10.0)
    for bad in ({"max_body_bytes": 10}, {"max_concurrent_requests": 0}, {"body_timeout_seconds": 0}):
        with pytest.raises(ValueError):
            Config(**bad)


def test_a_request_cancelled_by_the_server_while_its_body_is_read_is_not_answered_408():
    async def scenario():
        client = Client([b"{"], stall=True)
        middleware = limits(Recorder(), timeout=60)
        task = asyncio.create_task(
            middleware(scope(headers=[(b"content-length", b"100")]), client.receive, client.send)
        )
        while client.received < 1:
            await asyncio.sleep(0)
        task.cancel()  # as uvicorn does when it shuts down
        with pytest.raises(asyncio.CancelledError):
            await task
        return client, middleware

    client, middleware = asyncio.run(scenario())
    assert client.sent == []
    assert middleware.deadlines.reading == {}
