"""Demo data for `make run`: a week of one-minute readings for each seeded meter, loaded once."""

from __future__ import annotations

import math
import random

from domain.usage import Reading
from repository import readings as readings_repo
from repository import settings

DEMO_METERS = ("smart-meter-0", "smart-meter-1", "smart-meter-2", "smart-meter-3", "smart-meter-4")
DEMO_SETTING = "demo_readings_loaded"
WEEK_MINUTES = 7 * 24 * 60


def household_week(meter_index: int, end: int) -> list[Reading]:
    """A plausible household: base load, a morning and an evening peak, noise; deterministic per meter."""
    rng = random.Random(meter_index)
    base = 0.15 + 0.1 * meter_index
    start = end - end % 60 - WEEK_MINUTES * 60
    readings = []
    for minute in range(WEEK_MINUTES):
        time = start + minute * 60
        hour = (time % 86_400) / 3600
        peaks = 1.2 * math.exp(-((hour - 7.5) ** 2) / 2) + 2.0 * math.exp(-((hour - 19) ** 2) / 4)
        readings.append(Reading(time, round(base + peaks * (1 + 0.3 * meter_index) + rng.uniform(0, 0.2), 4)))
    return readings


def load_demo_readings(now: int, max_gap: int) -> bool:
    """Load the demo week ending at `now` unless it was loaded before. Returns whether it loaded."""
    if settings.get(DEMO_SETTING):
        return False
    for index, meter_id in enumerate(DEMO_METERS):
        readings_repo.store(meter_id, household_week(index, now), max_gap)
    settings.put(DEMO_SETTING, str(now))
    return True
