"""Accounts as the SilesiaSolar seed documents them: register, login, logout, info; tokens, their lifetime,
and login throttling; on SQLite and PostgreSQL."""

import re

import pytest

from app import create_app
from repository import db
from repository import users as users_repo
from tests.support.accounts import PASSWORD, register

SEED_REGISTRATION = {"username": "johndoe", "email": "johndoe@example.com", "password": "strong-password"}
SEED_LOGIN = {"username": "johndoe", "password": "strong-password"}
HEX64 = re.compile(r"[0-9a-f]{64}")


def token_headers(token: str, scheme: str = "Token") -> dict:
    return {"Authorization": f"{scheme} {token}"}


def login(client, username="johndoe", password="strong-password", **kwargs):
    return client.post("/auth/login", json={"username": username, "password": password}, **kwargs)


# --- the seed's examples -------------------------------------------------------------------------------------


def test_the_seeds_registration_answers_the_user_and_a_64_hex_token(client):
    response = client.post("/auth/register", json=SEED_REGISTRATION)
    assert response.status_code == 201
    body = response.json()
    assert body["user"] == {"id": body["user"]["id"], "username": "johndoe", "email": "johndoe@example.com"}
    assert HEX64.fullmatch(body["token"])


def test_the_seeds_login_answers_the_same_shape_with_a_new_token(client):
    registered = client.post("/auth/register", json=SEED_REGISTRATION).json()
    response = login(client)
    assert response.status_code == 200
    body = response.json()
    assert body["user"] == registered["user"]
    assert HEX64.fullmatch(body["token"]) and body["token"] != registered["token"]


def test_info_answers_the_tokens_user(client):
    token = client.post("/auth/register", json=SEED_REGISTRATION).json()["token"]
    response = client.get("/auth/info", headers=token_headers(token))
    assert response.status_code == 200
    assert response.json() == {"id": response.json()["id"], "username": "johndoe", "email": "johndoe@example.com"}


def test_logout_answers_204_and_the_token_stops_working(client):
    token = client.post("/auth/register", json=SEED_REGISTRATION).json()["token"]
    assert client.post("/auth/logout", headers=token_headers(token)).status_code == 204
    response = client.get("/auth/info", headers=token_headers(token))
    assert response.status_code == 401
    assert "logged out" in response.json()["detail"]


def test_logout_ends_only_the_presented_token(client, app):
    register(client, "johndoe")
    first = login(client).json()["token"]
    # A second worker's login would end `first`; logging out must not touch other users' tokens either.
    other = register(client, "janedoe")
    assert client.post("/auth/logout", headers=token_headers(first)).status_code == 204
    assert client.get("/auth/info", headers=other.headers).status_code == 200


# --- tokens --------------------------------------------------------------------------------------------------


def test_a_login_invalidates_the_earlier_tokens(client):
    registered = client.post("/auth/register", json=SEED_REGISTRATION).json()["token"]
    first = login(client).json()["token"]
    second = login(client).json()["token"]
    assert client.get("/auth/info", headers=token_headers(registered)).status_code == 401
    assert client.get("/auth/info", headers=token_headers(first)).status_code == 401
    assert client.get("/auth/info", headers=token_headers(second)).status_code == 200


def test_a_bearer_token_works_like_a_token(client):
    token = client.post("/auth/register", json=SEED_REGISTRATION).json()["token"]
    assert client.get("/auth/info", headers=token_headers(token, "Bearer")).status_code == 200
    assert client.get("/auth/info", headers=token_headers(token, "token")).status_code == 200


@pytest.mark.parametrize(
    ("authorization", "detail"),
    [
        (None, "No authorization token provided"),
        ("Token", "no token"),
        ("Token abc", "malformed"),
        ("Token " + "A" * 64, "malformed"),
        ("Token " + "0" * 64, "unknown"),
        ("Bearer " + "0" * 64, "unknown"),
        ("Basic am9objpkb2U=", "must be `Token <token>`"),
        ("Token " + "0" * 64 + " extra", "malformed"),
    ],
)
def test_a_missing_or_bad_token_answers_401_saying_what_is_wrong(client, authorization, detail):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/auth/info", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert detail in response.json()["detail"]


