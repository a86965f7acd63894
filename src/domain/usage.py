"""Energy from instantaneous kW samples.

Between two consecutive samples the power is taken to change linearly, so the energy is the trapezoid
(p1 + p2) / 2 * (t2 - t1) / 3600 kWh. A gap longer than the maximum carries no energy: it is reported,
never invented. Rollups cut that same energy into whole UTC hours so that a plan can be priced from a
few thousand rows instead of every raw sample.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import NamedTuple

from domain.errors import InvalidInput

HOUR = 3600
DEFAULT_MAX_GAP_SECONDS = 3600


class Reading(NamedTuple):
    time: int  # epoch seconds
    reading: float  # kW


@dataclass(frozen=True)
class Gap:
    start: int
    end: int


@dataclass(frozen=True)
class Usage:
    kwh: float
    start: int | None  # first sample of the covered period
    end: int | None  # last sample of the covered period
    gaps: tuple[Gap, ...] = ()

    @property
    def covered_seconds(self) -> int:
        if self.start is None or self.end is None:
            return 0
        return self.end - self.start - sum(gap.end - gap.start for gap in self.gaps)


def latest_per_time(readings: Iterable[tuple[int, float]]) -> list[tuple[int, float]]:
    """Sorted by time, one sample per second: a repeated time keeps the value sent last (meters retry)."""
    by_time = {reading[0]: reading for reading in readings}
    return [by_time[time] for time in sorted(by_time)]


def check_readings(times: Sequence[int], values: Sequence[float], *, now: int, max_future_skew: int) -> None:
    """Meaning the schema cannot state: finite values and no clock that runs ahead of ours."""
    latest_allowed = now + max_future_skew
    # Builtins first (C loops over a batch of thousands); the slow loop only names the offender.
    if not times or (min(values) >= 0 and sum(values) < math.inf and max(times) <= latest_allowed):
        return  # sum() is NaN when a value is NaN, and NaN < inf is False
    for index, (time, value) in enumerate(zip(times, values, strict=True)):
        if not (0 <= value < math.inf):  # False for NaN as well
            raise InvalidInput(
                f"electricityReadings[{index}].reading: {value!r} is not a finite number >= 0",
                field=f"electricityReadings[{index}].reading",
            )
        if time > latest_allowed:
            raise InvalidInput(
                f"electricityReadings[{index}].time: {time} lies more than {max_future_skew} s in the future",
                field=f"electricityReadings[{index}].time",
            )


def strictly_ascending(times: Sequence[int]) -> bool:
    return all(map(operator.lt, times, islice(times, 1, None)))


class SampleColumns(NamedTuple):
    """A meter's samples as two parallel lists, times ascending and unique: batches of thousands are
    cheaper to check, integrate and insert as columns than as one tuple per sample."""

    times: list[int]
    values: list[float]

    @classmethod
    def of(cls, times: list[int], values: list[float]) -> SampleColumns:
        """The samples as stored: sorted by time, one per time. A time the batch repeats with the same
        value is stored once; repeated with another value, the batch is refused (which one would be
        the meter's reading cannot be known, and keeping either silently loses the other)."""
        if strictly_ascending(times):
            return cls(times, values)
        latest = dict(zip(times, values, strict=True))
        if len(latest) < len(times):
            _refuse_conflicting_repeats(times, values)
        ordered = sorted(latest)
        return cls(ordered, [latest[time] for time in ordered])


def _refuse_conflicting_repeats(times: Sequence[int], values: Sequence[float]) -> None:
    first_index: dict[int, int] = {}
    for index, time in enumerate(times):
        earlier = first_index.setdefault(time, index)
        if earlier != index and values[earlier] != values[index]:
            raise InvalidInput(
                f"electricityReadings[{index}].time: {time} is also the time of electricityReadings[{earlier}], "
                f"with another reading ({values[earlier]!r} and {values[index]!r}); send one reading per time",
                field=f"electricityReadings[{index}].time",
            )


def usage(readings: Iterable[Reading], max_gap: int = DEFAULT_MAX_GAP_SECONDS) -> Usage:
    samples = latest_per_time(readings)
    if not samples:
        return Usage(kwh=0.0, start=None, end=None)
    kwh = 0.0
    gaps = []
    for before, after in zip(samples, samples[1:], strict=False):
        elapsed = after.time - before.time
        if elapsed > max_gap:
            gaps.append(Gap(before.time, after.time))
        else:
            kwh += (before.reading + after.reading) / 2 * elapsed / HOUR
    return Usage(kwh=kwh, start=samples[0].time, end=samples[-1].time, gaps=tuple(gaps))


def hour_of(time: int) -> int:
    return time - time % HOUR


def energy_by_hour(
    samples: Sequence[tuple[int, float]], max_gap: int, start: int, end: int, bucket: int = HOUR
) -> dict[int, float]:
    """kWh per UTC hour start for the part of each interval that lies in [start, end).

    `samples` are (time, kW) pairs such as `Reading`s, sorted by time and unique per time. Power is
    interpolated linearly inside an interval, so an interval that crosses an hour boundary is split
    exactly at it.
    """
    if len(samples) < 2:
        return {}
    times, values = zip(*samples, strict=True)
    return energy_by_hour_of(times, values, max_gap, start, end, bucket)


def energy_by_hour_of(
    times: Sequence[int], values: Sequence[float], max_gap: int, start: int, end: int, bucket: int = HOUR
) -> dict[int, float]:
    """energy_by_hour for samples given as columns (see SampleColumns); `bucket` seconds (a divisor of an
    hour, e.g. QUARTER) instead of whole hours."""
    energy: dict[int, float] = {}
    get = energy.get
    # Intervals inside one hour (nearly all of them) add (p1 + p2) * seconds to the running sum of
    # their hour, which is divided by 7,200 once, when the next hour starts.
    hour: int | None = None
    hour_end: float = -math.inf
    running = 0.0
    for t1, r1, t2, r2 in zip(times, values, islice(times, 1, None), islice(values, 1, None), strict=False):
        elapsed = t2 - t1
        if elapsed <= 0 or elapsed > max_gap or t2 <= start or t1 >= end:
            continue
        if t2 <= hour_end and hour <= t1 and start <= t1 and t2 <= end:
            running += (r1 + r2) * elapsed
            continue
        if hour is not None:
            energy[hour] = get(hour, 0.0) + running / (2 * HOUR)
            running = 0.0
        hour = t1 - t1 % bucket
        hour_end = hour + bucket
        if t2 <= hour_end and start <= t1 and t2 <= end:
            running = (r1 + r2) * elapsed
            continue
        # An interval across an hour boundary or the window's edge: cut into pieces.
        hour, hour_end = None, -math.inf
        slope = (r2 - r1) / elapsed
        piece_start = max(t1, start)
        stop = min(t2, end)
        while piece_start < stop:
            piece_bucket = piece_start - piece_start % bucket
            piece_end = min(piece_bucket + bucket, stop)
            p1 = r1 + slope * (piece_start - t1)
            p2 = r1 + slope * (piece_end - t1)
            energy[piece_bucket] = get(piece_bucket, 0.0) + (p1 + p2) / 2 * (piece_end - piece_start) / HOUR
            piece_start = piece_end
    if hour is not None:
        energy[hour] = get(hour, 0.0) + running / (2 * HOUR)
    return energy


QUARTER = 900


class HourRollup(NamedTuple):
    """kWh of one UTC hour, and of its first 15, 30 and 45 minutes: a local midnight in any zone with a
    quarter-hour offset (Asia/Kolkata +5:30, Asia/Kathmandu +5:45, Australia/Adelaide +9:30) cuts an hour
    at one of them, so day sums stay exact from hourly rows."""

    kwh: float
    first_15: float
    first_30: float
    first_45: float

    def before(self, offset: int) -> float:
        """kWh from the hour's start to `offset` seconds into it (a multiple of 900)."""
        return (0.0, self.first_15, self.first_30, self.first_45)[offset // QUARTER]


def hour_rollups(quarter_energy: dict[int, float]) -> dict[int, HourRollup]:
    """Quarter-hour kWh (keyed by quarter start) folded into hour rollups."""
    quarters: dict[int, list[float]] = {}
    for start, kwh in quarter_energy.items():
        quarters.setdefault(start - start % HOUR, [0.0, 0.0, 0.0, 0.0])[(start % HOUR) // QUARTER] += kwh
    return {
        hour: HourRollup(q[0] + q[1] + q[2] + q[3], q[0], q[0] + q[1], q[0] + q[1] + q[2])
        for hour, q in quarters.items()
    }


def energy_rollups(samples: Sequence[tuple[int, float]], max_gap: int, start: int, end: int) -> dict[int, HourRollup]:
    """The hour rollups of the energy in [start, end) (start and end whole hours)."""
    return hour_rollups(energy_by_hour(samples, max_gap, start, end, QUARTER))


def energy_rollups_of(
    times: Sequence[int], values: Sequence[float], max_gap: int, start: int, end: int
) -> dict[int, HourRollup]:
    """energy_rollups for samples given as columns: evenly spaced ones (a meter's clock) through
    _evenly_spaced_rollups, the others through energy_by_hour_of. Equal within float rounding."""
    evenly = _evenly_spaced_rollups(times, values, max_gap, start, end)
    if evenly is not None:
        return evenly
    return hour_rollups(energy_by_hour_of(times, values, max_gap, start, end, QUARTER))


def _evenly_spaced_rollups(
    times: Sequence[int], values: Sequence[float], max_gap: int, start: int, end: int
) -> dict[int, HourRollup] | None:
    """The rollups of samples `step` seconds apart, every quarter hour's start one of their times (step
    divides 900 and the times are multiples of it) and all of them inside [start, end]; None otherwise.

    No interval then crosses a quarter boundary, and a quarter's trapezoids over samples low … high sum to
    step * (2 Σ p - p_low - p_high) / 7,200: one C sum per quarter where energy_by_hour_of's loop visits
    every interval (a 1,000-sample store's energy took 165 us instead of 372)."""
    count = len(times)
    if count < 3:
        return None
    first, last = times[0], times[-1]
    step = times[1] - first
    if (
        step <= 0
        or step > max_gap
        or QUARTER % step
        or first % step
        or first < start
        or last > end
        or last != first + step * (count - 1)
        or not all(map(operator.eq, times, range(first, last + 1, step)))
    ):
        return None
    scale = step / (2 * HOUR)
    rollups = {}
    for hour in range(hour_of(first), last, HOUR):
        quarters = [0.0, 0.0, 0.0, 0.0]
        touched = False
        for number in range(4):
            quarter = hour + number * QUARTER
            # The samples at the quarter's start and end (both are times of the grid), or the first and last.
            low = max(0, (quarter - first) // step)
            high = min(count - 1, (quarter + QUARTER - first) // step)
            if high > low:
                quarters[number] = (2 * sum(values[low : high + 1]) - values[low] - values[high]) * scale
                touched = True
        if touched:
            q0, q1, q2, q3 = quarters
            rollups[hour] = HourRollup(q0 + q1 + q2 + q3, q0, q0 + q1, q0 + q1 + q2)
    return rollups


def affected_hour_ranges(times: Iterable[int], max_gap: int) -> list[tuple[int, int]]:
    """Inclusive ranges of hour starts whose energy may change when samples at `times` are written.

    A new sample only changes intervals that touch it, and an interval longer than `max_gap` carries
    no energy, so only hours overlapping [t - max_gap, t + max_gap] can change.
    """
    ordered = times if isinstance(times, list) and strictly_ascending(times) else sorted(set(times))
    if not ordered:
        return []
    # Samples never further apart than 2 * max_gap make one range (the common case, in C loops).
    if len(ordered) == 1 or max(map(operator.sub, islice(ordered, 1, None), ordered)) <= 2 * max_gap:
        return [(hour_of(ordered[0] - max_gap), hour_of(ordered[-1] + max_gap))]
    ranges: list[tuple[int, int]] = []
    first = last = None
    for time in ordered:
        low = time - max_gap
        if last is not None and low - low % HOUR <= last + HOUR:
            high = time + max_gap
            last = high - high % HOUR  # times ascend, so this never moves back
            continue
        if last is not None:
            ranges.append((first, last))
        high = time + max_gap
        first, last = low - low % HOUR, high - high % HOUR
    if last is not None:
        ranges.append((first, last))
    return ranges
