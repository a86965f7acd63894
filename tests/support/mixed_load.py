"""Mixed load against a running server, every answer recorded: JOI single stores, DSMR v1 telegrams, OMS
commits and reads, each at its own steady rate on its own keep-alive connection (one thread per stream).

    load = MixedLoad("http://127.0.0.1:5000", dsmr_key=key, rates={"joi": 40, "dsmr": 10, "oms": 10, "read": 20})
    load.start(); ...; load.stop()
    load.answers        # Answer(kind, key, status, seconds, answered_at) for every request, in order per stream
    load.acknowledged("joi", before=moment)   # the keys of writes answered 2xx before a time.monotonic() moment

Every request's body follows from its number alone, so what was acknowledged can be checked in the database:
JOI key (meter id, epoch second), DSMR key the telegram's epoch second, OMS key (identnr, epoch second).
Used by the backup round trip (tests/integration/test_backup.py) and the soak (bench/soak.py).
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from tests.support.telegrams import make_telegram

BASE = 1_767_225_600  # 2026-01-01T00:00:00Z
JOI_METERS = 20
OMS_DEVICES = 50
DSMR_EQUIPMENT_ID = "E0025000000000001"
DSMR_STEP_SECONDS = 10
WRITE_STATUS = {"joi": 200, "dsmr": 201, "oms": 200}


@dataclass(frozen=True)
class Answer:
    kind: str
    key: object
    status: int  # 0: no answer (a connection error)
    seconds: float
    answered_at: float  # time.monotonic()


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes | None
    headers: dict
    key: object


def joi_meter(prefix: str, n: int) -> str:
    return f"{prefix}joi-{n % JOI_METERS}"


def joi_request(prefix: str, n: int) -> Request:
    meter, moment = joi_meter(prefix, n), BASE + (n // JOI_METERS) * 60
    reading = ((n * 7919) % 10_000) / 1000
    body = {"smartMeterId": meter, "electricityReadings": [{"time": moment, "reading": reading}]}
    return Request(
        "POST", "/readings/store", json.dumps(body).encode(), {"Content-Type": "application/json"}, (meter, moment)
    )


def dsmr_request(key: str, n: int) -> Request:
    moment = datetime.fromtimestamp(BASE + n * DSMR_STEP_SECONDS, UTC)
    registers = Decimal("1000.000") + Decimal(n) * Decimal("0.001")  # rising, as a real meter's do
    telegram = make_telegram(
        "v5",
        random.Random(n),
        timestamp=moment,
        equipment_id=DSMR_EQUIPMENT_ID,
        second_channel=None,
        electricity_delivered_1=registers,
        electricity_delivered_2=registers,
        electricity_returned_1=Decimal("0.000"),
        electricity_returned_2=Decimal("0.000"),
    )
    body = ("telegram=" + urllib.parse.quote(telegram)).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-AUTHKEY": key}
    return Request("POST", "/api/v1/datalogger/dsmrreading", body, headers, int(moment.timestamp()))


def oms_request(n: int) -> Request:
    identnr, moment = 10_000_000 + n % OMS_DEVICES, BASE + (n // OMS_DEVICES) * 900
    stamp = datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.000000")
    body = {
        "data": [
            {"value": stamp, "tariff": 0, "subunit": 0, "dimension": "Time Point (time & date)", "storagenr": 0},
            {"value": 1000 + n, "tariff": 0, "subunit": 0, "dimension": "Energy (kWh)", "storagenr": 0},
        ],
        "device": {"type": 4, "status": 0, "identnr": identnr, "version": 0, "accessnr": n % 256, "manufacturer": 5317},
    }
    return Request(
        "POST", "/commit", json.dumps(body).encode(), {"Content-Type": "application/json"}, (identnr, moment)
    )


def read_request(prefix: str, dsmr_key: str | None, n: int) -> Request:
    meter = joi_meter(prefix, n)
    choices = [
        f"/readings/read/{meter}?limit=100",
        f"/price-plans/compare-all/{meter}",
        "/oms/devices?limit=100",
    ]
    headers = {}
    if dsmr_key:
        choices.append("/api/v2/datalogger/dsmrreading?limit=25&ordering=-timestamp")
    path = choices[n % len(choices)]
    if path.startswith("/api/v2/"):
        headers = {"X-AUTHKEY": dsmr_key}
    return Request("GET", path, None, headers, path)


class MixedLoad:
    def __init__(
        self,
        base_url: str,
        *,
        rates: dict[str, float],
        dsmr_key: str | None = None,
        prefix: str = "load-",
        timeout: float = 30.0,
    ) -> None:
        parsed = urllib.parse.urlparse(base_url)
        self.host, self.port = parsed.hostname, parsed.port
        self.rates = rates
        self.dsmr_key = dsmr_key
        self.prefix = prefix
        self.timeout = timeout
        self.answers: list[Answer] = []
        self._stopping = threading.Event()
        self._joi_acknowledged = threading.Event()
        self._threads = [threading.Thread(target=self._stream, args=(kind,), daemon=True) for kind in rates]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 5)

    def acknowledged(self, kind: str, before: float = float("inf")) -> set:
        return {a.key for a in list(self.answers) if a.kind == kind and a.status // 100 == 2 and a.answered_at < before}

    def count(self, kind: str) -> int:
        return sum(1 for answer in list(self.answers) if answer.kind == kind)

    def _request(self, kind: str, n: int) -> Request:
        if kind == "joi":
            return joi_request(self.prefix, n)
        if kind == "dsmr":
            return dsmr_request(self.dsmr_key, n)
        if kind == "oms":
            return oms_request(n)
        return read_request(self.prefix, self.dsmr_key, n)

    def _stream(self, kind: str) -> None:
        if kind == "read":  # the meters read must exist first (an unknown meter is a 404)
            while not self._joi_acknowledged.wait(0.1):
                if self._stopping.is_set():
                    return
        interval = 1.0 / self.rates[kind]
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        next_at = time.monotonic()
        n = 0
        while not self._stopping.is_set():
            request = self._request(kind, n)
            started = time.monotonic()
            try:
                connection.request(request.method, request.path, body=request.body, headers=request.headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                status = 0
                connection.close()
                connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            answered = time.monotonic()
            self.answers.append(Answer(kind, request.key, status, answered - started, answered))
            if kind == "joi" and status == 200 and n >= JOI_METERS:  # every meter has a reading by now
                self._joi_acknowledged.set()
            n += 1
            next_at += interval
            pause = next_at - time.monotonic()
            if pause > 0:
                self._stopping.wait(pause)
            elif pause < -1:  # far behind: do not burst to catch up
                next_at = time.monotonic()
        connection.close()
