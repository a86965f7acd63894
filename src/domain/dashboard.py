"""What the dashboard pages show, computed without I/O: how finely a window is bucketed so a chart line stays
under ~2,000 points, where a line must break (no data is drawn as no data, not as a straight line), and the
energy per local day from hourly rollups."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from domain.errors import InvalidInput
from domain.usage import HOUR, QUARTER, HourRollup

MAX_POINTS = 2000
DAY = 86_400
# Bucket widths people can read off an axis; the smallest one that keeps a window under MAX_POINTS is used.
_EPOCH = re.compile(r"[0-9]{1,12}")
LAST_MOMENT = 253_402_300_799  # 9999-12-31T23:59:59Z
BUCKET_STEPS = (1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, DAY)


def bucket_seconds(start: int, end: int, max_points: int = MAX_POINTS) -> int:
    """The bucket width for [start, end] so that at most `max_points` buckets cover it."""
    needed = max(1, math.ceil((end - start + 1) / max_points))
    for step in BUCKET_STEPS:
        if step >= needed:
            return step
    return math.ceil(needed / DAY) * DAY


def with_breaks(points: Sequence[tuple[int, float]], longest_join: int) -> tuple[list[int | None], list[float | None]]:
    """x and y of a line, with a (None, None) point wherever two neighbours lie further apart than
    `longest_join` seconds, so the chart shows the gap instead of bridging it."""
    xs: list[int | None] = []
    ys: list[float | None] = []
    previous = None
    for time, value in points:
        if previous is not None and time - previous > longest_join:
            xs.append(previous + 1)
            ys.append(None)
        xs.append(time)
        ys.append(value)
        previous = time
    return xs, ys


def energy_by_local_day(rollups: Mapping[int, HourRollup], zone: ZoneInfo) -> dict[date, float]:
    """kWh per local calendar day in `zone`. An hour that a local midnight cuts (a zone with a quarter-hour
    offset) is split by its first 15, 30 or 45 minutes; offsets that are no whole quarter (local mean time
    before ~1980) are split at the quarter before the midnight."""
    days: dict[date, float] = {}
    for hour_start, rollup in rollups.items():
        local = datetime.fromtimestamp(hour_start, zone)
        offset_into_day = local.hour * HOUR + local.minute * 60 + local.second
        cut = DAY - offset_into_day  # seconds from this hour's start to the next local midnight
        today = local.date()
        if cut >= HOUR:
            days[today] = days.get(today, 0.0) + rollup.kwh
            continue
        before = rollup.before(cut - cut % QUARTER)
        days[today] = days.get(today, 0.0) + before
        tomorrow = today + timedelta(days=1)
        days[tomorrow] = days.get(tomorrow, 0.0) + rollup.kwh - before
    return dict(sorted(days.items()))


def parse_moment(value: str | None, field: str) -> int | None:
    """A window edge from a form or a query: epoch seconds, or an ISO date/time (UTC unless it says a zone)."""
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    refusal = InvalidInput(f"{field}: give a date and time like 2026-11-30T18:00 (UTC), or epoch seconds", field=field)
    if _EPOCH.fullmatch(text):
        moment = int(text)
    else:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise refusal from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        moment = int(parsed.timestamp())
    if not 0 <= moment <= LAST_MOMENT:
        raise refusal
    return moment


def checked_window(start: int, end: int) -> tuple[int, int]:
    if start > end:
        raise InvalidInput("from must not be after to", field="from")
    return start, end


def utc_input_value(moment: int) -> str:
    """The value of an <input type="datetime-local"> that shows `moment` in UTC."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M")


def utc_text(moment: int | datetime | None) -> str:
    """An epoch second or an aware datetime as "2026-11-30 18:00 UTC"."""
    if moment is None:
        return "-"
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M UTC")


def total(values: Iterable[float]) -> float:
    return math.fsum(values)
