"""Schema of the accounts area: users, their API tokens (digests only), and failed logins for throttling."""

from __future__ import annotations

import peewee


def _initial_schema(migrator, db: peewee.Database) -> None:
    class Base(peewee.Model):
        class Meta:
            database = db

    class User(Base):
        username = peewee.CharField(max_length=150)
        # Case-folded copies that carry the uniqueness: JohnDoe and johndoe are one account.
        username_key = peewee.CharField(max_length=150, unique=True)
        email = peewee.CharField(max_length=254)
        email_key = peewee.CharField(max_length=254, unique=True)
        password_hash = peewee.CharField(max_length=255)  # argon2id, PHC string format
        is_admin = peewee.BooleanField(default=False)
        created_at = peewee.BigIntegerField()  # epoch seconds

        class Meta:
            table_name = "users"

    class AuthToken(Base):
        user = peewee.ForeignKeyField(User, column_name="user_id", on_delete="CASCADE", index=True)
        token_key = peewee.CharField(max_length=8, index=True)  # the token's first 8 characters
        digest = peewee.CharField(max_length=64, unique=True)  # SHA-256 of the whole token, hex
        created_at = peewee.BigIntegerField()
        expires_at = peewee.BigIntegerField()

        class Meta:
            table_name = "auth_tokens"

    class LoginFailure(Base):
        # "u:" or "a:" + SHA-256 of the case-folded username or of the client address.
        throttle_key = peewee.CharField(max_length=66)
        failed_at = peewee.BigIntegerField()

        class Meta:
            table_name = "login_failures"
            indexes = ((("throttle_key", "failed_at"), False),)

    db.create_tables([User, AuthToken, LoginFailure])
    db.execute_sql("CREATE INDEX login_failures_failed_at ON login_failures (failed_at)")


MIGRATIONS = [
    ("accounts_0001_users_tokens_login_failures", _initial_schema),
]
