"""Section 8: a fleet of P1 data loggers, each posting on its own clock (an open loop, not as fast as the
server answers): 1,000 installations, each with its own key and meter, post a telegram every 10 s for
60 s (v1, form posts of v5 telegrams with gas), then a reading every 10 s for 60 s (v2, JSON).

    result = run(meters=1000, every=10, seconds=60, api="v1")

Latency counts from the moment a request was due, so a server that falls behind shows it (no coordinated
omission). Afterwards every telegram must be stored and `verify-statistics` must find the stored statistics
equal to a full recomputation from the readings.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import random
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass

import loadgen
import servers

CONNECTIONS = 64


@dataclass
class FleetResult:
    api: str
    sent: int
    created: int
    bad: int
    first_bad: int | None
    errors: int
    seconds: float
    latency_ms: dict
    stored: int
    verified: str


def _keys(meters: int) -> list[str]:
    return [f"fleet-{index:04d}-{random.SystemRandom().getrandbits(64):016x}" for index in range(meters)]


def make_installations(database_url: str, keys: list[str]) -> None:
    """One installation per key, made through the repository before the server starts."""
    from app import prepare_database
    from config import Config
    from domain.dsmr import hash_api_key
    from repository import db
    from repository import dsmr as dsmr_repo

    prepare_database(Config.from_env(database_url=database_url))
    db.open_database(database_url, sqlite_synchronous="OFF")
    db.connect()
    try:
        for index, key in enumerate(keys):
            dsmr_repo.set_key(f"fleet-{index:04d}", hash_api_key(key), replace=False)
    finally:
        db.close_all()


def _v1_body(index: int, step: int, moment: datetime.datetime) -> bytes:
    from tests.support.telegrams import make_telegram

    text = make_telegram(
        "v5",
        random.Random(index),
        timestamp=moment,
        equipment_id=f"E{index:016d}",
        electricity_delivered_1=_register(index, step, 1),
        electricity_delivered_2=_register(index, step, 2),
        electricity_returned_1=_register(index, step, 3),
        electricity_returned_2=_register(index, step, 4),
        gas_delivered=_register(index, step, 5),
        second_channel=None,
    )
    return ("telegram=" + urllib.parse.quote(text)).encode()


def _v2_body(index: int, step: int, moment: datetime.datetime) -> bytes:
    reading = {
        "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "electricity_delivered_1": str(_register(index, step, 1)),
        "electricity_delivered_2": str(_register(index, step, 2)),
        "electricity_returned_1": str(_register(index, step, 3)),
        "electricity_returned_2": str(_register(index, step, 4)),
        "electricity_currently_delivered": "1.000",
        "electricity_currently_returned": "0.000",
    }
    return json.dumps(reading).encode()


def _register(index: int, step: int, register: int):
    from decimal import Decimal

    return Decimal(1000 * register + index) + Decimal(step * (register * 7 + index % 13)) / 1000


async def _send(url: str, schedule: list[tuple[float, bytes]], api: str, timeout_s: float = 30) -> dict:
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname, parts.port
    path = "/api/v1/datalogger/dsmrreading" if api == "v1" else "/api/v2/datalogger/dsmrreading"
    content_type = "application/x-www-form-urlencoded" if api == "v1" else "application/json"
    pool: asyncio.Queue = asyncio.Queue()
    for _ in range(CONNECTIONS):
        pool.put_nowait(await asyncio.open_connection(host, port))
    state = {"created": 0, "bad": 0, "first_bad": None, "errors": 0}
    latencies: list[float] = []
    started = time.perf_counter()

    async def one(due: float, key_and_body: tuple[str, bytes]) -> None:
        await asyncio.sleep(max(0.0, started + due - time.perf_counter()))
        key, body = key_and_body
        reader, writer = await pool.get()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nX-AUTHKEY: {key}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        try:
            writer.write(head.encode() + body)
            status = await asyncio.wait_for(loadgen._read_response(reader), timeout_s)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            state["errors"] += 1
            writer.close()
            pool.put_nowait(await asyncio.open_connection(host, port))
            return
        pool.put_nowait((reader, writer))
        latencies.append(time.perf_counter() - (started + due))
        if status == 201:
            state["created"] += 1
        else:
            state["bad"] += 1
            state["first_bad"] = state["first_bad"] or status

    await asyncio.gather(*(one(due, item) for due, item in schedule))
    state["seconds"] = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000 if latencies else 0.0

    state["latency_ms"] = {"p50": pct(50), "p99": pct(99), "max": latencies[-1] * 1000 if latencies else 0.0}
    return state


def _stored(database_url: str) -> int:
    from repository import db
    from repository import dsmr as dsmr_repo

    db.open_database(database_url)
    db.connect()
    try:
        return dsmr_repo.ReadingRow.select().count()
    finally:
        db.close_all()


def _verify(database_url: str) -> str:
    env = servers.base_env(DATABASE_URL=database_url)
    done = subprocess.run(
        [sys.executable, str(servers.SRC / "cli.py"), "verify-statistics"],
        cwd=servers.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    said = (done.stdout.strip().splitlines() or [""])[-1]
    return f"verify-statistics exit {done.returncode}: {said}"


def run(meters: int = 1000, every: int = 10, seconds: int = 60) -> list[FleetResult]:
    keys = _keys(meters)
    steps = seconds // every
    start = datetime.datetime.now(datetime.UTC).replace(microsecond=0) - datetime.timedelta(hours=3)
    results = []
    with servers.scratch_database("sqlite") as url:
        make_installations(url, keys)
        env = {"DSMR_API_ENABLED": "1", "DSMR_VERIFY_CRC": "1"}
        for round_index, api in enumerate(("v1", "v2")):
            make = _v1_body if api == "v1" else _v2_body
            schedule = []
            for step in range(steps):
                for index in range(meters):
                    moment = start + datetime.timedelta(seconds=(round_index * steps + step) * every + index % every)
                    body = make(index, round_index * steps + step, moment)
                    schedule.append((step * every + index * every / meters, (keys[index], body)))
            with servers.app_server(url, **env) as server:
                state = asyncio.run(_send(server.url, schedule, api))
            results.append(
                FleetResult(
                    api=api,
                    sent=len(schedule),
                    created=state["created"],
                    bad=state["bad"],
                    first_bad=state["first_bad"],
                    errors=state["errors"],
                    seconds=state["seconds"],
                    latency_ms=state["latency_ms"],
                    stored=_stored(url),
                    verified=_verify(url),
                )
            )
    return results
