"""The start page (what the service is, its areas, Swagger UI, its health) and login / logout."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from controllers.accounts import check_credentials
from controllers.page_access import safe_next
from controllers.page_session import log_in, log_out, page_user
from domain.errors import InvalidInput, TooManyRequests
from repository import db

blueprint = Blueprint("pages_home", __name__)

MAX_USERNAME_CHARS = 150
MAX_PASSWORD_CHARS = 1024


@blueprint.get("/")
def start_page():
    return render_template("home.html", database_ok=db.ping())


@blueprint.get("/login")
def login_form():
    return render_template("login.html", next=safe_next(request.args.get("next")), error=None, username="")


@blueprint.post("/login")
def login():
    username = request.form.get("username", "")
    password = request.form.get("password", "")
    target = safe_next(request.form.get("next"))
    if not username or not password or len(username) > MAX_USERNAME_CHARS or len(password) > MAX_PASSWORD_CHARS:
        return _login_refused("Enter your username and password.", username, target, 400)
    try:
        user = check_credentials(username, password)
    except InvalidInput as refusal:
        return _login_refused(refusal.detail, username, target, 400)
    except TooManyRequests as refusal:
        return _login_refused(refusal.detail, username, target, 429, refusal.headers)
    log_in(user)
    return redirect(target, code=303)


def _login_refused(message: str, username: str, target: str, status: int, headers: dict | None = None):
    page = render_template("login.html", next=target, error=message, username=username[:MAX_USERNAME_CHARS])
    return page, status, headers or {}


@blueprint.post("/logout")
def logout():
    if page_user() is not None:
        log_out()
    return redirect(url_for("pages_home.start_page"), code=303)
