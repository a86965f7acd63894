"""The web pages' session: a signed cookie (Flask's session, signed with SECRET_KEY) that holds the CSRF token
and, once logged in, a token of the accounts area (auth_tokens, as an API login makes). The cookie only
carries the token: every request checks it against the database, so logout (which deletes the token row),
an expired token, or an API login elsewhere that ends every token ends the page session too.

Cookie: HttpOnly, SameSite=Lax, and Secure whenever the request came over HTTPS (the connection's scheme,
or X-Forwarded-Proto when TRUSTED_PROXY=1 says a proxy in front sets it). CSRF: a synchronizer token per
session; every POST to a page must send it back (form field `csrf_token` or header `X-CSRF-Token`).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
from datetime import timedelta

from flask import Flask, abort, g, request, session
from flask.sessions import NullSession, SecureCookieSessionInterface

from config import Config
from controllers.context import now, settings
from domain.accounts import User, issue_token
from repository import db
from repository import settings as settings_repo
from repository import users as users_repo
from repository.db import UNAVAILABLE_ERRORS

log = logging.getLogger(__name__)
_key_lock = threading.Lock()

SECRET_KEY_SETTING = "page_session_secret_key"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class _SchemeAwareSessionInterface(SecureCookieSessionInterface):
    """Secure on HTTPS only, so that plain http://127.0.0.1:5000 (make run) still keeps a session."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request_is_https()

    def open_session(self, app: Flask, request):
        _ensure_secret_key(app)  # the session opens before any before_request hook runs
        return super().open_session(app, request)


def request_is_https() -> bool:
    if request.scheme == "https":
        return True
    if settings().trusted_proxy:
        forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        return forwarded == "https"
    return False


def stored_secret_key() -> str:
    """The key kept in the database: made by the first process that asks, then the same for every process."""
    return settings_repo.put_if_absent(SECRET_KEY_SETTING, secrets.token_hex(32))


def _ensure_secret_key(app: Flask) -> None:
    """When a request opens its session: the service starts while the database is down, as the API does,
    and reads the key on the first request that finds the database; until then a page that needs the
    session answers 503."""
    if app.secret_key:
        return
    with _key_lock:
        if not app.secret_key:
            try:
                db.connect()  # the request's connection (its before_request reuses it, teardown closes it)
                app.secret_key = stored_secret_key()
            except UNAVAILABLE_ERRORS as error:
                log.warning("page sessions wait for the database: %s", error)


def install(app: Flask, config: Config) -> None:
    app.secret_key = config.secret_key
    app.session_interface = _SchemeAwareSessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME="joi_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=config.token_ttl_hours),
    )


# --- CSRF ------------------------------------------------------------------------------------------------------


def csrf_token() -> str:
    """This session's token (made on first use); templates put it in every form via `csrf_field()`."""
    if isinstance(session, NullSession):
        abort(503, description="The database cannot be reached right now, so no form can be sent. Retry shortly.")
    token = session.get(CSRF_FIELD)
    if not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


def verify_csrf() -> None:
    """A before_request hook of every page blueprint: an unsafe method without this session's token is 400."""
    if request.method not in UNSAFE_METHODS:
        return
    expected = session.get(CSRF_FIELD)
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    if not expected or not hmac.compare_digest(str(expected), str(sent)):
        abort(400, description="The form has expired or did not come from this site. Reload the page, send it again.")


# --- login state -----------------------------------------------------------------------------------------------


def log_in(user: User) -> None:
    """A fresh session (a new CSRF token too, so none chosen before the login survives it) with a new token."""
    token = issue_token(now(), settings().token_ttl_hours)
    users_repo.add_token(user.id, token)
    session.clear()
    session.permanent = True
    session["token"] = token.token
    csrf_token()
    g.page_user = user


def log_out() -> None:
    found = _authenticated()
    if found is not None:
        users_repo.revoke_token(found.token_id)
    session.clear()
    g.page_user = None


def page_user() -> User | None:
    """The logged-in user of this request, or None (checked against the database once per request)."""
    if "page_user" not in g:
        found = _authenticated()
        g.page_user = found.user if found is not None else None
    return g.page_user


def _authenticated() -> users_repo.Authenticated | None:
    token = session.get("token")
    if not isinstance(token, str) or not token:
        return None
    found = users_repo.authenticate(token, now())
    return found if isinstance(found, users_repo.Authenticated) else None
