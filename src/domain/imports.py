"""Reading files for `cli.py import-readings`: JOI CSV (`smartMeterId,time,reading`), files of P1 telegrams and
OMS JSON lines. Pure: text in, readings or messages out, each bad row named by its line number.

CSV rows follow POST /readings/store's rules: a meter id of 1 to 128 of `A-Z a-z 0-9 . _ : -`, a time in epoch
seconds or ISO 8601 (naive means UTC; whole seconds), not before 1970 nor more than the allowed skew ahead, and
a reading in kW from 0 to 1e9. A header line `smartMeterId,time,reading` is optional.
"""

from __future__ import annotations

import bisect
import csv
import json
import math
import operator
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count, islice, repeat

from domain.errors import DomainError
from domain.oms import OmsMessage, message_from_json
from domain.usage import HOUR, QUARTER, HourRollup, energy_by_hour_of, hour_rollups

CSV, TELEGRAMS, OMS = "csv", "telegrams", "oms"
FORMATS = (CSV, TELEGRAMS, OMS)
CSV_HEADER = ("smartMeterId", "time", "reading")
MAX_TIME = 4_102_444_800  # 2100-01-01, the API's limit
MAX_READING = 1e9
_METER_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}\Z", re.ASCII)


def detect_format(head: str) -> str:
    """The format of a file from its first characters: a P1 telegram opens with `/`, an OMS message with `{`."""
    first = head.lstrip("\ufeff \t\r\n")[:1]
    if first == "/":
        return TELEGRAMS
    if first == "{":
        return OMS
    return CSV


@dataclass(frozen=True)
class BadRow:
    line: int
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.problem}"


@dataclass
class MeterColumns:
    """One meter's readings of a file: times ascending and unique, with the line each came from."""

    times: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


@dataclass
class CsvReadings:
    """What a CSV file holds: readings per meter (in file order until `sorted_by_meter`), rows, repeats, bad rows."""

    by_meter: dict[str, MeterColumns] = field(default_factory=dict)
    rows: int = 0
    repeated: int = 0  # rows that repeat an earlier row of the file (same meter, time and reading)
    bad: list[BadRow] = field(default_factory=list)

    @property
    def good(self) -> int:
        return sum(len(columns.times) for columns in self.by_meter.values())


class CsvReader:
    """Reads CSV text chunk by chunk (whole lines; `feed` in file order, then `finish`).

    Chunks go through a fast path of C loops (split, int, float, min and max over columns) when every line is
    plain `meter,epoch,number`; a chunk with anything else is read row by row, naming each bad row."""

    def __init__(self, *, now: int, max_future_skew: int) -> None:
        self.latest_time = min(MAX_TIME, now + max_future_skew)
        self.result = CsvReadings()
        self._next_line = 1
        self._lines_of: dict[str, _LineMap] = {}

    def feed(self, text: str) -> None:
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        first_line = self._next_line
        self._next_line += len(lines)
        if first_line == 1 and lines and _is_header(lines[0]):
            lines, first_line = lines[1:], 2
        if not lines:
            return
        if not self._fast(lines, first_line):
            self._slow(lines, first_line)

    def _fast(self, lines: list[str], first_line: int) -> bool:
        if set(map(str.count, lines, repeat(","))) != {2}:
            return False
        joined = ",".join(lines)
        if '"' in joined or "_" in joined or "\r" in joined:
            return False
        cells = joined.split(",")
        meters, times_text, values_text = cells[0::3], cells[1::3], cells[2::3]
        try:
            times = list(map(int, times_text))
            values = list(map(float, values_text))
        except ValueError:
            return False
        distinct = set(meters)
        if not all(_METER_ID.match(meter) for meter in distinct):
            return False
        # sum() is NaN when a value is NaN, and NaN < inf is False.
        if min(times) < 0 or max(times) > self.latest_time or min(values) < 0 or not sum(values) < math.inf:
            return False
        if max(values) > MAX_READING:
            return False
        self.result.rows += len(lines)
        if len(distinct) == 1:
            self._append(meters[0], times, values, first_line)
        else:
            grouped: dict[str, tuple[list[int], list[float], list[int]]] = {}
            for line, meter, time, value in zip(count(first_line), meters, times, values):
                columns = grouped.get(meter)
                if columns is None:
                    columns = grouped[meter] = ([], [], [])
                columns[0].append(time)
                columns[1].append(value)
                columns[2].append(line)
            for meter, (meter_times, meter_values, meter_lines) in grouped.items():
                self._append(meter, meter_times, meter_values, meter_lines)
        return True

    def _append(self, meter: str, times: list[int], values: list[float], lines: int | list[int]) -> None:
        """`lines`: the first line of contiguous rows, or each row's line."""
        columns = self.result.by_meter.get(meter)
        if columns is None:
            columns = self.result.by_meter[meter] = MeterColumns()
            self._lines_of[meter] = _LineMap()
        self._lines_of[meter].add(len(columns.times), lines)
        columns.times += times
        columns.values += values

    def _slow(self, lines: list[str], first_line: int) -> None:
        reader = csv.reader(lines)
        for row in reader:
            line = first_line + reader.line_num - 1  # a quoted cell may run over lines: the row's last one
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line
            self.result.rows += 1
            try:
                meter, time, value = _csv_row(row, self.latest_time)
            except _BadCell as error:
                self.result.bad.append(BadRow(line, str(error)))
                continue
            self._append(meter, [time], [value], [line])

    def finish(self) -> CsvReadings:
        """Each meter's readings sorted by time, one per time. A time the file repeats with the same reading
        counts as repeated; with another reading the later row is bad (which one is the meter's is unknown)."""
        for meter, columns in self.result.by_meter.items():
            if _strictly_ascending(columns.times):
                continue
            lines_of = self._lines_of[meter]
            first: dict[int, tuple[float, int]] = {}
            for index, (time, value) in enumerate(zip(columns.times, columns.values, strict=True)):
                seen = first.get(time)
                if seen is None:
                    first[time] = (value, index)
                elif seen[0] == value:
                    self.result.repeated += 1
                else:
                    self.result.bad.append(
                        BadRow(
                            lines_of.line(index),
                            f"meter {meter} has another reading at time {time} on line {lines_of.line(seen[1])} "
                            f"({seen[0]!r} and {value!r}); give one reading per time",
                        )
                    )
            ordered = sorted(first)
            columns.times, columns.values = ordered, [first[time][0] for time in ordered]
        self.result.bad.sort(key=operator.attrgetter("line"))
        return self.result


