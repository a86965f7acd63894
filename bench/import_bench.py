"""Section 11 of bench/run.py: `cli.py import-readings` of a generated 1,000,000-reading CSV, run as a user runs it
(a subprocess on a scratch database: start-up, parsing, storing and rollups all timed), beside references measured
in the same run on the same file:

- the sqlite3 shell's own `.import` of the file into a plain table (C parsing, no index, no rollups);
- Python's sqlite3 `executemany` of the same rows (parsed with the csv module) into a plain table.

Then the same file again (a resumed import: every reading already present), `verify-statistics` on the result,
and the import into PostgreSQL (BENCH_DATABASE_URL, as section 6) when it answers.

    .venv/bin/python bench/import_bench.py [READINGS]     # prints the figures as JSON
"""

from __future__ import annotations

import csv
import json
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
READINGS = 1_000_000
METERS = 10
T0 = 1_600_000_000
STEP = 10


def generate(path: Path, readings: int = READINGS, meters: int = METERS) -> None:
    """`meters` meters with a reading every 10 s each, meter after meter (as export-readings writes them)."""
    rng = random.Random(11)
    per_meter = readings // meters
    with path.open("w") as out:
        out.write("smartMeterId,time,reading\n")
        for meter in range(meters):
            out.writelines(
                f"smart-meter-{meter},{T0 + STEP * n},{round(rng.uniform(0.05, 7.5), 4)!r}\n" for n in range(per_meter)
            )


def _cli(database_url: str, *args: str) -> tuple[subprocess.CompletedProcess, float, float]:
    """The command's result, wall seconds and CPU seconds (user + system of the child)."""
    env = {**os.environ, "DATABASE_URL": database_url}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "src/cli.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if completed.returncode:
        raise RuntimeError(f"cli.py {' '.join(args)} failed: {(completed.stderr or completed.stdout).strip()[-300:]}")
    return completed, wall, cpu


def _fresh_sqlite(directory: Path, name: str) -> tuple[Path, sqlite3.Connection]:
    path = directory / name
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=wal")
    connection.execute("PRAGMA synchronous=FULL")  # as the service's default (SQLITE_SYNCHRONOUS)
    connection.execute('CREATE TABLE plain (meter_id TEXT, "time" INTEGER, reading REAL)')
    return path, connection


def sqlite_shell_import(directory: Path, csv_path: Path) -> tuple[float, float] | None:
    """Wall and CPU seconds of the sqlite3 shell's .import, or None without the shell."""
    shell = shutil.which("sqlite3")
    if shell is None:
        return None
    path, connection = _fresh_sqlite(directory, "shell.sqlite3")
    connection.close()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [shell, str(path), "PRAGMA synchronous=FULL;", ".mode csv", f".import --skip 1 {csv_path} plain"],
        check=True,
        capture_output=True,
        timeout=600,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def python_executemany(directory: Path, csv_path: Path) -> tuple[float, float]:
    """Wall and CPU seconds of reading the CSV with the csv module and one executemany into a plain table."""
    _, connection = _fresh_sqlite(directory, "executemany.sqlite3")
    cpu_started = time.process_time()
    started = time.perf_counter()
    with csv_path.open(newline="") as source:
        rows = csv.reader(source)
        next(rows)
        connection.execute("BEGIN")
        connection.executemany(
            'INSERT INTO plain (meter_id, "time", reading) VALUES (?, ?, ?)',
            ((meter, int(moment), float(reading)) for meter, moment, reading in rows),
        )
        connection.execute("COMMIT")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    connection.close()
    return seconds, cpu


def _imported(completed: subprocess.CompletedProcess) -> str:
    return next((line for line in completed.stdout.splitlines() if " rows read: " in line), completed.stdout.strip())


def measure_sqlite(readings: int = READINGS) -> dict:
    with tempfile.TemporaryDirectory(prefix="import-bench-") as scratch:
        directory = Path(scratch)
        csv_path = directory / "readings.csv"
        generate(csv_path, readings)
        shell_seconds, shell_cpu = sqlite_shell_import(directory, csv_path) or (None, None)
        executemany_seconds, executemany_cpu = python_executemany(directory, csv_path)
        url = f"sqlite:///{directory / 'joi.sqlite3'}"
        _cli(url, "migrate")
        first, wall, cpu = _cli(url, "import-readings", str(csv_path))
        again, resumed_wall, _ = _cli(url, "import-readings", str(csv_path))
        verified, _, _ = _cli(url, "verify-statistics")
        return {
            "readings": readings,
            "file_mib": round(csv_path.stat().st_size / 2**20, 1),
            "cli_wall_seconds": round(wall, 2),
            "cli_cpu_seconds": round(cpu, 2),
            "cli_readings_per_second": round(readings / wall),
            "cli_readings_per_cpu_second": round(readings / cpu),
            "cli_summary": _imported(first),
            "resumed_wall_seconds": round(resumed_wall, 2),
            "resumed_summary": _imported(again),
            "verify_statistics": verified.stdout.strip().splitlines()[-1],
            "sqlite3_shell_import_seconds": None if shell_seconds is None else round(shell_seconds, 2),
            "sqlite3_shell_import_cpu_seconds": None if shell_cpu is None else round(shell_cpu, 2),
            "sqlite3_shell_readings_per_second": None if shell_seconds is None else round(readings / shell_seconds),
            "sqlite3_shell_readings_per_cpu_second": None if not shell_cpu else round(readings / shell_cpu),
            "python_executemany_seconds": round(executemany_seconds, 2),
            "python_executemany_cpu_seconds": round(executemany_cpu, 2),
            "python_executemany_readings_per_second": round(readings / executemany_seconds),
            "python_executemany_readings_per_cpu_second": round(readings / executemany_cpu),
        }


def measure_postgres(url: str, readings: int = READINGS) -> dict:
    import servers

    servers.reset_postgres(url)
    try:
        with tempfile.TemporaryDirectory(prefix="import-bench-pg-") as scratch:
            csv_path = Path(scratch) / "readings.csv"
            generate(csv_path, readings)
            _cli(url, "migrate")
            first, wall, cpu = _cli(url, "import-readings", str(csv_path))
            return {
                "readings": readings,
                "cli_wall_seconds": round(wall, 2),
                "cli_cpu_seconds": round(cpu, 2),
                "cli_readings_per_second": round(readings / wall),
                "cli_summary": _imported(first),
            }
    finally:
        servers.reset_postgres(url)


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH))
    print(json.dumps(measure_sqlite(int(sys.argv[1]) if len(sys.argv) > 1 else READINGS), indent=2))
