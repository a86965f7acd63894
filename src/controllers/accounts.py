"""Accounts: register, login, logout, info; the security functions Connexion calls for the `token` and
`bearer` schemes; and `current_user()` for every controller behind them.

The security functions run in Connexion's security middleware, before the request is validated, so a
request without a valid token gets 401 (and a non-admin on an /admin/ path 403) whatever else is wrong
with it. Their database work runs in a worker thread, off the event loop.
"""

from __future__ import annotations

import math

import anyio.to_thread
from connexion.context import context
from connexion.lifecycle import ConnexionRequest
from flask import request

from controllers.context import now, settings
from controllers.responses import json_response
from domain.accounts import (
    User,
    hash_password,
    issue_token,
    new_user,
    password_needs_rehash,
    presented_token,
    seconds_until_allowed,
    throttle_key,
    username_key,
    verify_password,
)
from domain.errors import Forbidden, InvalidInput, TooManyRequests, Unauthorized
from repository import db
from repository import users as users_repo

ADMIN_PATH_PREFIX = "/admin/"
INVALID_CREDENTIALS = "Unable to log in with provided credentials."


# --- security ------------------------------------------------------------------------------------------------


async def token_info(api_key: str, request: ConnexionRequest):
    """The `token` scheme: the whole Authorization header, `Token <64 hex>` or `Bearer <64 hex>`.

    Operations list `bearer` first and `token` second: a valid Bearer token is taken by the first, and when
    both fail Connexion raises the last 401, which is this one, whose detail says exactly what is wrong
    (Connexion's own Bearer parsing would only say "Invalid authorization header")."""
    _, token = presented_token(api_key)
    return await _token_user(token, request)


async def bearer_info(token: str, request: ConnexionRequest):
    """The `bearer` scheme: `Authorization: Bearer <64 hex>` (what Swagger UI's Authorize sends)."""
    _, token = presented_token(f"Bearer {token}")
    return await _token_user(token, request)


async def _token_user(token: str, request: ConnexionRequest) -> dict:
    found = await anyio.to_thread.run_sync(_authenticate, token, now())
    if found is None:
        raise Unauthorized("Invalid token: it is unknown or was logged out. Log in again for a new one.")
    if found == "expired":
        raise Unauthorized("The token has expired. Log in again for a new one.")
    routing = request.scope.get("extensions", {}).get("connexion_routing", {})
    path = request.scope.get("path", "")[len(routing.get("api_base_path", "")) :]
    if path.startswith(ADMIN_PATH_PREFIX) and not found.user.is_admin:
        raise Forbidden("This operation is for admins only; your account is not an admin.")
    return {"sub": found.user.id, "user": found.user, "token_id": found.token_id}


def _authenticate(token: str, moment: int) -> users_repo.Authenticated | str | None:
    db.connect()
    try:
        return users_repo.authenticate(token, moment)
    finally:
        db.close()


def current_user() -> User:
    """The user whose token authenticated this request (only for operations behind the token schemes)."""
    info = context.get("token_info") if context else None
    if not info or "user" not in info:
        raise Unauthorized("No authorization token provided")
    return info["user"]


# --- endpoints -----------------------------------------------------------------------------------------------


def user_json(user: User) -> dict:
    return {"id": user.id, "username": user.username, "email": user.email}


def register(body: dict):
    account = new_user(body["username"], body["email"], body["password"])
    token = issue_token(now(), settings().token_ttl_hours)
    user = users_repo.create_user_with_token(account, token)
    return json_response({"user": user_json(user), "token": token.token}, 201)


def login(body: dict):
    user = check_credentials(body["username"], body["password"])
    token = issue_token(now(), settings().token_ttl_hours)
    users_repo.replace_tokens(user.id, token)
    return json_response({"user": user_json(user), "token": token.token})


def check_credentials(username: str, password: str) -> User:
    """The user these credentials belong to, under the login throttle (the API's login and the web pages')."""
    config = settings()
    moment = now()
    keys = [throttle_key("username", username), throttle_key("address", request.remote_addr or "unknown")]
    wait, reserved = users_repo.reserve_attempt(
        keys,
        moment,
        config.login_throttle_window_seconds,
        [config.login_max_failures_per_username, config.login_max_failures_per_address],
        lambda times, limit: seconds_until_allowed(times, limit, config.login_throttle_window_seconds, moment),
    )
    if wait:
        raise TooManyRequests(
            f"Too many failed logins for this username or from this address; try again in {wait} seconds.",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    found = users_repo.credentials(username_key(username))
    if not verify_password(found.password_hash if found else None, password):
        raise InvalidInput(INVALID_CREDENTIALS)
    users_repo.forget_failures(reserved, keys[0])
    if password_needs_rehash(found.password_hash):
        users_repo.replace_password_hash(found.user.id, hash_password(password))
    return found.user


def logout():
    users_repo.revoke_token(context["token_info"]["token_id"])
    return "", 204


def info():
    return json_response(user_json(current_user()))
