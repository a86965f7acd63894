"""Modbus register rules: decoding, grouping registers into requests, and each host's poll record.

A register is read with its own function code (3 = holding, 4 = input, never the other). Data types:
1 = signed 16-bit integer (one register), 2 = signed 32-bit integer, 3 = IEEE-754 float32 (two registers
each), big-endian with the high word first unless the register says `word_order: "little"` (low word
first; the bytes inside each word stay big-endian, as Modbus sends them). The value is the decoded number
times the register's `scale`. A value that is not a finite number after scaling (NaN, ±inf, which
meters send for "not available") or a word outside 0..65535 is a decoding error: never stored.

Pure: no I/O. Registers are anything with the attributes of `domain.silesia.RegisterSpec`.
"""

from __future__ import annotations

import contextlib
import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from domain.errors import InvalidInput
from domain.silesia import WORD_ORDERS
from domain.silesia import RegisterSpec as Register
from domain.tariffs import weekday_at

FUNCTION_CODES = {3: "holding", 4: "input"}
REGISTERS_PER_TYPE = {1: 1, 2: 2, 3: 2}
INSTANTANEOUS, COUNTER = 1, 2

# Eastron meters refuse longer reads; most Modbus devices accept up to 125 registers.
MAX_REGISTERS_PER_REQUEST = 40
# Registers no one asked for are read when that is cheaper than a second request: on the RS-485 line
# behind a gateway (9600 baud, 11 bits a byte) a register costs ~2.3 ms, a request ~15 ms of frames
# plus the meter's turnaround (tens of ms) and the gateway's latency. Ten spare registers (~23 ms)
# cost less than one more round trip. A device that answers an exception for a spare register is
# handled by re-reading the group's registers one by one (see `split`).
MAX_GAP_REGISTERS = 10


class DecodeError(ValueError):
    """The words read cannot be turned into a sample."""


def register_count(data_type: int) -> int:
    try:
        return REGISTERS_PER_TYPE[data_type]
    except KeyError:
        raise DecodeError(f"unknown data type {data_type} (1 = int16, 2 = int32, 3 = float32)") from None


def decode(words: Sequence[int], data_type: int, word_order: str = "big", scale: float = 1.0) -> float:
    """The value the words hold, times scale."""
    count = register_count(data_type)
    if len(words) != count:
        raise DecodeError(f"data type {data_type} needs {count} registers, got {len(words)}")
    if any(not isinstance(word, int) or not 0 <= word <= 0xFFFF for word in words):
        raise DecodeError(f"register words out of range 0..65535: {list(words)}")
    if word_order not in WORD_ORDERS:
        raise DecodeError(f"word order {word_order!r} is neither 'big' nor 'little'")
    ordered = list(words) if word_order == "big" else list(reversed(words))
    raw = struct.pack(f">{count}H", *ordered)
    number = struct.unpack({1: ">h", 2: ">i", 3: ">f"}[data_type], raw)[0]
    if data_type == 3 and math.isfinite(number):
        number = shortest_float32(number, raw)
    value = number * scale
    if not math.isfinite(value):
        raise DecodeError(f"not a finite number: {value!r}")
    return float(value)


def shortest_float32(number: float, raw: bytes) -> float:
    """The shortest decimal that is the same float32: a meter's 230.1 arrives as the float32 nearest
    to it (230.10000610351562 as a double) and is stored and shown as 230.1."""
    for digits in range(6, 10):
        candidate = float(f"{number:.{digits}g}")
        with contextlib.suppress(OverflowError):  # rounded up past the largest float32
            if struct.pack(">f", candidate) == raw:
                return candidate
    return number


def encode(value: float, data_type: int, word_order: str = "big") -> list[int]:
    """The register words a device sends for an unscaled value (the inverse of decode, scale 1)."""
    count = register_count(data_type)
    number = int(value) if data_type in (1, 2) else value
    words = list(struct.unpack(f">{count}H", struct.pack({1: ">h", 2: ">i", 3: ">f"}[data_type], number)))
    return words if word_order == "big" else list(reversed(words))


