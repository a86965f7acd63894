"""Price plans and what a meter's energy costs on each of them.

Cost = Σ energy × unit rate × the day-of-week multiplier in force + standing charge per local day.
Energy arrives already split per local weekday (the repository sums hourly rollups in SQL), so a plan
is priced from at most seven numbers whatever the meter's history.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from domain.errors import InvalidInput

WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
NO_MULTIPLIERS = (1.0,) * 7


@dataclass(frozen=True)
class PricePlan:
    plan_id: str
    supplier: str
    unit_rate: float
    day_multipliers: tuple[float, ...] = NO_MULTIPLIERS  # Monday first, all seven reachable
    standing_charge_per_day: float = 0.0
    time_zone: str = "UTC"

    def __post_init__(self):
        if len(self.day_multipliers) != 7:
            raise InvalidInput("a price plan needs exactly seven day-of-week multipliers")
        ZoneInfo(self.time_zone)  # fails early on an unknown zone

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def cost(self, energy_by_weekday: Mapping[int, float], local_days: int) -> float:
        energy_cost = sum(
            kwh * self.unit_rate * self.day_multipliers[weekday] for weekday, kwh in energy_by_weekday.items()
        )
        return energy_cost + self.standing_charge_per_day * local_days


@dataclass(frozen=True)
class OffsetSegment:
    """A stretch of UTC time [start, end) over which a zone keeps one UTC offset."""

    start: int
    end: int
    offset: int  # seconds east of UTC


@dataclass(frozen=True)
class PlanComparison:
    current_plan_id: str | None
    costs: tuple[tuple[str, float], ...] = field(default_factory=tuple)  # cheapest first


def offset_segments(zone: ZoneInfo, start: int, end: int) -> list[OffsetSegment]:
    """Split [start, end) where the zone's UTC offset changes (DST)."""
    if zone.key is None:  # a zone not loaded by name: nothing to remember its changes by
        changes = _find_changes(zone, start, end)
    else:
        first_year, last_year = _year_of(start), _year_of(max(start, end - 1))
        changes = [
            change
            for year in range(first_year, last_year + 1)
            for change in _changes_in_year(zone.key, year)
            if start < change[0] < end
        ]
    segments: list[OffsetSegment] = []
    cursor, current = start, _offset(zone, start)
    for moment, offset in changes:
        segments.append(OffsetSegment(cursor, moment, current))
        cursor, current = moment, offset
    segments.append(OffsetSegment(cursor, end, current))
    return segments


def _year_of(time: int) -> int:
    return datetime.fromtimestamp(time, UTC).year


@functools.lru_cache(maxsize=4096)
def _changes_in_year(zone_key: str, year: int) -> tuple[tuple[int, int], ...]:
    """The zone's offset changes in one UTC calendar year, remembered: a comparison over two years of
    readings probed a hundred weeks on every request."""
    year_start = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
    year_end = int(datetime(year + 1, 1, 1, tzinfo=UTC).timestamp())
    return tuple(_find_changes(ZoneInfo(zone_key), year_start, year_end))


def _find_changes(zone: ZoneInfo, start: int, end: int) -> list[tuple[int, int]]:
    """(moment, offset from then on) for each change of the UTC offset at a moment in (start, end) …
    and at `start` itself when the offset differs from the second before it.

    Probes a week at a time (zones never change offset twice in a week) and bisects to the second.
    """
    changes: list[tuple[int, int]] = []
    probe, current = start - 1, _offset(zone, start - 1)
    while probe < end - 1:
        next_probe = min(probe + 7 * 86_400, end - 1)
        if _offset(zone, next_probe) != current:
            change = _first_change(zone, probe, next_probe, current)
            current = _offset(zone, change)
            changes.append((change, current))
            probe = change
            continue
        probe = next_probe
    return changes


def _offset(zone: ZoneInfo, time: int) -> int:
    return int(datetime.fromtimestamp(time, UTC).astimezone(zone).utcoffset().total_seconds())


def _first_change(zone: ZoneInfo, low: int, high: int, offset: int) -> int:
    while high - low > 1:
        middle = (low + high) // 2
        if _offset(zone, middle) == offset:
            low = middle
        else:
            high = middle
    return high


def weekday_at(zone: ZoneInfo, time: int) -> int:
    return datetime.fromtimestamp(time, UTC).astimezone(zone).weekday()


def local_days_spanned(zone: ZoneInfo, start: int, end: int) -> int:
    """Calendar days in the zone touched by [start, end]: what a per-day standing charge bills."""
    first = datetime.fromtimestamp(start, UTC).astimezone(zone).date()
    last = datetime.fromtimestamp(end, UTC).astimezone(zone).date()
    return (last - first).days + 1


def compare(
    plans: Iterable[PricePlan],
    energy_by_zone: Mapping[str, Mapping[int, float]],
    period: tuple[int, int],
    current_plan_id: str | None,
) -> PlanComparison:
    """Cost of every plan, cheapest first, ties broken by plan id."""
    costs = []
    for plan in plans:
        days = local_days_spanned(plan.zone, *period)
        costs.append((plan.plan_id, plan.cost(energy_by_zone.get(plan.time_zone, {}), days)))
    costs.sort(key=lambda item: (item[1], item[0]))
    return PlanComparison(current_plan_id=current_plan_id, costs=tuple(costs))


def recommend(comparison: PlanComparison, limit: int | None) -> PlanComparison:
    if limit is not None and limit < 1:
        raise InvalidInput("limit must be at least 1", field="limit")
    costs = comparison.costs if limit is None else comparison.costs[:limit]
    return PlanComparison(current_plan_id=comparison.current_plan_id, costs=costs)