def test_an_expired_token_answers_401_saying_it_expired(client, monkeypatch):
    token = client.post("/auth/register", json=SEED_REGISTRATION).json()["token"]
    from controllers import accounts

    real_now = accounts.now
    monkeypatch.setattr(accounts, "now", lambda: real_now() + 10 * 3600)
    response = client.get("/auth/info", headers=token_headers(token))
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_a_token_lives_token_ttl_hours(config, client, monkeypatch):
    from dataclasses import replace

    from controllers import accounts

    longer = create_app(replace(config, token_ttl_hours=48))
    with longer.test_client() as long_client:
        token = long_client.post("/auth/register", json=SEED_REGISTRATION).json()["token"]
        real_now = accounts.now
        monkeypatch.setattr(accounts, "now", lambda: real_now() + 47 * 3600)
        assert long_client.get("/auth/info", headers=token_headers(token)).status_code == 200
        monkeypatch.setattr(accounts, "now", lambda: real_now() + 48 * 3600)
        assert long_client.get("/auth/info", headers=token_headers(token)).status_code == 401


def test_logout_without_a_token_answers_401(client):
    assert client.post("/auth/logout").status_code == 401


# --- registration rules --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("second", "field"),
    [
        ({"username": "JohnDoe", "email": "other@example.com"}, "username"),
        ({"username": "johndoe", "email": "other@example.com"}, "username"),
        ({"username": "other", "email": "JohnDoe@Example.com"}, "email"),
    ],
)
def test_a_taken_username_or_email_in_any_case_answers_400_naming_the_field(client, second, field):
    assert client.post("/auth/register", json=SEED_REGISTRATION).status_code == 201
    response = client.post("/auth/register", json={**second, "password": "unrelated-passphrase-9"})
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert field in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": "short"}, "password"),
        ({"password": "1234567890"}, "password"),
        ({"password": "QwertyUiop"}, "password"),
        ({"password": "aaaaaaaaaaaa"}, "password"),
        ({"password": "johndoe-2026!"}, "password"),
        ({"password": "x" * 1025}, "password"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "john@localhost"}, "email"),
        ({"email": "john@example.com\n"}, "email"),
    ],
)
def test_a_weak_password_or_a_bad_email_answers_400_naming_the_field(client, body, field):
    response = client.post("/auth/register", json={**SEED_REGISTRATION, **body})
    assert response.status_code == 400
    assert response.json().get("field") == field
    assert _user_count() == 0


@pytest.mark.parametrize(
    "body",
    [
        {"username": "john doe", "email": "j@example.com", "password": PASSWORD},
        {"username": "john\n", "email": "j@example.com", "password": PASSWORD},
        {"username": "", "email": "j@example.com", "password": PASSWORD},
        {"username": "x" * 151, "email": "j@example.com", "password": PASSWORD},
        {"username": "john", "email": "j@example.com"},
        {"username": "john", "email": "j@example.com", "password": PASSWORD, "is_admin": True},
        {"username": "john", "email": "j@example.com", "password": PASSWORD, "is_staff": True},
        {"username": "john", "email": "j@example.com", "password": PASSWORD, "id": 1},
        {"username": 5, "email": "j@example.com", "password": PASSWORD},
        [],
    ],
)
def test_malformed_or_mass_assigning_registrations_answer_400_and_create_nobody(client, body):
    response = client.post("/auth/register", json=body)
    assert response.status_code == 400
    assert _user_count() == 0


def test_a_password_is_never_echoed_in_an_error(client):
    secret = "p" * 2000
    response = client.post("/auth/register", json={**SEED_REGISTRATION, "password": secret})
    assert response.status_code == 400
    assert secret not in response.text


def _user_count() -> int:
    db.connect()
    try:
        return users_repo.users()[1]
    finally:
        db.close()


# --- login ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("username", "password"), [("johndoe", "wrong-password"), ("nobody", "strong-password")])
def test_wrong_credentials_answer_400_with_one_message_whichever_part_was_wrong(client, username, password):
    client.post("/auth/register", json=SEED_REGISTRATION)
    response = login(client, username, password)
    assert response.status_code == 400
    assert response.json()["detail"] == "Unable to log in with provided credentials."


