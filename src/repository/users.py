"""Users, their API tokens (only digests are stored) and the failed logins that throttle guessing.

(`repository.accounts` is the JOI area's meter-to-price-plan accounts; the people are here.)
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass

import peewee

from domain.accounts import IssuedToken, NewUser, User, digest_matches
from domain.errors import InvalidInput
from repository.db import BaseModel, database, is_sqlite, write_transaction


class UserRow(BaseModel):
    username = peewee.CharField(max_length=150)
    username_key = peewee.CharField(max_length=150, unique=True)
    email = peewee.CharField(max_length=254)
    email_key = peewee.CharField(max_length=254, unique=True)
    password_hash = peewee.CharField(max_length=255)
    is_admin = peewee.BooleanField(default=False)
    created_at = peewee.BigIntegerField()

    class Meta:
        table_name = "users"


class TokenRow(BaseModel):
    user = peewee.ForeignKeyField(UserRow, column_name="user_id", on_delete="CASCADE")
    token_key = peewee.CharField(max_length=8)
    digest = peewee.CharField(max_length=64, unique=True)
    created_at = peewee.BigIntegerField()
    expires_at = peewee.BigIntegerField()

    class Meta:
        table_name = "auth_tokens"


class LoginFailureRow(BaseModel):
    throttle_key = peewee.CharField(max_length=66)
    failed_at = peewee.BigIntegerField()

    class Meta:
        table_name = "login_failures"


@dataclass(frozen=True)
class Credentials:
    user: User
    password_hash: str


@dataclass(frozen=True)
class Authenticated:
    """Who a presented token belongs to, and which token it was (so logout can revoke just that one)."""

    user: User
    token_id: int
    expires_at: int


_USER_FIELDS = (UserRow.id, UserRow.username, UserRow.email, UserRow.is_admin)


def _user(row) -> User:
    return User(id=row[0], username=row[1], email=row[2], is_admin=bool(row[3]))


# --- users ---------------------------------------------------------------------------------------------------


def create_user(new: NewUser, now: int) -> User:
    """Insert the user; a taken username or email (in any case) is an InvalidInput naming the field."""
    with _refusing_duplicates(new), write_transaction():
        _refuse_taken(new)
        user_id = UserRow.insert(
            username=new.username,
            username_key=new.username_key,
            email=new.email,
            email_key=new.email_key,
            password_hash=new.password_hash,
            is_admin=new.is_admin,
            created_at=now,
        ).execute()
    return User(user_id, new.username, new.email, new.is_admin)


def create_user_with_token(new: NewUser, token: IssuedToken) -> User:
    """Register: the user and their first token in one transaction."""
    with write_transaction():
        user = create_user(new, token.created_at)
        _insert_token(user.id, token)
    return user


@contextlib.contextmanager
def _refusing_duplicates(new: NewUser):
    """Two registrations of one name at once: the second one's insert fails on the unique key."""
    try:
        yield
    except peewee.IntegrityError:
        raise InvalidInput("A user with that username or email already exists.", field="username") from None


def _refuse_taken(new: NewUser) -> None:
    taken = (
        UserRow.select(UserRow.username_key, UserRow.email_key)
        .where((UserRow.username_key == new.username_key) | (UserRow.email_key == new.email_key))
        .tuples()
    )
    for username_key, email_key in taken:
        if username_key == new.username_key:
            raise InvalidInput("A user with that username already exists.", field="username")
        if email_key == new.email_key:
            raise InvalidInput("A user with that email already exists.", field="email")


def credentials(username_key: str) -> Credentials | None:
    row = (
        UserRow.select(*_USER_FIELDS, UserRow.password_hash)
        .where(UserRow.username_key == username_key)
        .tuples()
        .first()
    )
    return Credentials(_user(row), row[4]) if row else None


def replace_password_hash(user_id: int, password_hash: str) -> None:
    with write_transaction():
        UserRow.update(password_hash=password_hash).where(UserRow.id == user_id).execute()


def make_admin(user_id: int) -> None:
    with write_transaction():
        UserRow.update(is_admin=True).where(UserRow.id == user_id).execute()


def user(user_id: int) -> User | None:
    row = UserRow.select(*_USER_FIELDS).where(UserRow.id == user_id).tuples().first()
    return _user(row) if row else None


