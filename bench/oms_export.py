"""How long GET /export takes for N devices, and how much memory the server needs for it.

    .venv/bin/python bench/oms_export.py                        # 1,000 and 100,000 devices on scratch SQLite
    .venv/bin/python bench/oms_export.py --devices 5000 --database-url postgresql://postgres@127.0.0.1:5432/oms_bench

For each size: fill a scratch database with one seed-shaped message per device through the repository
(bulk, as store_messages), start the real server (uvicorn, one process) on a free loopback port, download
/export streaming, check the row count, order and a sample of cells, and report the seconds and the
server's peak RSS (VmHWM of the uvicorn process). A --database-url must name a scratch database: its OMS
tables are emptied first. Bounded: the server gets 60 s to start and the download 15 min.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from app import prepare_database  # noqa: E402
from config import Config  # noqa: E402
from domain.oms import CSV_HEADER, message_from_json  # noqa: E402
from repository import db  # noqa: E402
from repository import oms as oms_repo  # noqa: E402

HOST = "127.0.0.1"
FILL_BATCH = 5_000
DOWNLOAD_TIMEOUT = 15 * 60
SAMPLES = 50


def message_body(index: int, dimensions: int) -> dict:
    """Device index+1's message: the seed's shape, values that say which device they belong to."""
    data = [
        _record("Time Point (time & date)", f"2021-10-12T{index % 24:02d}:00:00.000000", 0),
        _record("Time Point (date)", "2021-09-30T00:00:00", 1),
    ]
    for dimension in range(dimensions):
        name = "Energy (kWh)" if dimension == 0 else f"Volume {dimension} (m3)"
        data.append(_record(name, expected_new_value(index, dimension), 0))
        data.append(_record(name, index + dimension, 1))
    device = {"type": 4, "status": 0, "identnr": index + 1, "version": 0, "accessnr": index % 256, "manufacturer": 5317}
    return {"data": data, "device": device}


def _record(dimension: str, value, storagenr: int) -> dict:
    return {"value": value, "tariff": 0, "subunit": 0, "dimension": dimension, "storagenr": storagenr}


def expected_new_value(index: int, dimension: int) -> float:
    return (index + 1) * 10 + 0.25 + dimension


def expected_row(index: int, dimension: int) -> list[str]:
    name = "Energy (kWh)" if dimension == 0 else f"Volume {dimension} (m3)"
    message_time = f"2021.10.12 {index % 24:02d}:00:00.000000"
    value_new = f"{expected_new_value(index, dimension):.2f}"
    return [str(index + 1), "5317", "4", "0", message_time, name, value_new, str(index + dimension), "2021.09.30"]


def fill(database_url: str, devices: int, dimensions: int) -> float:
    started = time.perf_counter()
    prepare_database(Config(database_url=database_url, sqlite_synchronous="NORMAL"))
    db.connect()
    try:
        if not db.is_sqlite():
            db.database.execute_sql("TRUNCATE oms_records, oms_messages, oms_devices")
        for start in range(0, devices, FILL_BATCH):
            batch = range(start, min(start + FILL_BATCH, devices))
            oms_repo.store_messages([message_from_json(message_body(index, dimensions)) for index in batch])
    finally:
        db.close_all()
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def server(database_url: str, log_path: Path):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "AUTO_MIGRATE": "0"}
    command = [
        str(Path(sys.executable).parent / "uvicorn"),
        *("--app-dir", str(ROOT / "src"), "--factory", "app:create_app"),
        *("--host", HOST, "--port", str(port), "--no-access-log"),
    ]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_until_up(f"http://{HOST}:{port}/health", process)
        yield process, f"http://{HOST}:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server did not answer {url} within {seconds} s")


def memory_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{key} not found for pid {pid}")


def download(url: str, devices: int, dimensions: int) -> dict:
    """Stream the CSV, parse it as it arrives, and check count, order and a sample of cells."""
    sample = {round(i * (devices - 1) / (SAMPLES - 1)) for i in range(SAMPLES)} if devices > 1 else {0}
    started = time.perf_counter()
    rows, size, first_byte, previous_id = 0, 0, None, 0
    with urllib.request.urlopen(url + "/export", timeout=DOWNLOAD_TIMEOUT) as response:
        if response.headers["Content-Disposition"] != 'attachment; filename="OMS-Data.csv"':
            raise AssertionError(f"Content-Disposition is {response.headers['Content-Disposition']!r}")
        decoder = codecs.getincrementaldecoder("utf-8")()

        def lines():
            nonlocal size, first_byte
            pending = ""
            while block := response.read(64 * 1024):
                first_byte = first_byte or time.perf_counter() - started
                size += len(block)
                *complete, pending = (pending + decoder.decode(block)).split("\r\n")
                yield from (line + "\r\n" for line in complete)
            if pending:
                yield pending

        reader = csv.reader(lines())
        if next(reader) != CSV_HEADER:
            raise AssertionError("the header line differs from the seed's")
        for cells in reader:
            index, dimension = divmod(rows, dimensions)
            device_id = int(cells[0])
            if device_id < previous_id:
                raise AssertionError(f"row {rows + 1}: device {device_id} after {previous_id}")
            previous_id = device_id
            if index in sample and cells != expected_row(index, dimension):
                raise AssertionError(f"row {rows + 1} is {cells}, expected {expected_row(index, dimension)}")
            rows += 1
    seconds = time.perf_counter() - started
    if rows != devices * dimensions:
        raise AssertionError(f"{rows} rows for {devices} devices x {dimensions} dimensions")
    return {"rows": rows, "bytes": size, "export_seconds": seconds, "first_byte_seconds": first_byte}


def measure(devices: int, database_url: str | None = None, dimensions: int = 1, repeats: int = 1) -> dict:
    """Fill a scratch database with `devices` devices, export them through the real server `repeats`
    times, and report the download of median time (its peak memory is that of all of them)."""
    with tempfile.TemporaryDirectory(prefix="oms-bench-") as scratch:
        url = database_url or f"sqlite:///{scratch}/oms.sqlite3"
        fill_seconds = fill(url, devices, dimensions)
        with server(url, Path(scratch) / "server.log") as (process, base_url):
            rss_before = memory_kib(process.pid, "VmRSS")
            downloads = sorted(
                (download(base_url, devices, dimensions) for _ in range(repeats)),
                key=lambda result: result["export_seconds"],
            )
            result = downloads[len(downloads) // 2]
            if repeats > 1:
                result["export_seconds_each"] = [round(each["export_seconds"], 3) for each in downloads]
            peak = memory_kib(process.pid, "VmHWM")
    engine = "sqlite" if url.startswith("sqlite") else "postgresql"
    return {
        "engine": engine,
        "devices": devices,
        "fill_seconds": round(fill_seconds, 2),
        **{key: round(value, 3) if isinstance(value, float) else value for key, value in result.items()},
        "server_rss_before_mib": round(rss_before / 1024, 1),
        "server_peak_rss_mib": round(peak / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[1_000, 100_000])
    parser.add_argument("--database-url", help="a scratch database (its OMS tables are emptied)")
    parser.add_argument("--dimensions", type=int, default=1, help="measured dimensions per message (CSV rows)")
    arguments = parser.parse_args()
    for devices in arguments.devices:
        print(json.dumps(measure(devices, arguments.database_url, arguments.dimensions)), flush=True)


if __name__ == "__main__":
    main()
