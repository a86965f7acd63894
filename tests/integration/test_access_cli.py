"""Closed mode's commands run as an operator runs them (subprocesses): a device key made and revoked, meters
linked to a user, and what the running service then lets each of them do. SQLite and PostgreSQL."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from app import create_app
from config import Config
from domain.accounts import User
from repository import access as access_repo
from repository import db
from repository import users as users_repo
from tests.support.accounts import register

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("create-device-key", "list-device-keys", "revoke-device-key", "link-meter", "unlink-meter")
BATCH = {"smartMeterId": "smart-meter-0", "electricityReadings": [{"time": 1606636800, "reading": 35}]}


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "src/cli.py", *args],
        cwd=ROOT,
        env={"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def client(database_url):
    with create_app(Config(database_url=database_url, require_auth=True)).test_client() as test_client:
        yield test_client
    db.close_all()


def test_a_key_made_by_the_cli_writes_its_meter_and_a_linked_user_reads_it_until_revoked(client, database_url):
    alice = register(client, "alice")
    made = cli(database_url, "create-device-key", "--name", "hall", "--meter", "smart-meter-0")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert re.fullmatch(r"joi_[0-9a-f]{64}", key) and key not in made.stderr
    linked = cli(database_url, "link-meter", "--user", "alice", "smart-meter-0", "--list")
    assert linked.returncode == 0 and linked.stdout.split() == ["smart-meter-0"], linked.stderr

    assert client.post("/readings/store", json=BATCH, headers={"X-API-Key": key}).status_code == 200
    assert client.get("/readings/read/smart-meter-0", headers=alice.headers).status_code == 200

    listed = cli(database_url, "list-device-keys")
    assert listed.returncode == 0 and "meter smart-meter-0" in listed.stdout and key not in listed.stdout
    key_id = re.search(r"^\s*(\d+)\s+joi_", listed.stdout, re.MULTILINE).group(1)
    assert cli(database_url, "unlink-meter", "--user", "alice", "smart-meter-0").returncode == 0
    assert cli(database_url, "revoke-device-key", key_id).returncode == 0
    assert client.post("/readings/store", json=BATCH, headers={"X-API-Key": key}).status_code == 401
    assert client.get("/readings/read/smart-meter-0", headers=alice.headers).status_code == 404


def test_the_commands_refuse_what_they_cannot_do_and_each_has_help(database_url):
    unbound = cli(database_url, "create-device-key", "--name", "nothing")
    assert unbound.returncode == 1 and "at least one" in unbound.stderr and unbound.stdout == ""
    bad_device = cli(database_url, "create-device-key", "--oms-device", "EFE-1")
    assert bad_device.returncode == 1 and "MANUFACTURER:IDENTNR" in bad_device.stderr
    nobody = cli(database_url, "link-meter", "--user", "nobody", "smart-meter-0")
    assert nobody.returncode == 1 and "no user 'nobody'" in nobody.stderr
    assert cli(database_url, "revoke-device-key", "12345").returncode == 1
    listing = cli(database_url, "--help")
    assert all(command in listing.stdout for command in COMMANDS)
    for command in COMMANDS:
        helped = cli(database_url, command, "--help")
        assert helped.returncode == 0 and "usage:" in helped.stdout, command


def test_the_repository_answers_what_pages_ask_about_a_users_meters(database):
    now = 1_700_000_000
    from domain.accounts import new_user

    alice = users_repo.create_user(new_user("alice", "alice@example.com", "strong-password"), now)
    admin = User(alice.id + 1000, "root", "root@example.com", is_admin=True)
    assert access_repo.meter_ids_linked_to(alice.id) == []
    assert access_repo.link_meters(alice.id, ["m-2", "m-1"]) == 2
    assert access_repo.link_meters(alice.id, ["m-1"]) == 0
    assert access_repo.meter_ids_linked_to(alice.id) == ["m-1", "m-2"]
    assert access_repo.user_may_read_meter(alice, "m-1")
    assert not access_repo.user_may_read_meter(alice, "m-3")
    assert access_repo.user_may_read_meter(admin, "m-3")
    assert access_repo.unlink_meters(alice.id, ["m-1", "m-3"]) == 1
    assert access_repo.meter_ids_linked_to(alice.id) == ["m-2"]