def user_by_username(username_key: str) -> User | None:
    row = UserRow.select(*_USER_FIELDS).where(UserRow.username_key == username_key).tuples().first()
    return _user(row) if row else None


def users(limit: int | None = None, offset: int = 0) -> tuple[list[User], int]:
    query = UserRow.select(*_USER_FIELDS).order_by(UserRow.id)
    if limit is None and not offset:
        rows = list(query.tuples())
        return [_user(row) for row in rows], len(rows)
    page = query.limit(limit if limit is not None else 2**62).offset(offset)
    return [_user(row) for row in page.tuples()], query.count()


# --- tokens --------------------------------------------------------------------------------------------------


def _insert_token(user_id: int, token: IssuedToken) -> int:
    return TokenRow.insert(
        user=user_id,
        token_key=token.key,
        digest=token.digest,
        created_at=token.created_at,
        expires_at=token.expires_at,
    ).execute()


def replace_tokens(user_id: int, token: IssuedToken) -> None:
    """A login: the new token is the user's only one, every earlier token stops working. Expired tokens of
    every user go too, so tokens of users who never come back do not pile up."""
    with write_transaction():
        TokenRow.delete().where((TokenRow.user == user_id) | (TokenRow.expires_at <= token.created_at)).execute()
        _insert_token(user_id, token)


def add_token(user_id: int, token: IssuedToken) -> None:
    """A web page login: one more token for the user, beside the API token (which `replace_tokens` would end).
    Expired tokens of every user go, as at an API login."""
    with write_transaction():
        TokenRow.delete().where(TokenRow.expires_at <= token.created_at).execute()
        _insert_token(user_id, token)


def authenticate(token: str, now: int) -> Authenticated | None | str:
    """The user a token belongs to; None for an unknown token, "expired" for one past its lifetime."""
    candidates = (
        TokenRow.select(TokenRow.id, TokenRow.digest, TokenRow.expires_at, *_USER_FIELDS)
        .join(UserRow)
        .where(TokenRow.token_key == token[:8])
        .tuples()
    )
    for token_id, digest, expires_at, *user_fields in candidates:
        if digest_matches(token, digest):
            if expires_at <= now:
                return "expired"
            return Authenticated(_user(user_fields), token_id, expires_at)
    return None


def revoke_token(token_id: int) -> bool:
    with write_transaction():
        return TokenRow.delete().where(TokenRow.id == token_id).execute() > 0


# --- login throttling ----------------------------------------------------------------------------------------


def _lock_throttle_keys(keys: list[str]) -> None:
    """Serialise attempts on the same keys across every worker (SQLite's write lock does so already)."""
    if is_sqlite():
        return
    for key in sorted(keys):
        lock_id = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
        database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (lock_id,))


def reserve_attempt(
    keys: list[str], now: int, window_seconds: int, limits: list[int], wait_for
) -> tuple[int, list[int]]:
    """Count the failures of each key in the window; unless one is over its limit, record one failure per key
    before the password is checked (so parallel guesses cannot slip past the limit), and return
    (0, the ids recorded). Over a limit: (seconds to wait, []). `wait_for(times, limit)` decides the wait."""
    with write_transaction():
        _lock_throttle_keys(keys)
        cutoff = now - window_seconds
        LoginFailureRow.delete().where(LoginFailureRow.failed_at <= cutoff).execute()
        wait = 0
        for key, limit in zip(keys, limits, strict=True):
            times = [
                row[0]
                for row in LoginFailureRow.select(LoginFailureRow.failed_at)
                .where((LoginFailureRow.throttle_key == key) & (LoginFailureRow.failed_at > cutoff))
                .tuples()
            ]
            wait = max(wait, wait_for(times, limit))
        if wait:
            return wait, []
        ids = [LoginFailureRow.insert(throttle_key=key, failed_at=now).execute() for key in keys]
    return 0, ids


def forget_failures(reserved_ids: list[int], username_throttle_key: str) -> None:
    """A successful login: its reserved attempt was no failure, and the username's earlier failures are forgiven
    (the address's stay counted)."""
    with write_transaction():
        LoginFailureRow.delete().where(
            LoginFailureRow.id.in_(reserved_ids) | (LoginFailureRow.throttle_key == username_throttle_key)
        ).execute()
