"""Reads Modbus TCP hosts: one round over many hosts at once with pymodbus's asyncio client.

The I/O adapter of the polling task (src/tasks.py): it knows sockets and pymodbus, and nothing of the
database. Rules (decoding, grouping registers into requests, what an outcome is) are in domain.modbus.

Every host gets its own budget of `timeout` seconds for the whole exchange (connect and every request),
so a silent host delays its round by at most that; at most `concurrency` hosts are talked to at a time.
A fault stays with its host: a refused connection, a timeout, a Modbus exception reply or a garbled
frame becomes an error in that host's outcome and the round goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.pdu import ExceptionResponse

from domain import modbus
from domain.modbus import DecodeError, HostOutcome, ReadRequest

# pymodbus logs every refused connection and silent device at WARNING/ERROR; the poll status records
# them per host instead, so a round over a thousand hosts does not flood the worker's log.
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

DEFAULT_CONCURRENCY = 100
EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    5: "acknowledge",
    6: "device busy",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


@dataclass(frozen=True)
class Sample:
    host_id: int
    measurement: str
    measurement_type: int
    unit: str
    time_ms: int  # when the value was read, epoch milliseconds (UTC)
    value: float


@dataclass(frozen=True)
class RoundResult:
    samples: list[Sample]
    outcomes: list[HostOutcome]


class _RequestFailed(Exception):
    """A Modbus exception reply or an unusable answer: the request's registers fail, the host goes on."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def poll(targets: Iterable, *, timeout: float = 3.0, concurrency: int = DEFAULT_CONCURRENCY) -> RoundResult:
    """One round over `targets` (domain.silesia.PollTarget), from synchronous code."""
    return asyncio.run(read_round(list(targets), timeout=timeout, concurrency=concurrency))


async def read_round(targets: Sequence, *, timeout: float, concurrency: int) -> RoundResult:
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(target):
        async with gate:
            return await read_host(target, timeout=timeout)

    results = await asyncio.gather(*(one(target) for target in targets))
    samples = [sample for host_samples, _ in results for sample in host_samples]
    return RoundResult(samples=samples, outcomes=[outcome for _, outcome in results])


async def read_host(target, *, timeout: float) -> tuple[list[Sample], HostOutcome]:
    """Every assigned register of one host, within `timeout` seconds in all."""
    polled_at = now_ms()
    samples: list[Sample] = []
    errors: list[str] = []
    client = AsyncModbusTcpClient(target.ip, port=target.port, timeout=timeout, retries=0, reconnect_delay=0)
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            await _exchange(client, target, samples, errors, started + timeout * 0.9)
    except (TimeoutError, ConnectionError, ModbusException) as error:
        errors.append(_host_error(error, target, timed_out=time.monotonic() - started >= timeout, timeout=timeout))
    finally:
        client.close()
    failed = len({register.measurement for register in target.registers} - {sample.measurement for sample in samples})
    return samples, HostOutcome(target.host_id, polled_at, len(target.registers) - failed, failed, tuple(errors))


async def _exchange(client, target, samples: list[Sample], errors: list[str], late: float) -> None:
    if not await client.connect():
        why = "timed out" if time.monotonic() >= late else "refused or unreachable"
        raise ConnectionError(f"cannot connect to {target.ip}:{target.port} ({why})")
    for request in modbus.plan_requests(target.registers):
        await _read_request(client, target, request, samples, errors)


def _host_error(error: Exception, target, *, timed_out: bool, timeout: float) -> str:
    """One text for what stopped the exchange. pymodbus turns the cancellation of a request that our
    deadline ended into a ModbusIOException: past the deadline, any error is the timeout."""
    where = f"{target.ip}:{target.port}"
    if isinstance(error, ConnectionError):
        return str(error)
    if isinstance(error, TimeoutError) or timed_out:
        return f"no answer from {where} (unit {target.slave_address}) within {timeout:g} s"
    text = (str(error).strip() or type(error).__name__).removeprefix("Modbus Error: ").strip()
    return f"{where} (unit {target.slave_address}): {text}"


async def _read_request(client, target, request: ReadRequest, samples: list[Sample], errors: list[str]) -> None:
    try:
        registers = await _read(client, target, request)
    except _RequestFailed as failure:
        if len(request.registers) > 1:  # one register the device lacks must not cost the others
            for single in modbus.split(request):
                await _read_request(client, target, single, samples, errors)
            return
        register = request.registers[0]
        errors.append(f"{register.measurement}: {failure}")
        return
    read_at = now_ms()
    for register in request.registers:
        try:
            value = modbus.decode(
                request.words_of(register, registers), register.data_type, register.word_order, register.scale
            )
        except DecodeError as error:
            errors.append(f"{register.measurement}: cannot decode register {register.address}: {error}")
            continue
        samples.append(
            Sample(target.host_id, register.measurement, register.measurement_type, register.unit, read_at, value)
        )


async def _read(client, target, request: ReadRequest) -> list[int]:
    read = client.read_input_registers if request.function_code == 4 else client.read_holding_registers
    kind = modbus.FUNCTION_CODES[request.function_code]
    response = await read(request.address, count=request.count, device_id=target.slave_address)
    if response.isError():
        code = getattr(response, "exception_code", None) if isinstance(response, ExceptionResponse) else None
        name = EXCEPTION_NAMES.get(code, "error reply")
        raise _RequestFailed(
            f"Modbus exception {code} ({name}) reading {request.count} {kind} register(s) at {request.address}"
        )
    registers = list(getattr(response, "registers", []) or [])
    if len(registers) < request.count:
        raise _RequestFailed(
            f"asked for {request.count} {kind} register(s) at {request.address}, the answer held {len(registers)}"
        )
    return registers[: request.count]
