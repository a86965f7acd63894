"""`cli.py create-admin` (and `make admin`): the only way to make an admin, who then logs in like anyone."""

import subprocess
import sys
from pathlib import Path

import pytest

from repository import db
from repository import users as users_repo

ROOT = Path(__file__).resolve().parents[2]


def create_admin(database_url: str, *args: str, password: str | None = "admin-passphrase-1", stdin: str = ""):
    env = {"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    if password is not None:
        env["ADMIN_PASSWORD"] = password
    return subprocess.run(
        [sys.executable, "src/cli.py", "create-admin", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def stored_user(config, username: str):
    db.open_database(config.database_url)
    db.connect()
    try:
        return users_repo.user_by_username(username)
    finally:
        db.close_all()


def test_create_admin_makes_an_admin_who_logs_in_through_the_api(config, database_url):
    result = create_admin(database_url, "--username", "root", "--email", "root@example.com")
    assert result.returncode == 0, result.stderr
    assert stored_user(config, "root").is_admin
    from app import create_app

    with create_app(config).test_client() as client:
        login = client.post("/auth/login", json={"username": "root", "password": "admin-passphrase-1"})
        assert login.status_code == 200
        token = {"Authorization": f"Token {login.json()['token']}"}
        assert client.get("/admin/users", headers=token).status_code == 200
    db.close_all()


def test_create_admin_refuses_a_weak_password_or_a_taken_name_and_can_promote(config, database_url):
    weak = create_admin(database_url, "--username", "root", "--email", "root@example.com", password="short")
    assert weak.returncode == 1 and "password" in weak.stderr
    assert create_admin(database_url, "--username", "root", "--email", "root@example.com").returncode == 0
    again = create_admin(database_url, "--username", "ROOT", "--email", "other@example.com")
    assert again.returncode == 1 and "--promote" in again.stderr
    assert create_admin(database_url, "--username", "root", "--promote").returncode == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_without_admin_password_the_password_is_asked_twice_and_must_match(config, database_url):
    # getpass reads the terminal when there is one; here stdin stands in for it.
    mismatch = create_admin(
        database_url,
        "--username",
        "root",
        "--email",
        "r@example.com",
        password=None,
        stdin="a-long-passphrase\nanother-one-here\n",
    )
    assert mismatch.returncode == 1 and "differ" in mismatch.stderr
    assert stored_user(config, "root") is None
