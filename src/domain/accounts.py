"""Accounts: who may use the SilesiaSolar API, how they prove it, and how often they may guess.

Passwords are hashed with argon2id; tokens are 64 random hex characters of which only a SHA-256 digest is
stored (knox-style: the first 8 characters find the row, the digest is compared in constant time); failed
logins are counted per username and per client address in a sliding window.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email

from domain.errors import InvalidInput, Unauthorized

USERNAME_MAX_LENGTH = 150
EMAIL_MAX_LENGTH = 254
PASSWORD_MIN_LENGTH = 10
# Long enough for any passphrase or password manager, short enough that nobody makes us hash megabytes.
PASSWORD_MAX_LENGTH = 1024
TOKEN_HEX_LENGTH = 64
TOKEN_KEY_LENGTH = 8

_USERNAME = re.compile(r"[A-Za-z0-9@.+_-]+")
_TOKEN = re.compile(r"[0-9a-f]{64}")
COMMON_PASSWORDS_FILE = Path(__file__).resolve().parent / "data" / "common-passwords.txt"

# argon2id at OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): about 20 ms per hash here.
# Hashes made with weaker parameters are upgraded at the next successful login (needs_rehash).
_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1, hash_len=32, salt_len=16, type=Type.ID)


@dataclass(frozen=True)
class User:
    id: int
    username: str
    email: str
    is_admin: bool


@dataclass(frozen=True)
class NewUser:
    username: str
    username_key: str
    email: str
    email_key: str
    password_hash: str
    is_admin: bool = False


@dataclass(frozen=True)
class IssuedToken:
    """A token as handed to its user once; only `key` and `digest` are ever stored."""

    token: str
    key: str
    digest: str
    created_at: int
    expires_at: int


@dataclass(frozen=True)
class ThrottleRules:
    max_failures_per_username: int = 10
    max_failures_per_address: int = 100
    window_seconds: int = 900


# --- usernames, emails, passwords ------------------------------------------------------------------------


def username_key(username: str) -> str:
    """Usernames are unique regardless of case: `JohnDoe` and `johndoe` are one account."""
    return username.casefold()


def valid_username(username: str) -> str:
    if not 1 <= len(username) <= USERNAME_MAX_LENGTH or not _USERNAME.fullmatch(username):
        raise InvalidInput(
            f"username must be 1 to {USERNAME_MAX_LENGTH} letters, digits or @ . + - _ characters", field="username"
        )
    return username


def valid_email(email: str) -> tuple[str, str]:
    """The address as it will be stored (domain normalised) and its case-insensitive uniqueness key."""
    if len(email) > EMAIL_MAX_LENGTH:
        raise InvalidInput(f"email must be at most {EMAIL_MAX_LENGTH} characters", field="email")
    try:
        normalized = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise InvalidInput(f"email is not a valid address: {error}", field="email") from None
    return normalized, normalized.casefold()


@functools.cache
def common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().casefold() for line in lines if line.strip() and not line.startswith("#"))


def check_password_policy(password: str, *, username: str = "", email: str = "") -> None:
    """Length 10 to 1024, not one of the most common passwords, not the username or the email address."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise InvalidInput(f"password must be at least {PASSWORD_MIN_LENGTH} characters long", field="password")
    if len(password) > PASSWORD_MAX_LENGTH:
        raise InvalidInput(f"password must be at most {PASSWORD_MAX_LENGTH} characters long", field="password")
    folded = unicodedata.normalize("NFKC", password).casefold()
    if folded in common_passwords():
        raise InvalidInput("password is one of the most commonly used passwords; choose another", field="password")
    if len(set(folded)) < 3:
        raise InvalidInput("password repeats too few different characters; choose another", field="password")
    for own in (username.casefold(), email.casefold(), email.split("@")[0].casefold()):
        if len(own) >= 4 and own in folded:
            raise InvalidInput("password must not contain the username or the email address", field="password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether the password matches. Without a hash (unknown user) a dummy hash is verified all the same,
    so the answer takes as long whether or not the username exists."""
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_hex(16))


def new_user(username: str, email: str, password: str, *, is_admin: bool = False) -> NewUser:
    """Validate everything about a new account (naming the field at fault) and hash its password."""
    username = valid_username(username)
    email, email_key = valid_email(email)
    check_password_policy(password, username=username, email=email)
    return NewUser(username, username_key(username), email, email_key, hash_password(password), is_admin)


# --- tokens ---------------------------------------------------------------------------------------------------


def token_digest(token: str) -> str:
    """Tokens carry 256 random bits, so one SHA-256 suffices: there is nothing to guess by brute force."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def issue_token(now: int, ttl_hours: int) -> IssuedToken:
    token = secrets.token_hex(TOKEN_HEX_LENGTH // 2)
    return IssuedToken(token, token[:TOKEN_KEY_LENGTH], token_digest(token), now, now + ttl_hours * 3600)


def digest_matches(token: str, stored_digest: str) -> bool:
    return hmac.compare_digest(token_digest(token).encode(), stored_digest.encode())


def presented_token(authorization: str) -> tuple[str, str]:
    """(scheme, token) from an `Authorization: Token <64 hex>` or `Bearer <64 hex>` header value."""
    scheme, _, token = authorization.strip().partition(" ")
    scheme, token = scheme.lower(), token.strip()
    if scheme not in {"token", "bearer"}:
        raise Unauthorized("The Authorization header must be `Token <token>` (or `Bearer <token>`)")
    if not token:
        raise Unauthorized(f"The Authorization header names the {scheme} scheme but carries no token")
    if not _TOKEN.fullmatch(token):
        raise Unauthorized("The token is malformed: a token is 64 lowercase hexadecimal characters")
    return scheme, token


# --- login throttling -----------------------------------------------------------------------------------------


def throttle_key(kind: str, value: str) -> str:
    """Attempts are counted under a digest, so the table never holds what someone typed as a username."""
    folded = value.casefold() if kind == "username" else value
    return f"{kind[0]}:" + hashlib.sha256(folded.encode("utf-8", "surrogatepass")).hexdigest()


def seconds_until_allowed(failure_times: Sequence[int], limit: int, window_seconds: int, now: int) -> int:
    """0 when another attempt is allowed; otherwise how long until the oldest counted failure leaves the
    window (at least 1 second), with `failure_times` the failures within the window, any order."""
    recent = sorted(time for time in failure_times if time > now - window_seconds)
    if len(recent) < limit:
        return 0
    oldest_that_blocks = recent[len(recent) - limit]
    return max(1, oldest_that_blocks + window_seconds - now)
