"""The seed's own data logger code against a live server: uvicorn on a free loopback port, SQLite and PostgreSQL."""

import os
import random
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from tests.support.telegrams import SEED_TELEGRAM, make_telegram

ROOT = Path(__file__).resolve().parents[2]
KEY = "APIKEY-BLABLABLA-ABCDEFGHI"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, server: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"the server did not come up at {url}")


@pytest.fixture(params=[True, False], ids=["crc-checked", "crc-unchecked"])
def live_server(request, database_url):
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "AUTO_MIGRATE": "1",
        "DSMR_API_ENABLED": "1",
        "DSMR_API_KEY": KEY,
        "DSMR_VERIFY_CRC": "1" if request.param else "0",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", "src", "--factory", "app:create_app"]
        + ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/health", server)
        yield base, request.param
    finally:
        server.terminate()
        server.wait(timeout=15)


# The seed's client script, as written there (only the print of a successful send is left out).
def send_telegram(telegram, api_url, api_key):
    # Register telegram by simply sending it to the application with a POST request.
    response = requests.post(
        api_url,
        headers={"X-AUTHKEY": api_key},
        data={"telegram": telegram},
    )

    # Old versions of DSMR-reader return 200, new ones 201.
    if response.status_code not in (200, 201):
        # Or you will find the error (hint) in the reponse body on failure.
        print("API error: {}".format(response.text))  # noqa: UP032


def test_the_seed_data_logger_posts_telegrams_that_the_api_lists_back(live_server, capsys):
    base, _ = live_server
    api_servers = ((f"{base}/api/v1/datalogger/dsmrreading", KEY),)
    start = datetime(2024, 3, 31, 0, 0, 10, tzinfo=UTC)
    rng = random.Random(31)
    for index in range(6):
        telegram = make_telegram("v5", rng, timestamp=start + index * timedelta(minutes=20), equipment_id="E0055")
        for api_url, api_key in api_servers:
            send_telegram(telegram, api_url, api_key)
    assert capsys.readouterr().out == ""

    listed = requests.get(f"{base}/api/v2/datalogger/dsmrreading", headers={"X-AUTHKEY": KEY}).json()
    assert listed["count"] == 6
    assert [row["timestamp"] for row in listed["results"]][:2] == ["2024-03-31T00:00:10Z", "2024-03-31T00:20:10Z"]
    assert {row["meter"] for row in listed["results"]} == {"E0055"}
    hours = requests.get(f"{base}/api/v2/statistics/hour?meter=E0055", headers={"X-AUTHKEY": KEY}).json()
    # The meter's first hour (00:00-01:00 UTC) counts from its first reading, 00:00:10.
    assert [hour["hour_start"] for hour in hours["results"]] == ["2024-03-31T00:00:00Z", "2024-03-31T01:00:00Z"]


def test_the_seed_telegram_is_refused_with_a_crc_hint_only_while_crcs_are_checked(live_server, capsys):
    base, crc_checked = live_server
    send_telegram(SEED_TELEGRAM, f"{base}/api/v1/datalogger/dsmrreading", KEY)
    printed = capsys.readouterr().out
    if crc_checked:
        assert printed == "API error: CRC mismatch: computed A97E, telegram states 74B0\n"
    else:
        assert printed == ""
    count = requests.get(f"{base}/api/v2/datalogger/dsmrreading", headers={"X-AUTHKEY": KEY}).json()["count"]
    assert count == (0 if crc_checked else 1)


def test_a_wrong_key_is_refused_in_plain_text(live_server):
    base, _ = live_server
    response = requests.post(
        f"{base}/api/v1/datalogger/dsmrreading", headers={"X-AUTHKEY": "wrong"}, data={"telegram": SEED_TELEGRAM}
    )
    assert (response.status_code, response.text) == (403, "Invalid auth key")
