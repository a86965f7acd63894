"""Sustained mixed write load against a running service, recording every answer (the fault tests' ledger).

    load = Load(base_url, dsmr_key="k", threads=4)
    load.start(); ...; load.stop()
    load.acks            # every write tried: what it was, and the status it got (None: no answer at all)

Writes never collide: each thread owns its JOI meter, its OMS device numbers and its client phones, and
DSMR telegrams (one installation, whose readings must come in time order) are posted by thread 0 only, so
what a write left behind can be told from what any other left. A write that got no answer (the server was
killed mid-request) or a 5xx is not retried: it may be all there or not there, never half. A share of the
JOI batches is invalid (a negative reading last): 400, and nothing of it may be there.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx

from tests.support.telegrams import make_telegram

BATCH = 20
JOI_STEP_SECONDS = 60
DSMR_STEP_SECONDS = 10
DSMR_EQUIPMENT_ID = "E0044404018311117"
CLIENT_TAG = "LOAD"
OMS_FIRST_IDENTNR = 10_000_000
REQUEST_TIMEOUT_SECONDS = 30
INVALID_SHARE = 0.1  # of JOI batches


@dataclass
class Ack:
    kind: str  # "joi", "dsmr", "oms", "client"
    key: object  # joi: (meter, ((time, reading), ...)); dsmr: epoch second; oms: identnr; client: phone
    status: int | None  # None: no answer (connection refused, reset, or cut by a kill)
    sent_at: float  # time.monotonic() when it was sent
    seconds: float  # from sending to the answer (or to the failure)
    retry_after: str | None = None
    failure: str | None = None  # without an answer: "refused", or "cut (ReadError)" and the like

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def oms_message(identnr: int) -> dict:
    def record(value, dimension: str, storagenr: int) -> dict:
        return {"value": value, "tariff": 0, "subunit": 0, "dimension": dimension, "storagenr": storagenr}

    return {
        "data": [
            record("2020-06-26T06:49:00.000000", "Time Point (time & date)", 0),
            record(identnr % 100_000, "Energy (kWh)", 0),
            record("2019-09-30T00:00:00.000000", "Time Point (date)", 1),
            record(16274, "Energy (kWh)", 1),
        ],
        "device": {"type": 4, "status": 0, "identnr": identnr, "version": 0, "accessnr": 156, "manufacturer": 5317},
    }


OMS_RECORDS = len(oms_message(0)["data"])


def telegram(moment: datetime, index: int) -> str:
    return make_telegram(
        "v5",
        random.Random(index),
        timestamp=moment,
        equipment_id=DSMR_EQUIPMENT_ID,
        electricity_delivered_1=Decimal(1000) + Decimal(index) / 1000,
        electricity_delivered_2=Decimal(2000),
        electricity_returned_1=Decimal(0),
        electricity_returned_2=Decimal(0),
        second_channel=None,
    )


@dataclass
class Load:
    base_url: str
    dsmr_key: str | None = None
    threads: int = 4
    seed: int = 0
    clients: bool = True
    timeout: float = REQUEST_TIMEOUT_SECONDS  # an answer slower than this counts as none (a hang)
    acks: list[Ack] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        # Readings of the last three days, so none is ahead of the clock and every one can be priced.
        start = int(time.time()) - 3 * 86400
        self._first_time = start - start % 3600
        for number in range(self.threads):
            worker = threading.Thread(target=self._run, args=(number,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=self.timeout + 5)

    def count(self, acknowledged: bool = True) -> int:
        with self._lock:
            return sum(1 for ack in self.acks if ack.acknowledged == acknowledged)

    def wait_for_acknowledged(self, more: int, seconds: float) -> None:
        """Wait until `more` further writes than now were acknowledged (the load is making progress)."""
        target = self.count() + more
        deadline = time.monotonic() + seconds
        while self.count() < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"the load made no progress: {self.count()} of {target} acknowledged")
            time.sleep(0.05)

    def _run(self, number: int) -> None:
        rng = random.Random(self.seed * 1000 + number)
        state = {"joi_time": self._first_time, "dsmr": 0, "oms": 0, "client": 0}
        with httpx.Client(base_url=self.base_url, timeout=self.timeout) as http:
            while not self._stop.is_set():
                choice = rng.random()
                if number == 0 and self.dsmr_key and choice < 0.25:
                    self._dsmr(http, state)
                elif choice < 0.45:
                    self._joi(http, state, number, rng, BATCH)
                elif choice < 0.7:
                    self._joi(http, state, number, rng, 1)
                elif choice < 0.9 or not self.clients:
                    self._oms(http, state, number)
                else:
                    self._client(http, state, number)

    def _send(self, http: httpx.Client, kind: str, key: object, method: str, path: str, **kwargs) -> None:
        began = time.monotonic()
        status = retry_after = failure = None
        try:
            response = http.request(method, path, **kwargs)
            status, retry_after = response.status_code, response.headers.get("retry-after")
        except httpx.ConnectError:
            failure = "refused"  # never reached the service (it was down)
        except httpx.TransportError as error:
            failure = f"cut ({type(error).__name__})"  # in flight when the server died, or past the timeout
        ack = Ack(kind, key, status, began, time.monotonic() - began, retry_after, failure)
        with self._lock:
            self.acks.append(ack)
        if status is None:
            time.sleep(0.2)  # the server is down: do not spin while it restarts

    def _joi(self, http: httpx.Client, state: dict, number: int, rng: random.Random, size: int) -> None:
        meter = f"load-{self.seed}-{number}"
        first = state["joi_time"]
        state["joi_time"] += size * JOI_STEP_SECONDS
        readings = tuple((first + i * JOI_STEP_SECONDS, round(rng.uniform(0.1, 5.0), 4)) for i in range(size))
        if size > 1 and rng.random() < INVALID_SHARE:  # a negative last reading: 400, and none of it stored
            readings = (*readings[:-1], (readings[-1][0], -1.0))
        body = {"smartMeterId": meter, "electricityReadings": [{"time": t, "reading": r} for t, r in readings]}
        self._send(http, "joi", (meter, readings), "POST", "/readings/store", json=body)

    def _dsmr(self, http: httpx.Client, state: dict) -> None:
        index = state["dsmr"]
        state["dsmr"] += 1
        moment = datetime.fromtimestamp(self._first_time + index * DSMR_STEP_SECONDS, UTC)
        self._send(
            http,
            "dsmr",
            int(moment.timestamp()),
            "POST",
            "/api/v1/datalogger/dsmrreading",
            data={"telegram": telegram(moment, index)},
            headers={"X-AUTHKEY": self.dsmr_key},
        )

    def _oms(self, http: httpx.Client, state: dict, number: int) -> None:
        identnr = OMS_FIRST_IDENTNR + (self.seed * 10 + number) * 100_000 + state["oms"]
        state["oms"] += 1
        self._send(http, "oms", identnr, "POST", "/commit", json=oms_message(identnr))

    def _client(self, http: httpx.Client, state: dict, number: int) -> None:
        phone = f"7{self.seed % 10}{number}{state['client']:08d}"
        state["client"] += 1
        body = {"phone": phone, "operator_code": "900", "tag": CLIENT_TAG, "timezone": "UTC"}
        self._send(http, "client", phone, "POST", "/api/v1/clients/", json=body)


def first_mailing(start: datetime, minutes: int = 30) -> dict:
    """The mailing the load's clients match: running now, to every client tagged CLIENT_TAG."""
    return {
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(minutes=minutes)).isoformat(),
        "text": "durability",
        "client_tag_filter": CLIENT_TAG,
    }
