"""Demo data for `make run`: a week of one-minute readings for each seeded meter, loaded once.

The price plans and the seeded accounts are not demo data: migrations put them in every database.
"""

from __future__ import annotations

import math
import random
import time

from config import DEFAULT_DATABASE_URL, Config
from domain.usage import Reading
from repository import db, settings
from repository import readings as readings_repo

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


def demo_wanted(config: Config, *, asked: bool = False) -> bool:
    """Whether the demo week goes into the configured database: DEMO=1 always, DEMO=0 never; DEMO
    unset, only into the embedded default database (DATABASE_URL unset), or when `asked` (the explicit
    `cli.py demo`). A database the user named never gets fake readings by default."""
    if config.demo is not None:
        return config.demo
    return asked or config.database_url == DEFAULT_DATABASE_URL


def load_demo_when_wanted(config: Config, *, asked: bool = False) -> str:
    """Load the demo week if demo_wanted() says so, on a migrated database. Returns what happened."""
    if not demo_wanted(config, asked=asked):
        if config.demo is False:
            return "demo readings not loaded (DEMO=0)"
        return "demo readings not loaded: DATABASE_URL names your own database (DEMO=1 loads them there)"
    db.connect()
    try:
        loaded = load_demo_readings(int(time.time()), config.max_reading_gap_seconds)
    finally:
        db.close()
    return "demo readings loaded" if loaded else "demo readings already present"
