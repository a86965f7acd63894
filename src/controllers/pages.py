"""The web pages: server-rendered Jinja templates (src/templates/) on plain Flask routes beside Connexion.

The pages are not in the OpenAPI document on purpose: it describes the machine API (what Swagger UI shows,
what schemathesis fuzzes, what clients are generated from); HTML for people is no API contract, and its forms
carry a CSRF token no API client has. The pages call the same domain and repository functions as the API.

A page area is one module `src/controllers/pages_<area>.py` that defines `blueprint` (a flask.Blueprint named
`pages_<area>`) and optionally `NAVIGATION`, a list of `NavItem`s for the shared menu. `install()` finds every
such module, so adding an area touches no shared file. Every page blueprint gets the CSRF check, HTML error
pages and the security headers.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Flask, Response, render_template, request
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

import controllers
from config import Config
from controllers import page_session
from domain.dashboard import utc_text
from domain.errors import DomainError
from repository.db import UNAVAILABLE_ERRORS

log = logging.getLogger(__name__)

SRC = Path(__file__).resolve().parent.parent
# Scripts and styles only from this site: no inline script (chart data sits in <script type="application/json">,
# which is never run) and no style attribute or <style> element (Chart.js and charts.js size elements through
# the DOM's style properties, which a CSP does not govern).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@dataclass(frozen=True)
class NavItem:
    label: str
    endpoint: str  # a Flask endpoint, e.g. "pages_oms.devices"
    order: int = 50  # lower comes first
    admin_only: bool = False
    login_only: bool = False


def page_modules() -> list[str]:
    found = pkgutil.iter_modules(controllers.__path__)
    return sorted(f"controllers.{info.name}" for info in found if info.name.startswith("pages_"))


def install(app: Flask, config: Config) -> None:
    page_session.install(app, config)
    app.template_folder = str(SRC / "templates")
    app.jinja_env.globals.update(csrf_token=page_session.csrf_token, csrf_field=csrf_field)
    app.jinja_env.filters["utc"] = utc_text
    navigation: list[NavItem] = []
    for name in page_modules():
        module = importlib.import_module(name)
        blueprint: Blueprint = module.blueprint
        _prepare(blueprint)
        app.register_blueprint(blueprint)
        navigation.extend(getattr(module, "NAVIGATION", []))
    navigation.sort(key=lambda item: (item.order, item.label))

    @app.context_processor
    def _layout_context():
        try:
            user = page_session.page_user()
        except UNAVAILABLE_ERRORS:  # an error page about the database must still render
            user = None
        items = [
            item
            for item in navigation
            if not (item.admin_only and not (user and user.is_admin)) and not (item.login_only and user is None)
        ]
        return {"current_user": user, "navigation": items}


def _prepare(blueprint: Blueprint) -> None:
    """Once per blueprint (a process may build several apps, tests do): the hooks every page area gets."""
    if getattr(blueprint, "_joi_page_hooks", False):
        return
    blueprint.before_request(page_session.verify_csrf)
    blueprint.after_request(_security_headers)
    blueprint.register_error_handler(HTTPException, _http_error_page)
    blueprint.register_error_handler(DomainError, _domain_error_page)
    for unavailable in UNAVAILABLE_ERRORS:
        blueprint.register_error_handler(unavailable, _unavailable_page)
    blueprint._joi_page_hooks = True


def csrf_field() -> Markup:
    """The hidden input every page form carries: `{{ csrf_field() }}` in a template."""
    return Markup('<input type="hidden" name="%s" value="%s">') % (page_session.CSRF_FIELD, page_session.csrf_token())


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        # Pages show one user's data: never kept by a shared cache, nor shown again from history after logout.
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def error_page(status: int, title: str, detail: str) -> tuple[str, int]:
    return render_template("error.html", status=status, title=title, detail=detail), status


def _http_error_page(error: HTTPException):
    if error.code is not None and 300 <= error.code < 400:
        return error
    body, status = error_page(error.code or 500, error.name, error.description or "")
    response = Response(body, status=status, mimetype="text/html")
    return _security_headers(response)


def _domain_error_page(error: DomainError):
    body, status = error_page(error.status, error.title, error.detail)
    response = Response(body, status=status, mimetype="text/html", headers=error.headers or {})
    return _security_headers(response)


def _unavailable_page(error: Exception):
    log.warning("database unavailable (page %s): %s", request.path, error)
    body, status = error_page(503, "Service Unavailable", "The database cannot be reached right now. Retry shortly.")
    response = Response(body, status=status, mimetype="text/html", headers={"Retry-After": "5"})
    return _security_headers(response)
