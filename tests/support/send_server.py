"""A stand-in for the external send API ("Probe Server") on 127.0.0.1, for tests and the benchmark.

An ASGI app served by uvicorn in a thread. `POST /<base>/send/<message id>` answers per phone, by the
behaviour configured for it as (kind, n): the first n requests for that phone get the kind's answer, later
ones 200 {"code": 0, "message": "OK"} (the default for every phone), all after `delay` seconds. Kinds:
"http500"; "wrong_code" (200 {"code": 7}); "broken_json" (200 with a body that is not JSON); "hang" (no
answer for `hang_seconds`: the client must have given up by then).
Every request is recorded (arrival time, path, message id, body, Authorization header, answer). A request
cut off before its body was complete is recorded as "disconnected" and one that is not a send request is
answered 400: neither counts as accepted.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass, field

import uvicorn

OK = b'{"code": 0, "message": "OK"}'


@dataclass
class Received:
    at: float  # time.time() on arrival
    path: str
    message_id: int | None
    body: dict | None
    authorization: str | None
    answered: str = ""


@dataclass
class SendServer:
    behaviours: dict[str, object] = field(default_factory=dict)
    delay: float = 0.0
    hang_seconds: float = 30.0
    received: list[Received] = field(default_factory=list)
    _counts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        headers = dict(scope["headers"])
        record = Received(
            time.time(), scope["path"], None, None, (headers.get(b"authorization") or b"").decode() or None
        )
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                # The sender died before its request was complete (a killed worker): nothing was accepted.
                record.answered = "disconnected"
                with self._lock:
                    self.received.append(record)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        try:
            record.body = json.loads(b"".join(chunks))
            record.message_id = int(scope["path"].rsplit("/", 1)[1])
        except (ValueError, IndexError):
            record.answered = "400 not a send request"
            with self._lock:
                self.received.append(record)
            await send({"type": "http.response.start", "status": 400, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        phone = str((record.body or {}).get("phone"))
        with self._lock:
            self.received.append(record)
            self._counts[phone] = count = self._counts.get(phone, 0) + 1
        kind, times = self.behaviours.get(phone, ("ok", 0))
        if self.delay:
            await asyncio.sleep(self.delay)
        status, body = 200, OK
        if count <= times:
            if kind == "http500":
                status, body = 500, b'{"error": "try later"}'
            elif kind == "wrong_code":
                body = b'{"code": 7, "message": "no"}'
            elif kind == "broken_json":
                body = b'{"code": 0, "mess'
            elif kind == "hang":
                await asyncio.sleep(self.hang_seconds)
                body = b'{"code": 0, "message": "too late"}'
        record.answered = f"{status} {body.decode()}"
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
        )
        await send({"type": "http.response.body", "body": body})

    def sent_ok(self) -> list[Received]:
        """The requests the server accepted (answered 200 code 0)."""
        return [r for r in self.received if r.answered == f"200 {OK.decode()}"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Running:
    """Serve `app` on 127.0.0.1:<free port> in a thread; `url` is the send API base (with a path)."""

    def __init__(self, app: SendServer, base_path: str = "/v1"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}{base_path}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Running:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the send server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
