"""Quick local measurement: the cost of compare-all's weekday sums for one meter with 1,000,000 readings.

    .venv/bin/python bench/compare_cost.py [readings]

Stores the readings (every 10 s) in a temporary SQLite database, then times `weekday_energy` over the whole
period for London alone (the seeded plans) and for three zones with half- and three-quarter-hour offsets.
Prints the median of 21 runs of each. Not part of `make bench`: a before/after check on one machine.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from repository import db, migrations  # noqa: E402
from repository import readings as readings_repo  # noqa: E402

GAP = 3600
ZONE_SETS = {
    "London": ["Europe/London"],
    "Kolkata+Adelaide+Kathmandu": ["Asia/Kolkata", "Australia/Adelaide", "Asia/Kathmandu"],
}


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as directory:
        db.open_database(f"sqlite:///{directory}/compare.sqlite3", sqlite_synchronous="OFF")
        db.connect()
        migrations.migrate()
        start = 1_700_000_000
        for first in range(0, count, 10_000):
            indexes = range(first, min(count, first + 10_000))
            batch = [(start + index * 10, 1.0 + (index % 360) / 100) for index in indexes]
            readings_repo.store("big-meter", batch, GAP)
        end = start + count * 10
        for name, zones in ZONE_SETS.items():
            timings = []
            for _ in range(21):
                began = time.perf_counter()
                readings_repo.weekday_energy("big-meter", zones, start, end, GAP)
                timings.append(time.perf_counter() - began)
            print(f"{count} readings, {name}: median {statistics.median(timings) * 1000:.2f} ms")
        db.close()


if __name__ == "__main__":
    main()
