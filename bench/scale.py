"""`make bench-scale`: compare-all and a one-day readings/read on PostgreSQL holding 10,000,000 readings
across 10,000 meters, through a real server (uvicorn, workers = cores). Not part of `make test` or `make bench`:
building the data set alone takes minutes.

    .venv/bin/python bench/scale.py [--meters 10000] [--samples 1000] [--requests 400] [--keep]

The data set is made in SQL (generate_series), not through the API: 1,000 samples a meter, one every 15
minutes (10.4 days), values 0-5 kW, and the hourly rollups beside them computed set-based with the service's
rule (the trapezoid of each pair of samples within MAX_READING_GAP_SECONDS; every pair here lies inside one
hour, so an hour's first 15/30/45 minutes are the pairs that start before them). A sample of meters is then
checked against the repository's own recomputation (readings.rollup_differences), and compare-all answers
against the kWh of the raw samples, so a fast wrong data set fails the run.

Requests go one at a time over one keep-alive connection, each to a meter picked at random (so the pages
of 10,000 meters are touched, not one meter's hot pages); p50 and p99 are of the client-side latency.
The database is BENCH_SCALE_DATABASE_URL (default joi_bench_scale), dropped and rebuilt on every run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for _path in (str(BENCH), str(ROOT / "src")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import servers  # noqa: E402

DATABASE_URL = os.environ.get("BENCH_SCALE_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/joi_bench_scale")
STEP = 900  # seconds between a meter's samples
MAX_GAP = 3600  # the service's default MAX_READING_GAP_SECONDS; STEP is within it
TARGET_MS = 20.0
CHECKED_METERS = 20


def value_sql(meter: str, index: str) -> str:
    """The reading of sample `index` of meter number `meter`, in kW with three decimals (exact in JSON)."""
    return f"(mod((({meter})::bigint * 7919 + ({index})::bigint * 104729), 5000)::float8 / 1000)"


def value(meter: int, index: int) -> float:
    return ((meter * 7919 + index * 104729) % 5000) / 1000


def build(url: str, meters: int, samples: int, start: int) -> dict[str, float]:
    """Drop and make the schema (the service's migrations), then fill it. Returns seconds per step."""
    import psycopg2

    servers.reset_postgres(url)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    env = servers.base_env(DATABASE_URL=url)
    subprocess.run([sys.executable, str(ROOT / "src" / "cli.py"), "migrate"], cwd=ROOT, env=env, check=True)
    timings["migrate"] = time.perf_counter() - clock
    connection = psycopg2.connect(url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            steps = [
                ("memory", "SET work_mem = '256MB'; SET maintenance_work_mem = '512MB'"),
                (
                    "meters",
                    "INSERT INTO meters (meter_id) SELECT 'scale-' || lpad(m::text, 5, '0')"
                    " FROM generate_series(1, %(meters)s) AS m ORDER BY m",
                ),
                # Rows first, primary keys after: one sorted index build beats 10M index inserts.
                (
                    "drop keys",
                    "ALTER TABLE meter_samples DROP CONSTRAINT meter_samples_pkey;"
                    " ALTER TABLE energy_rollups DROP CONSTRAINT energy_rollups_pkey",
                ),
                (
                    "samples",
                    'INSERT INTO meter_samples (meter_key, "time", reading)'
                    f" SELECT k.meter_key, %(start)s + i * {STEP}, {value_sql('m', 'i')}"
                    " FROM generate_series(1, %(meters)s) AS m"
                    " JOIN meters AS k ON k.meter_id = 'scale-' || lpad(m::text, 5, '0')"
                    " CROSS JOIN generate_series(0, %(samples)s - 1) AS i",
                ),
                (
                    "rollups",
                    # Each pair (sample i, sample i + 1) lies inside one hour (STEP divides an hour and the series
                    # starts on one); an hour's first 15/30/45 minutes are the pairs that start before them.
                    "INSERT INTO energy_rollups (meter_kind, meter_id, hour_start, kwh, first_15, first_30, first_45)"
                    " SELECT 'joi', 'scale-' || lpad(m::text, 5, '0'), h, SUM(e),"
                    " COALESCE(SUM(e) FILTER (WHERE q < 1), 0), COALESCE(SUM(e) FILTER (WHERE q < 2), 0),"
                    " COALESCE(SUM(e) FILTER (WHERE q < 3), 0)"
                    " FROM (SELECT m, t - mod(t, 3600) AS h, mod(t, 3600) / 900 AS q,"
                    f" ({value_sql('m', 'i')} + {value_sql('m', 'i + 1')}) / 2 * {STEP} / 3600.0 AS e"
                    f" FROM generate_series(1, %(meters)s) AS m, generate_series(0, %(samples)s - 2) AS i,"
                    f" LATERAL (SELECT %(start)s + i * {STEP} AS t) AS moment) AS pairs"
                    " GROUP BY m, h",
                ),
                ("sample key", 'ALTER TABLE meter_samples ADD PRIMARY KEY (meter_key, "time")'),
                ("rollup key", "ALTER TABLE energy_rollups ADD PRIMARY KEY (meter_kind, meter_id, hour_start)"),
                (
                    "rule",
                    "INSERT INTO settings (key, value) VALUES ('rollup_max_gap_seconds', %(gap)s)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                ),
                ("analyze", "VACUUM ANALYZE"),
            ]
            params = {"meters": meters, "samples": samples, "start": start, "gap": str(MAX_GAP)}
            for name, sql in steps:
                clock = time.perf_counter()
                cursor.execute(sql, params)
                timings[name] = time.perf_counter() - clock
    finally:
        connection.close()
    return timings


def check_rollups(url: str, meter_numbers: list[int]) -> str:
    """The SQL-built rollups equal the repository's recomputation from the samples."""
    from repository import db
    from repository import readings as readings_repo

    db.open_database(url)
    db.connect()
    try:
        for number in meter_numbers:
            differences = readings_repo.rollup_differences(meter_id(number), MAX_GAP)
            if differences:
                raise AssertionError(f"{meter_id(number)}: {differences[:3]}")
    finally:
        db.close_all()
    return f"rollups of {len(meter_numbers)} meters equal the repository's recomputation"


def meter_id(number: int) -> str:
    return f"scale-{number:05d}"


def independent_kwh(number: int, samples: int) -> float:
    return sum((value(number, i) + value(number, i + 1)) / 2 * STEP / 3600 for i in range(samples - 1))


def get(connection: http.client.HTTPConnection, path: str) -> tuple[float, object]:
    clock = time.perf_counter()
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    elapsed = (time.perf_counter() - clock) * 1000
    if response.status != 200:
        raise AssertionError(f"GET {path}: {response.status} {body[:200]!r}")
    return elapsed, json.loads(body)


def measure(port: int, paths: list[str]) -> list[float]:
    connection = http.client.HTTPConnection(servers.HOST, port, timeout=30)
    try:
        return [get(connection, path)[0] for path in paths]
    finally:
        connection.close()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def explain(url: str, start: int, number: int) -> list[str]:
    """The plans of the two hot queries (one meter, one day), for the report."""
    import psycopg2

    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            plans = []
            cursor.execute(
                'EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT "time", reading FROM meter_samples WHERE meter_key ='
                ' (SELECT meter_key FROM meters WHERE meter_id = %s) AND "time" >= %s AND "time" <= %s'
                ' ORDER BY "time"',
                (meter_id(number), start + 86_400, start + 2 * 86_400),
            )
            plans.append("readings/read of a day:\n    " + "\n    ".join(row[0] for row in cursor.fetchall()))
            cursor.execute(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT SUM(kwh) FROM energy_rollups WHERE meter_kind = 'joi'"
                " AND meter_id = %s AND hour_start >= %s AND hour_start < %s",
                (meter_id(number), start + 86_400, start + 2 * 86_400),
            )
            plans.append("compare-all's sum of one local day:\n    " + "\n    ".join(r[0] for r in cursor.fetchall()))
            return plans
    finally:
        connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=1_000, help="samples a meter")
    parser.add_argument("--requests", type=int, default=400, help="requests measured per endpoint")
    parser.add_argument("--keep", action="store_true", help="leave the data set in place afterwards")
    args = parser.parse_args(argv)
    now = int(time.time())
    start = now - now % 3600 - args.samples * STEP - 3600
    print(f"building {args.meters * args.samples:,} readings across {args.meters:,} meters in {DATABASE_URL}")
    clock = time.perf_counter()
    timings = build(DATABASE_URL, args.meters, args.samples, start)
    build_seconds = time.perf_counter() - clock
    print(f"built in {build_seconds:.1f} s: " + ", ".join(f"{name} {s:.1f} s" for name, s in timings.items()))
    rng = random.Random(16)
    checked = check_rollups(DATABASE_URL, rng.sample(range(1, args.meters + 1), CHECKED_METERS))
    print(checked)
    results = {}
    try:
        with servers.app_server(DATABASE_URL) as server:
            # compare-all's costs equal kWh x rate of the raw samples (flat plans), for a few meters.
            connection = http.client.HTTPConnection(servers.HOST, server.port, timeout=30)
            _, plans = get(connection, "/price-plans")
            for number in rng.sample(range(1, args.meters + 1), 5):
                _, answer = get(connection, f"/price-plans/compare-all/{meter_id(number)}")
                kwh = independent_kwh(number, args.samples)
                costs = {k: v for item in answer["pricePlanComparisons"] for k, v in item.items()}
                for plan in plans:
                    if set(plan["dayOfWeekMultipliers"].values()) == {1.0} and not plan["standingChargePerDay"]:
                        expected = kwh * plan["unitRate"]
                        if not math.isclose(costs[plan["pricePlanId"]], expected, rel_tol=1e-9):
                            raise AssertionError(f"{meter_id(number)}: {costs} != kWh {kwh} x rates")
            connection.close()
            day = 86_400
            meters = [rng.randint(1, args.meters) for _ in range(args.requests)]
            days = [rng.randrange(0, max(1, (args.samples * STEP) // day - 1)) for _ in range(args.requests)]
            compare = [f"/price-plans/compare-all/{meter_id(m)}" for m in meters]
            read = [
                f"/readings/read/{meter_id(m)}?from={start + d * day}&to={start + (d + 1) * day - 1}"
                for m, d in zip(meters[::-1], days, strict=True)
            ]
            measure(server.port, compare[:20] + read[:20])  # warm-up: imports and pools
            for name, paths in (("compare-all", compare), ("readings/read, one day", read)):
                latencies = measure(server.port, paths)
                results[name] = latencies
        plans = explain(DATABASE_URL, start, rng.randint(1, args.meters))
    finally:
        if not args.keep:
            servers.reset_postgres(DATABASE_URL)
    print()
    print(f"data set: {args.meters * args.samples:,} readings, {args.meters:,} meters, one every {STEP // 60} min;")
    print(f"  build {build_seconds:.1f} s ({', '.join(f'{n} {s:.1f} s' for n, s in timings.items())}); {checked}")
    failed = False
    for name, latencies in results.items():
        p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
        ok = p50 <= TARGET_MS
        failed |= not ok
        print(
            f"  GET {name}: {len(latencies)} requests, random meters, one connection: p50 {p50:.2f} ms,"
            f" p99 {p99:.2f} ms (target p50 <= {TARGET_MS:.0f} ms: {'PASS' if ok else 'FAIL'})"
        )
    for plan in plans:
        print("  " + plan)
    print(f"  load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])} (shared machine)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
