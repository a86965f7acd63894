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


def latest_per_time(readings: Iterable[Reading]) -> list[Reading]:
    """Sorted by time, one sample per second: a repeated time keeps the value sent last (meters retry)."""
    by_time = {reading.time: reading for reading in readings}
    return [by_time[time] for time in sorted(by_time)]


def check_readings(readings: Sequence[Reading], *, now: int, max_future_skew: int) -> None:
    """Meaning the schema cannot state: finite values and no clock that runs ahead of ours."""
    for index, reading in enumerate(readings):
        if not math.isfinite(reading.reading) or reading.reading < 0:
            raise InvalidInput(
                f"electricityReadings[{index}].reading: {reading.reading!r} is not a finite number >= 0",
                field=f"electricityReadings[{index}].reading",
            )
        if reading.time > now + max_future_skew:
            raise InvalidInput(
                f"electricityReadings[{index}].time: {reading.time} lies more than {max_future_skew} s in the future",
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
    for (t1, r1), (t2, r2) in zip(samples, samples[1:], strict=False):
        elapsed = t2 - t1
        if elapsed <= 0 or elapsed > max_gap or t2 <= start or t1 >= end:
            continue
        slope = (r2 - r1) / elapsed
        piece_start = max(t1, start)
        stop = min(t2, end)
        while piece_start < stop:
            bucket = piece_start - piece_start % HOUR
            piece_end = min(bucket + HOUR, stop)
            p1 = r1 + slope * (piece_start - t1)
            p2 = r1 + slope * (piece_end - t1)
            energy[bucket] = energy.get(bucket, 0.0) + (p1 + p2) / 2 * (piece_end - piece_start) / HOUR
            piece_start = piece_end
    return energy


def affected_hour_ranges(times: Iterable[int], max_gap: int) -> list[tuple[int, int]]:
    """Inclusive ranges of hour starts whose energy may change when samples at `times` are written.

    A new sample only changes intervals that touch it, and an interval longer than `max_gap` carries
    no energy, so only hours overlapping [t - max_gap, t + max_gap] can change.
    """
    ranges: list[tuple[int, int]] = []
    for time in sorted(set(times)):
        first, last = hour_of(time - max_gap), hour_of(time + max_gap)
        if ranges and first <= ranges[-1][1] + HOUR:
            ranges[-1] = (ranges[-1][0], max(last, ranges[-1][1]))
        else:
            ranges.append((first, last))
    return ranges