@dataclass(frozen=True)
class ReadRequest:
    """One read of `count` consecutive registers with one function code, serving `registers`."""

    function_code: int
    address: int
    count: int
    registers: tuple[Register, ...]

    def words_of(self, register: Register, words: Sequence[int]) -> Sequence[int]:
        start = register.address - self.address
        return words[start : start + register_count(register.data_type)]


def plan_requests(
    registers: Iterable[Register],
    *,
    max_registers: int = MAX_REGISTERS_PER_REQUEST,
    max_gap: int = MAX_GAP_REGISTERS,
) -> list[ReadRequest]:
    """Group registers into as few reads as the limits allow: same function code, addresses sorted,
    a new request when the next register would leave a gap over `max_gap` or make it longer than
    `max_registers`. Two measurements on one address share the words they read."""
    by_code: dict[int, list[Register]] = {}
    for register in registers:
        by_code.setdefault(register.function_code, []).append(register)
    requests: list[ReadRequest] = []
    for code in sorted(by_code):
        group: list[Register] = []
        start = end = 0  # [start, end) of the current group
        for register in sorted(by_code[code], key=lambda item: (item.address, item.measurement)):
            register_end = register.address + register_count(register.data_type)
            fits = group and register.address - end <= max_gap and max(end, register_end) - start <= max_registers
            if fits:
                group.append(register)
                end = max(end, register_end)
                continue
            if group:
                requests.append(ReadRequest(code, start, end - start, tuple(group)))
            group, start, end = [register], register.address, register_end
        if group:
            requests.append(ReadRequest(code, start, end - start, tuple(group)))
    return requests


def split(request: ReadRequest) -> list[ReadRequest]:
    """The request's registers read one by one: when a grouped read answers an exception, the
    registers that exist are still read and only the one that does not fails."""
    return [
        ReadRequest(request.function_code, register.address, register_count(register.data_type), (register,))
        for register in request.registers
    ]


@dataclass(frozen=True)
class HostOutcome:
    """What one poll of one host achieved: how many measurements were read and what went wrong."""

    host_id: int
    polled_at_ms: int
    measurements_read: int
    measurements_failed: int
    errors: tuple[str, ...] = ()

    @property
    def outcome(self) -> str:
        if not self.errors and not self.measurements_failed:
            return "ok"
        return "partial" if self.measurements_read else "failed"


@dataclass(frozen=True)
class PollStatus:
    """A host's poll record.

    last_poll_at: when the latest poll started; last_success_at: the latest poll that read every
    assigned measurement; last_error / last_error_at: the latest poll that had any error, and its
    errors; consecutive_failures: polls in a row, up to the latest, with at least one error (0 after
    a clean poll); last_outcome: "ok", "partial" (some measurements read, some not) or "failed";
    failing_since: when the first poll of the current run of failures started (None while the latest
    poll was clean, and for a run that began before the record kept it).
    """

    host_id: int
    last_poll_at_ms: int
    last_success_at_ms: int | None
    last_error: str | None
    last_error_at_ms: int | None
    consecutive_failures: int
    last_outcome: str
    measurements_read: int
    measurements_failed: int
    failing_since_ms: int | None = None


MAX_ERROR_TEXT = 2000


def error_text(errors: Sequence[str]) -> str:
    text = "; ".join(errors)
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 1] + "…"