def test_login_is_case_insensitive_in_the_username_only(client):
    client.post("/auth/register", json=SEED_REGISTRATION)
    assert login(client, "JOHNDOE").status_code == 200
    assert login(client, "johndoe", "STRONG-PASSWORD").status_code == 400


def test_too_many_failed_logins_for_one_username_answer_429_with_retry_after_even_for_the_right_password(client):
    client.post("/auth/register", json=SEED_REGISTRATION)
    for _ in range(10):
        assert login(client, password="wrong-password").status_code == 400
    response = login(client)
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 900
    assert response.headers["content-type"].startswith("application/problem+json")
    # Other usernames from the same address are not locked out by it.
    register(client, "janedoe")
    assert login(client, "janedoe", PASSWORD).status_code == 200


def test_a_successful_login_forgives_the_usernames_earlier_failures(client):
    client.post("/auth/register", json=SEED_REGISTRATION)
    for _ in range(9):
        login(client, password="wrong-password")
    assert login(client).status_code == 200
    for _ in range(9):
        assert login(client, password="wrong-password").status_code == 400
    assert login(client).status_code == 200


def test_the_throttle_is_lifted_when_the_window_has_passed(client, monkeypatch):
    from controllers import accounts

    client.post("/auth/register", json=SEED_REGISTRATION)
    for _ in range(10):
        login(client, password="wrong-password")
    assert login(client).status_code == 429
    real_now = accounts.now
    monkeypatch.setattr(accounts, "now", lambda: real_now() + 901)
    assert login(client).status_code == 200


def test_failed_logins_from_one_address_are_limited_across_usernames(config, client):
    from dataclasses import replace

    strict = create_app(replace(config, login_max_failures_per_address=3))
    with strict.test_client() as strict_client:
        strict_client.post("/auth/register", json=SEED_REGISTRATION)
        for name in ("a1", "a2", "a3"):
            assert login(strict_client, name, "whatever-pass").status_code == 400
        response = login(strict_client)
        assert response.status_code == 429
        assert "Retry-After" in response.headers


def test_the_throttle_is_shared_by_every_worker(config, client):
    """Two app instances on one database stand for two worker processes: failures counted by one count in
    the other."""
    client.post("/auth/register", json=SEED_REGISTRATION)
    second_worker = create_app(config)
    with second_worker.test_client() as other:
        for index in range(10):
            worker = client if index % 2 else other
            assert login(worker, password="wrong-password").status_code == 400
        assert login(client).status_code == 429
        assert login(other).status_code == 429


def test_login_with_a_malformed_body_answers_400(client):
    for body in (
        {},
        {"username": "johndoe"},
        {"username": "johndoe", "password": 5},
        {"username": "", "password": "x"},
    ):
        assert client.post("/auth/login", json=body).status_code == 400
    assert client.post("/auth/login", content=b"{", headers={"Content-Type": "application/json"}).status_code == 400


# --- nothing secret is stored in clear -----------------------------------------------------------------------


def test_no_password_or_token_is_stored_in_clear(client, app):
    token = client.post("/auth/register", json=SEED_REGISTRATION).json()["token"]
    login_token = login(client).json()["token"]
    login(client, password="a-wrong-password-guess")
    db.connect()
    try:
        dump = []
        for table in db.database.get_tables():
            cursor = db.database.execute_sql(f'SELECT * FROM "{table}"')
            dump.extend(str(value) for row in cursor.fetchall() for value in row)
    finally:
        db.close()
    text = "\n".join(dump)
    for secret in ("strong-password", "a-wrong-password-guess", token, login_token, token[8:], login_token[8:]):
        assert secret not in text
    assert "$argon2id$" in text


def test_a_login_clears_expired_tokens_of_every_user(client, monkeypatch):
    from controllers import accounts

    register(client, "janedoe")
    client.post("/auth/register", json=SEED_REGISTRATION)
    real_now = accounts.now
    monkeypatch.setattr(accounts, "now", lambda: real_now() + 11 * 3600)
    assert login(client).status_code == 200
    db.connect()
    try:
        remaining = db.database.execute_sql("SELECT user_id FROM auth_tokens").fetchall()
    finally:
        db.close()
    assert [row[0] for row in remaining] == [2]