class _LineMap:
    """The file line of each of a meter's readings, kept as runs: a chunk of one meter's rows is one number."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.pieces: list[int | list[int]] = []

    def add(self, index: int, lines: int | list[int]) -> None:
        last = self.pieces[-1] if self.pieces else None
        if isinstance(lines, list) and isinstance(last, list) and self.starts[-1] + len(last) == index:
            last += lines  # rows read one by one extend the run before them
            return
        self.starts.append(index)
        self.pieces.append(lines)

    def line(self, index: int) -> int:
        run = bisect.bisect_right(self.starts, index) - 1
        piece, offset = self.pieces[run], index - self.starts[run]
        return piece + offset if isinstance(piece, int) else piece[offset]


def _strictly_ascending(times: list[int]) -> bool:
    return all(map(operator.lt, times, islice(times, 1, None)))


def _is_header(line: str) -> bool:
    cells = [cell.strip().strip('"').lower() for cell in line.lstrip("\ufeff").split(",")]
    return cells == [name.lower() for name in CSV_HEADER]


class _BadCell(ValueError):
    """What is wrong with one cell, said for the user."""


def _csv_row(row: list[str], latest_time: int) -> tuple[str, int, float]:
    if len(row) != 3:
        raise _BadCell(f"expected 3 fields smartMeterId,time,reading, found {len(row)}")
    meter, time_text, value_text = (cell.strip() for cell in row)
    if not _METER_ID.match(meter):
        raise _BadCell(f"smartMeterId {meter!r} is not 1 to 128 of A-Z a-z 0-9 . _ : -")
    time = parse_time(time_text)
    if not 0 <= time <= latest_time:
        raise _BadCell(f"time {time_text!r} is before 1970 or more than the allowed skew in the future")
    try:
        value = float(value_text) if "_" not in value_text else math.nan
    except ValueError:
        value = math.nan
    if not 0 <= value <= MAX_READING:  # False for NaN as well
        raise _BadCell(f"reading {value_text!r} is not a number of kW from 0 to {MAX_READING:g}")
    return meter, time, value


def parse_time(text: str) -> int:
    """Epoch seconds, or an ISO 8601 date-time (naive means UTC) in whole seconds."""
    if text.isascii() and text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise _BadCell(f"time {text!r} is neither epoch seconds nor an ISO 8601 date-time") from None
    if moment.microsecond:
        raise _BadCell(f"time {text!r} has a fraction of a second; readings are stored in whole seconds")
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    try:
        return int(moment.timestamp())
    except (OverflowError, ValueError):
        raise _BadCell(f"time {text!r} is out of range") from None


def csv_line(meter: str, time: int, reading: float) -> str:
    """One exported row; repr() writes the shortest text that reads back as the same float."""
    return f"{meter},{time},{reading!r}\n"


# --- P1 telegrams -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TelegramText:
    line: int  # the line of its `/` header
    text: str


def split_telegrams(lines: Iterable[str]) -> Iterator[TelegramText | BadRow]:
    """The telegrams of a file (lines with their line endings, which the CRC covers): each runs from a line
    starting with `/` to the line starting with `!`. Other non-blank lines are bad rows."""
    current: list[str] = []
    start = 0
    number = 0
    for number, line in enumerate(lines, start=1):  # noqa: B007 - the last number names an unfinished telegram
        if line.startswith("/"):
            if current:
                yield BadRow(start, "the telegram has no end line starting with '!' before the next '/' line")
            current, start = [line], number
        elif current:
            current.append(line)
            if line.startswith("!"):
                yield TelegramText(start, "".join(current))
                current = []
        elif line.strip():
            yield BadRow(number, "not part of a telegram: a telegram starts with a '/' header line")
    if current:
        yield BadRow(start, "the telegram has no end line starting with '!' (the file ends first)")


# --- OMS JSON lines -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OmsLine:
    line: int
    message: OmsMessage


def oms_message(line_number: int, text: str, shape_problem: Callable[[object], str | None]) -> OmsLine | BadRow | None:
    """One line of OMS JSON lines: the body POST /commit takes (`shape_problem` checks it against that schema,
    as the API does, and says what is wrong). None for a blank line."""
    if not text.strip():
        return None
    try:
        payload = json.loads(text)
    except ValueError as error:
        return BadRow(line_number, f"not JSON: {error}")
    problem = shape_problem(payload)
    if problem:
        return BadRow(line_number, problem)
    try:
        return OmsLine(line_number, message_from_json(payload))
    except DomainError as error:
        return BadRow(line_number, error.detail)


# --- rollups of many samples ----------------------------------------------------------------------------------------


def bulk_hour_rollups(
    times: list[int], values: list[float], max_gap: int, start: int, end: int
) -> dict[int, HourRollup]:
    """hour_rollups(energy_by_hour_of(…, QUARTER)) of [start, end) (whole hours) for many samples at once.

    The same trapezoids, summed per quarter hour over the slice of intervals inside it with C loops (a
    Python loop per sample cost a second per million); the few intervals that cross a quarter boundary or
    the window's edge are cut exactly as energy_by_hour_of cuts them. Samples with a gap longer than
    max_gap between them go through energy_by_hour_of itself. Equal to it within float rounding."""
    count = len(times)
    if count < 2:
        return {}
    seconds = list(map(operator.sub, islice(times, 1, None), times))
    if max(seconds) > max_gap or min(seconds) <= 0:
        return hour_rollups(energy_by_hour_of(times, values, max_gap, start, end, QUARTER))
    energy: dict[int, float] = {}
    first = max(start, times[0] - times[0] % QUARTER)
    last = min(end, times[-1])
    crossing = set()
    for boundary in range(first, last + QUARTER, QUARTER):
        if boundary > end:
            break
        after = bisect.bisect_left(times, boundary)
        if 0 < after < count and times[after] != boundary:
            crossing.add(after - 1)  # times[after - 1] < boundary < times[after]
    for quarter in range(first, last, QUARTER):
        low = bisect.bisect_left(times, quarter)
        high = bisect.bisect_right(times, quarter + QUARTER) - 1
        if high > low:
            energy[quarter] = _doubled_energy(times, values, seconds, low, high) / (2 * HOUR)
    for index in crossing:
        _add_cut_interval(energy, times[index], values[index], times[index + 1], values[index + 1], start, end)
    return hour_rollups(energy)


def _doubled_energy(times: list[int], values: list[float], seconds: list[int], low: int, high: int) -> float:
    """Σ (p1 + p2) * seconds over the intervals between samples low … high. Samples evenly spaced (a meter's
    clock) make it step * (2 Σ p - p_low - p_high): one sum over existing floats, no new ones per interval."""
    steps = seconds[low:high]
    step = steps[0]
    if min(steps) == step == max(steps):
        return step * (2 * sum(values[low : high + 1]) - values[low] - values[high])
    return sum(map(operator.mul, map(operator.add, values[low:high], values[low + 1 : high + 1]), steps))


def _add_cut_interval(energy: dict[int, float], t1: int, r1: float, t2: int, r2: float, start: int, end: int) -> None:
    """An interval across quarter boundaries (or the window's edges), cut at them as energy_by_hour_of does."""
    slope = (r2 - r1) / (t2 - t1)
    piece_start, stop = max(t1, start), min(t2, end)
    while piece_start < stop:
        bucket = piece_start - piece_start % QUARTER
        piece_end = min(bucket + QUARTER, stop)
        p1 = r1 + slope * (piece_start - t1)
        p2 = r1 + slope * (piece_end - t1)
        energy[bucket] = energy.get(bucket, 0.0) + (p1 + p2) / 2 * (piece_end - piece_start) / HOUR
        piece_start = piece_end
