"""Modbus TCP devices on 127.0.0.1 for tests and the bench: a pymodbus server that simulates Eastron
SDM630 meters, and the hosts that misbehave (silent, refused, garbled).

pymodbus's datastore adds 1 to every address a request names; `_block` stores each map one address up,
so a read of address 52 answers what the map holds at 52. Addresses not in a map answer the Modbus
exception "illegal data address".
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import threading
from dataclasses import dataclass, field

from pymodbus.datastore import ModbusDeviceContext, ModbusServerContext, ModbusSparseDataBlock
from pymodbus.server import ModbusTcpServer

from domain.modbus import encode

# (address, value, data type, word order) of each known register.
Layout = list[tuple[int, float, int, str]]

# SDM630 input registers (function code 4): the values a poll must store.
SDM630_INPUT: Layout = [
    (0, 230.1, 3, "big"),  # voltage_ac, phase 1
    (2, 231.2, 3, "big"),  # voltage phase 2
    (4, 229.8, 3, "big"),  # voltage phase 3
    (6, 5.25, 3, "big"),  # current, phase 1
    (52, 1234.5, 3, "big"),  # active_power, total
    (70, 50.0, 3, "big"),  # frequency
    (72, 12345.625, 3, "big"),  # active_energy_consumed, kWh
    (74, 789.25, 3, "big"),  # active_energy_produced, kWh
    (200, 42.75, 3, "little"),  # a float32 sent low word first
    (300, -1234, 1, "big"),  # int16
    (302, 100000, 2, "big"),  # int32 (with scale 0.01: 1000.0)
    (304, -70000, 2, "little"),  # int32, low word first
    (400, math.nan, 3, "big"),  # "not available": never stored
]
# Holding registers (function code 3) at the same addresses hold other values: reading the wrong
# block shows up as a wrong value.
SDM630_HOLDING: Layout = [
    (0, 111.5, 3, "big"),
    (6, 2.5, 3, "big"),
    (52, 999.0, 3, "big"),
    (72, 1.0, 3, "big"),
    (200, -8.5, 3, "little"),
    (300, 77, 1, "big"),
]
# Address 500 is in neither map: reading it answers an exception.
EXCEPTION_ADDRESS = 500


def words(layout: Layout) -> dict[int, int]:
    mapped: dict[int, int] = {}
    for address, value, data_type, word_order in layout:
        raw = [0x7FC0, 0x0000] if isinstance(value, float) and math.isnan(value) else None
        for offset, word in enumerate(raw or encode(value, data_type, word_order)):
            mapped[address + offset] = word
    return mapped


def _block(mapped: dict[int, int]) -> ModbusSparseDataBlock:
    return ModbusSparseDataBlock({address + 1: word for address, word in mapped.items()})


def device(input_layout: Layout, holding_layout: Layout) -> ModbusDeviceContext:
    return ModbusDeviceContext(ir=_block(words(input_layout)), hr=_block(words(holding_layout)))


def shifted(layout: Layout, delta: float) -> Layout:
    """The same registers with every value moved by delta (a second meter on the same gateway)."""
    return [(address, value + delta, data_type, order) for address, value, data_type, order in layout]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class _Loop:
    """An asyncio loop in a daemon thread, for servers that tests (synchronous code) start and stop."""

    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine, timeout: float = 10):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        if self.thread:
            self.thread.join(5)
        self.loop.close()


class ModbusGateway:
    """A Modbus TCP server with one simulated device per unit id, like an RTU-to-TCP gateway."""

    def __init__(self, devices: dict[int, ModbusDeviceContext], port: int | None = None) -> None:
        self.port = port or free_port()
        self._context = ModbusServerContext(devices=devices, single=False)
        self._loop = _Loop()
        self._server: ModbusTcpServer | None = None
        self.connections = 0  # TCP connections accepted so far

    def __enter__(self) -> ModbusGateway:
        self._loop.start()
        self._loop.run(self._start())
        return self

    def __exit__(self, *_exc) -> None:
        with contextlib.suppress(Exception):
            self._loop.run(self._server.shutdown())
        self._loop.stop()

    async def _start(self) -> None:
        self._server = ModbusTcpServer(self._context, address=("127.0.0.1", self.port), trace_connect=self._traced)
        await self._server.serve_forever(background=True)

    def _traced(self, connected: bool) -> None:
        if connected:
            self.connections += 1

    def set_input(self, unit_id: int, layout: Layout) -> None:
        """Change input registers while the server runs (a meter whose values move)."""
        for address, word in words(layout).items():
            self._loop.loop.call_soon_threadsafe(self._context[unit_id].setValues, 4, address, [word])


def sdm630_gateway(port: int | None = None) -> ModbusGateway:
    """Unit 1: the SDM630 maps above; unit 2: a second meter whose input values are 1000 higher."""
    return ModbusGateway(
        {1: device(SDM630_INPUT, SDM630_HOLDING), 2: device(shifted(SDM630_INPUT, 1000), SDM630_HOLDING)},
        port=port,
    )


class _RawTcpHost:
    """A TCP listener on 127.0.0.1 that accepts connections and answers each request with `reply`
    (None: never answers, the connection stays open)."""

    def __init__(self, reply) -> None:
        self.reply = reply  # request bytes -> reply bytes, or None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._connections: list[socket.socket] = []
        self.accepted = 0
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._closed.set()
        self._listener.close()
        for connection in self._connections:
            with contextlib.suppress(OSError):
                connection.close()
        self._thread.join(5)

    def _serve(self) -> None:
        self._listener.settimeout(0.1)
        while not self._closed.is_set():
            try:
                connection, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            self._connections.append(connection)
            self.accepted += 1
            threading.Thread(target=self._talk, args=(connection,), daemon=True).start()

    def _talk(self, connection: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while not self._closed.is_set() and (request := connection.recv(260)):
                if self.reply is not None:
                    connection.sendall(self.reply(request))


def silent_host() -> _RawTcpHost:
    """Accepts the connection, reads every request, never answers."""
    return _RawTcpHost(None)


def _garbled_reply(request: bytes) -> bytes:
    # The request's transaction and unit id, a well-framed MBAP header, then a read reply whose byte
    # count (3) is odd and short of the registers asked for.
    pdu = bytes([request[7], 3, 0xDE, 0xAD, 0xBE])
    return request[:4] + len(pdu + request[6:7]).to_bytes(2, "big") + request[6:7] + pdu


def garbled_host() -> _RawTcpHost:
    """Answers every request with a frame whose register data is malformed."""
    return _RawTcpHost(_garbled_reply)


def refused_port() -> int:
    """A port on 127.0.0.1 where nothing listens: a connection is refused at once."""
    return free_port()
