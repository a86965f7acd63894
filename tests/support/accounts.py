"""Accounts for API tests: register users through the API, make one an admin, and the headers to send."""

from __future__ import annotations

from dataclasses import dataclass

from repository import db
from repository import users as users_repo

PASSWORD = "strong-password"


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}


def register(client, username: str, password: str = PASSWORD) -> Account:
    response = client.post(
        "/auth/register", json={"username": username, "email": f"{username}@example.com", "password": password}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Account(body["user"]["id"], username, body["token"])


def register_admin(client, username: str = "admin") -> Account:
    """An admin as `make admin` makes one (no endpoint can), logged in through /auth/login like anyone."""
    account = register(client, username)
    db.connect()
    try:
        users_repo.make_admin(account.id)
    finally:
        db.close()
    return account


def location_body(**fields) -> dict:
    return {"street": "SunnyStreet", "number": "62", "city": "SilliconCity", "zip_code": "11-420", **fields}


def delete(client, path: str, headers: dict | None = None, json=None):
    return client.request("DELETE", path, headers=headers, json=json)
