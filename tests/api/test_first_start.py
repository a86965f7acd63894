"""`python src/app.py`, the seed's run command, started as a new user would: a copy of the service whose
embedded default database is its own, so the real one under var/ is never touched."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
SEED_STORE = {
    "smartMeterId": "smart-meter-0",
    "electricityReadings": [
        {"time": 1606636800, "reading": 0.0503},
        {"time": 1606636860, "reading": 0.0621},
        {"time": 1606636920, "reading": 0.0222},
        {"time": 1606636980, "reading": 0.0423},
        {"time": 1606637040, "reading": 0.0191},
    ],
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def call(url: str, body: dict | None = None) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


class Started:
    def __init__(self, process: subprocess.Popen, base: str, home: Path):
        self.process, self.base, self.home = process, base, home

    def stop(self) -> str:
        """Stops the server and returns what it printed on stderr."""
        self.process.terminate()
        try:
            _, stderr = self.process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate()
        return stderr


def start(tmp_path: Path, **env_overrides: str) -> Started:
    home = tmp_path / "joi"
    shutil.copytree(ROOT / "src", home / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "openapi", home / "openapi")
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "DEMO", "HOST"}}
    env.update(PORT=str(port), **env_overrides)
    process = subprocess.Popen(
        [sys.executable, str(home / "src" / "app.py")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = Started(process, f"http://127.0.0.1:{port}", home)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"python src/app.py exited: {started.stop()}")
        try:
            if call(f"{started.base}/health")[0] == 200:
                return started
        except OSError:
            time.sleep(0.2)
    stderr = started.stop()
    pytest.fail(f"python src/app.py did not answer within 60 s: {stderr}")


@pytest.fixture
def default_start(tmp_path):
    started = start(tmp_path)
    yield started
    started.stop()


def test_python_src_app_py_loads_the_demo_into_the_default_database_and_answers_the_seed_examples(default_start):
    base = default_start.base
    assert (default_start.home / "var" / "joi.sqlite3").exists()
    status, readings = call(f"{base}/readings/read/smart-meter-0")
    assert status == 200 and len(readings) > 1000  # the demo week
    assert call(f"{base}/readings/store", SEED_STORE) == (200, SEED_STORE)
    status, readings = call(f"{base}/readings/read/smart-meter-0")
    assert all(reading in readings for reading in SEED_STORE["electricityReadings"])
    status, comparison = call(f"{base}/price-plans/compare-all/smart-meter-0")
    assert status == 200 and comparison["pricePlanId"] == "price-plan-0"
    assert [next(iter(cost)) for cost in comparison["pricePlanComparisons"]] == [
        "price-plan-2",
        "price-plan-1",
        "price-plan-0",
    ]
    status, recommended = call(f"{base}/price-plans/recommend/smart-meter-0?limit=2")
    assert status == 200 and recommended == comparison["pricePlanComparisons"][:2]


def test_a_normal_start_prints_no_warning(default_start):
    stderr = default_start.stop()
    assert "Warning" not in stderr and "httpx2" not in stderr, stderr


def test_python_src_app_py_leaves_a_named_database_without_demo_readings(tmp_path):
    started = start(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'mine.sqlite3'}")
    try:
        status, body = call(f"{started.base}/readings/read/smart-meter-0")
        assert status == 404, body
        assert call(f"{started.base}/price-plans/compare-all/smart-meter-1")[0] == 404
    finally:
        started.stop()
