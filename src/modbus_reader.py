"""Reads Modbus TCP hosts: one round over many hosts at once with pymodbus's asyncio client.

The I/O adapter of the polling task (src/tasks.py): it knows sockets and pymodbus, and nothing of the
database. Rules (decoding, grouping registers into requests, what an outcome is) are in domain.modbus.

Every host gets its own budget of `timeout` seconds for the whole exchange (connect and every request),
so a silent host delays the hosts after it by at most that. Hosts at one address (unit ids behind one
gateway) are read one after another over one connection; at most `concurrency` addresses are talked to
at a time.
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

log = logging.getLogger("joi.modbus")
# pymodbus logs every refused connection and silent device at WARNING/ERROR; the poll status records
# them per host instead, so a round over a thousand hosts does not flood the worker's log.
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

DEFAULT_CONCURRENCY = 100
MAX_SILENT_IN_A_ROW = 2
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


def poll(
    targets: Iterable,
    *,
    timeout: float = 3.0,
    concurrency: int = DEFAULT_CONCURRENCY,
    deadline_seconds: float | None = None,
) -> RoundResult:
    """One round over `targets` (domain.silesia.PollTarget), from synchronous code. A host whose turn
    has not come `deadline_seconds` after the start is not polled this round (an error in its outcome)."""
    return asyncio.run(
        read_round(list(targets), timeout=timeout, concurrency=concurrency, deadline_seconds=deadline_seconds)
    )


async def read_round(
    targets: Sequence, *, timeout: float, concurrency: int, deadline_seconds: float | None = None
) -> RoundResult:
    gate = asyncio.Semaphore(max(1, concurrency))
    deadline = None if deadline_seconds is None else time.monotonic() + deadline_seconds

    async def one(gateway_targets):
        async with gate:
            return await read_gateway(gateway_targets, timeout=timeout, deadline=deadline)

    by_address: dict[tuple[str, int], list] = {}
    for target in targets:
        by_address.setdefault((target.ip, target.port), []).append(target)
    results = [result for group in await asyncio.gather(*map(one, by_address.values())) for result in group]
    samples = [sample for host_samples, _ in results for sample in host_samples]
    return RoundResult(samples=samples, outcomes=[outcome for _, outcome in results])


async def read_host(target, *, timeout: float) -> tuple[list[Sample], HostOutcome]:
    """Every assigned register of one host, within `timeout` seconds in all."""
    return (await read_gateway([target], timeout=timeout))[0]


async def read_gateway(
    targets: Sequence, *, timeout: float, deadline: float | None = None
) -> list[tuple[list[Sample], HostOutcome]]:
    """The hosts at one address (the unit ids behind one RTU-to-TCP gateway), one after another over one
    connection: the RS-485 bus behind a gateway answers one request at a time anyway, and many gateways
    accept only a few connections. Each host has `timeout` seconds for everything it needs; after a host
    that timed out or broke the connection the next one gets a fresh connection. When the address cannot
    be connected to, or MAX_SILENT_IN_A_ROW hosts in a row did not answer (a gateway whose bus is dead),
    the hosts after them are not tried this round: a dead gateway costs its address one or two timeouts,
    not one per meter behind it. (The polling task puts the hosts that failed last time at the end.)"""
    results: list[tuple[list[Sample], HostOutcome]] = []
    client = None
    skip_reason: str | None = None
    silent_in_a_row = 0
    try:
        for target in targets:
            if skip_reason is None and deadline is not None and time.monotonic() >= deadline:
                skip_reason = "not polled this round: the round ran out of time (too many silent hosts before it)"
            if skip_reason is not None:
                results.append(([], _outcome(target, now_ms(), [], [skip_reason])))
                continue
            if client is None:
                client = AsyncModbusTcpClient(
                    target.ip, port=target.port, timeout=timeout, retries=0, reconnect_delay=0
                )
            samples, outcome, state = await _read_unit(client, target, timeout)
            results.append((samples, outcome))
            silent_in_a_row = silent_in_a_row + 1 if state == "silent" else 0
            if state == "unreachable":
                skip_reason = outcome.errors[-1]
            elif silent_in_a_row >= MAX_SILENT_IN_A_ROW:
                skip_reason = (
                    f"not polled this round: {target.ip}:{target.port} did not answer the"
                    f" {silent_in_a_row} hosts before this one within {timeout:g} s each"
                )
            if state in ("broken", "silent"):
                client.close()
                client = None
    finally:
        if client is not None:
            client.close()
    return results


async def _read_unit(client, target, timeout: float) -> tuple[list[Sample], HostOutcome, str]:
    """One host's registers; the state of the connection after it: "ok", "silent" (no answer in time),
    "broken" (another transport error) or "unreachable" (no connection)."""
    polled_at = now_ms()
    samples: list[Sample] = []
    errors: list[str] = []
    state = "ok"
    started = time.monotonic()
    connecting = not client.connected
    try:
        async with asyncio.timeout(timeout):
            if connecting and not await client.connect():
                raise ConnectionError(f"cannot connect to {target.ip}:{target.port} (refused or unreachable)")
            connecting = False
            for request in modbus.plan_requests(target.registers):
                await _read_request(client, target, request, samples, errors)
    except (TimeoutError, ConnectionError, ModbusException) as error:
        timed_out = time.monotonic() - started >= timeout
        if connecting:
            state = "unreachable"
            why = f"timed out after {timeout:g} s" if timed_out else "refused or unreachable"
            errors.append(f"cannot connect to {target.ip}:{target.port} ({why})")
        else:
            state = "silent" if timed_out or isinstance(error, TimeoutError) else "broken"
            errors.append(_host_error(error, target, timed_out=timed_out, timeout=timeout))
    except Exception as error:  # noqa: BLE001 - whatever a device or pymodbus does, it stays with this host
        log.exception("unexpected error reading %s:%s unit %s", target.ip, target.port, target.slave_address)
        state = "broken"
        errors.append(f"{target.ip}:{target.port} (unit {target.slave_address}): unexpected {type(error).__name__}")
    return samples, _outcome(target, polled_at, samples, errors), state


def _outcome(target, polled_at: int, samples: list[Sample], errors: list[str]) -> HostOutcome:
    failed = len({register.measurement for register in target.registers} - {sample.measurement for sample in samples})
    return HostOutcome(target.host_id, polled_at, len(target.registers) - failed, failed, tuple(errors))


def _host_error(error: Exception, target, *, timed_out: bool, timeout: float) -> str:
    """One text for what stopped the exchange. pymodbus turns the cancellation of a request that our
    deadline ended into a ModbusIOException: past the deadline, any error is the timeout."""
    where = f"{target.ip}:{target.port}"
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
