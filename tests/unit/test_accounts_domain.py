"""Account rules: password policy, argon2id hashing, tokens, the Authorization header, throttle windows."""

import pytest
from argon2 import PasswordHasher

from domain.accounts import (
    TOKEN_HEX_LENGTH,
    check_password_policy,
    common_passwords,
    digest_matches,
    hash_password,
    issue_token,
    new_user,
    password_needs_rehash,
    presented_token,
    seconds_until_allowed,
    throttle_key,
    token_digest,
    username_key,
    valid_email,
    verify_password,
)
from domain.errors import InvalidInput, Unauthorized


def test_passwords_are_hashed_with_argon2id_at_owasps_minimum_or_stronger():
    encoded = hash_password("strong-password")
    assert encoded.startswith("$argon2id$v=19$")
    parameters = dict(part.split("=") for part in encoded.split("$")[3].split(","))
    assert int(parameters["m"]) >= 19_456 and int(parameters["t"]) >= 2 and int(parameters["p"]) >= 1
    assert verify_password(encoded, "strong-password")
    assert not verify_password(encoded, "strong-passwore")


def test_verifying_against_no_hash_is_false_and_still_does_the_work():
    assert verify_password(None, "anything-at-all") is False


def test_a_hash_made_with_weaker_parameters_needs_rehashing():
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("strong-password")
    assert password_needs_rehash(weak)
    assert not password_needs_rehash(hash_password("strong-password"))


def test_a_garbage_hash_never_verifies():
    assert verify_password("not-a-hash", "strong-password") is False


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "at least 10"),
        ("x" * 1025, "at most 1024"),
        ("1234567890", "commonly used"),
        ("Password123", "commonly used"),
        ("ＱＷＥＲＴＹＵＩＯＰ", "commonly used"),  # full-width letters fold to qwertyuiop
        ("abababababab", "too few different"),
        ("my-johndoe-pass", "username"),
        ("x-doe@example.com-y", "email"),
    ],
)
def test_the_password_policy_names_what_is_wrong(password, message):
    with pytest.raises(InvalidInput, match=message) as raised:
        check_password_policy(password, username="johndoe", email="doe@example.com")
    assert raised.value.field == "password"


def test_a_long_uncommon_password_passes():
    check_password_policy("correct horse battery", username="johndoe", email="john@example.com")


def test_the_common_password_list_is_loaded_folded_and_without_comments():
    listed = common_passwords()
    assert "1234567890" in listed and "qwertyuiop" in listed
    assert not any(entry.startswith("#") or entry != entry.casefold() for entry in listed)


def test_usernames_and_emails_are_unique_regardless_of_case():
    assert username_key("JohnDoe") == username_key("johndoe")
    assert valid_email("JohnDoe@Example.COM") == ("JohnDoe@example.com", "johndoe@example.com")


def test_new_user_checks_every_field_and_hashes_the_password():
    account = new_user("JohnDoe", "john@example.com", "strong-password")
    assert account.username_key == "johndoe" and account.email_key == "john@example.com"
    assert account.password_hash.startswith("$argon2id$") and "strong-password" not in account.password_hash
    with pytest.raises(InvalidInput) as raised:
        new_user("john doe", "john@example.com", "strong-password")
    assert raised.value.field == "username"


def test_tokens_are_64_hex_characters_stored_as_a_digest_with_an_8_character_key():
    token = issue_token(now=1_000, ttl_hours=10)
    assert len(token.token) == TOKEN_HEX_LENGTH and int(token.token, 16) >= 0
    assert token.key == token.token[:8]
    assert token.digest == token_digest(token.token) and token.token not in token.digest
    assert token.expires_at == 1_000 + 36_000
    assert digest_matches(token.token, token.digest)
    assert not digest_matches("0" * 64, token.digest)
    assert issue_token(0, 1).token != issue_token(0, 1).token


@pytest.mark.parametrize(
    ("header", "expected"),
    [("Token " + "a" * 64, ("token", "a" * 64)), ("bearer  " + "b" * 64, ("bearer", "b" * 64))],
)
def test_token_and_bearer_headers_are_understood(header, expected):
    assert presented_token(header) == expected


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Basic abc", "must be `Token"),
        ("Token", "carries no token"),
        ("Token xyz", "malformed"),
        ("Token " + "a" * 63, "malformed"),
        ("Token " + "A" * 64, "malformed"),
        ("Token " + "a" * 65, "malformed"),
    ],
)
def test_a_bad_authorization_header_is_unauthorized_with_a_reason(header, message):
    with pytest.raises(Unauthorized, match=message):
        presented_token(header)


def test_throttle_keys_do_not_hold_what_was_typed():
    key = throttle_key("username", "MyPassword!IsHere")
    assert key.startswith("u:") and "MyPassword" not in key
    assert key == throttle_key("username", "mypassword!ishere")
    assert throttle_key("address", "127.0.0.1").startswith("a:")


def test_an_attempt_is_allowed_below_the_limit():
    assert seconds_until_allowed([100, 200], limit=3, window_seconds=900, now=300) == 0


def test_at_the_limit_the_wait_lasts_until_the_oldest_counted_failure_leaves_the_window():
    assert seconds_until_allowed([200, 100, 300], limit=3, window_seconds=900, now=400) == 600


def test_failures_outside_the_window_do_not_count():
    assert seconds_until_allowed([0, 100, 950], limit=3, window_seconds=900, now=1_000) == 0


def test_the_wait_is_at_least_one_second():
    assert seconds_until_allowed([100], limit=1, window_seconds=900, now=999) == 1