def next_status(previous: PollStatus | None, outcome: HostOutcome) -> PollStatus:
    """The record after `outcome`. A poll older than the recorded one changes nothing (two rounds
    finishing out of order never move the record back)."""
    if previous is not None and outcome.polled_at_ms < previous.last_poll_at_ms:
        return previous
    base = previous or PollStatus(outcome.host_id, outcome.polled_at_ms, None, None, None, 0, "ok", 0, 0)
    common = dict(
        last_poll_at_ms=outcome.polled_at_ms,
        last_outcome=outcome.outcome,
        measurements_read=outcome.measurements_read,
        measurements_failed=outcome.measurements_failed,
    )
    if outcome.outcome == "ok":
        return replace(
            base, **common, last_success_at_ms=outcome.polled_at_ms, consecutive_failures=0, failing_since_ms=None
        )
    return replace(
        base,
        **common,
        last_error=error_text(outcome.errors),
        last_error_at_ms=outcome.polled_at_ms,
        consecutive_failures=base.consecutive_failures + 1,
        failing_since_ms=base.failing_since_ms if base.consecutive_failures else outcome.polled_at_ms,
    )


# ---- stored samples, buckets and the energy a counter measured ----

BUCKETS_MS = {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000}
ENERGY_UNITS_KWH = {"wh": 0.001, "kwh": 1.0, "mwh": 1000.0}
# Counter increases are summed per quarter hour of UTC for pricing: every zone's offset is a whole
# number of quarter hours, so each quarter falls on one local weekday.
PRICING_SLICE_MS = 900_000


@dataclass(frozen=True)
class StoredSample:
    time_ms: int
    series_id: int
    measurement: str
    unit: str
    value: float


@dataclass(frozen=True)
class BucketSummary:
    """One bucket of one series: min/mean/max for instantaneous measurements, the increase of a counter
    (the sum of its rises between consecutive samples, the later one in the bucket; a fall, a meter reset
    or swap, adds nothing)."""

    start_ms: int
    series_id: int
    measurement: str
    unit: str
    measurement_type: int
    samples: int
    minimum: float | None = None
    mean: float | None = None
    maximum: float | None = None
    increase: float | None = None


def kwh_factor(unit: str) -> float | None:
    """What one unit of an energy counter is in kWh (None: not an energy unit)."""
    return ENERGY_UNITS_KWH.get(unit.strip().lower())


def weekday_energy(slices: Iterable[tuple[int, float]], zones: Iterable[str]) -> dict[str, dict[int, float]]:
    """kWh per local weekday (Monday = 0) in each zone, from (slice start in epoch ms, kWh) pairs."""
    slices = list(slices)
    energy: dict[str, dict[int, float]] = {}
    for zone_name in set(zones):
        zone = ZoneInfo(zone_name)
        by_day: dict[int, float] = {}
        for start_ms, kwh in slices:
            weekday = weekday_at(zone, start_ms // 1000)
            by_day[weekday] = by_day.get(weekday, 0.0) + kwh
        energy[zone_name] = by_day
    return energy


LATEST_INSTANT_MS = 4_102_444_800_000  # 2100-01-01


def parse_instant(text: str, field: str) -> int:
    """Epoch milliseconds of an ISO 8601 date-time (a naive one is UTC) or of whole epoch seconds.
    Surrounding whitespace or control characters are refused, not trimmed."""
    try:
        if text.isascii() and text.isdigit():
            instant = int(text) * 1000
        else:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            instant = round(moment.timestamp() * 1000)
    except (ValueError, OverflowError):
        instant = -1
    if not 0 <= instant <= LATEST_INSTANT_MS:
        raise InvalidInput(
            f"{field} must be an ISO 8601 date-time between 1970 and 2100 (e.g. 2026-12-01T07:00:00Z; without"
            f" an offset it is UTC) or epoch seconds, not {text[:40]!r}",
            field=field,
        )
    return instant


def check_window(start_ms: int | None, end_ms: int | None) -> None:
    if start_ms is not None and end_ms is not None and start_ms > end_ms:
        raise InvalidInput("from must not be after to", field="from")


def format_instant(time_ms: int) -> str:
    """2026-12-01T07:00:00.123Z: UTC, always with milliseconds."""
    moment = datetime.fromtimestamp(time_ms // 1000, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{time_ms % 1000:03d}Z"
