"""Energy from instantaneous kW samples (DESIGN.md §3).

Between two consecutive samples the power is taken to change linearly, so the energy is the trapezoid
(p1 + p2) / 2 * (t2 - t1) / 3600 kWh. A gap longer than the maximum carries no energy: it is reported,
never invented. Rollups cut that same energy into whole UTC hours so that a plan can be priced from a
few thousand rows instead of every raw sample.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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


def check_readings(readings: Sequence[tuple[int, float]], *, now: int, max_future_skew: int) -> None:
    """Meaning the schema cannot state: finite values and no clock that runs ahead of ours."""
    latest_allowed = now + max_future_skew
    for index, (time, value) in enumerate(readings):
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


def energy_by_hour(samples: Sequence[tuple[int, float]], max_gap: int, start: int, end: int) -> dict[int, float]:
    """kWh per UTC hour start for the part of each interval that lies in [start, end).

    `samples` are (time, kW) pairs such as `Reading`s, sorted by time and unique per time. Power is
    interpolated linearly inside an interval, so an interval that crosses an hour boundary is split
    exactly at it.
    """
    energy: dict[int, float] = {}
    get = energy.get
    for (t1, r1), (t2, r2) in zip(samples, samples[1:], strict=False):
        elapsed = t2 - t1
        if elapsed <= 0 or elapsed > max_gap or t2 <= start or t1 >= end:
            continue
        slope = (r2 - r1) / elapsed
        bucket = t1 - t1 % HOUR
        if start <= t1 and t2 <= end and t2 <= bucket + HOUR:
            # The common case, the whole interval inside one hour: the loop below in one step, same arithmetic.
            energy[bucket] = get(bucket, 0.0) + (r1 + (r1 + slope * elapsed)) / 2 * elapsed / HOUR
            continue
        piece_start = max(t1, start)
        stop = min(t2, end)
        while piece_start < stop:
            bucket = piece_start - piece_start % HOUR
            piece_end = min(bucket + HOUR, stop)
            p1 = r1 + slope * (piece_start - t1)
            p2 = r1 + slope * (piece_end - t1)
            energy[bucket] = get(bucket, 0.0) + (p1 + p2) / 2 * (piece_end - piece_start) / HOUR
            piece_start = piece_end
    return energy


def affected_hour_ranges(times: Iterable[int], max_gap: int) -> list[tuple[int, int]]:
    """Inclusive ranges of hour starts whose energy may change when samples at `times` are written.

    A new sample only changes intervals that touch it, and an interval longer than `max_gap` carries
    no energy, so only hours overlapping [t - max_gap, t + max_gap] can change.
    """
    ranges: list[tuple[int, int]] = []
    first = last = None
    for time in sorted(set(times)):
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
