"""Every authorization decision of the web pages, in one module.

- `login_required` / `admin_required` wrap a page view: an anonymous visitor is sent to the login page
  (and back after it), a logged-in non-admin on an admin page gets 403.
- `may_view_joi_meter(user, meter_id)` decides who sees a JOI meter's page. In open mode (the default) JOI
  data is public through the API, so its page is public too. In closed mode (REQUIRE_AUTH=1) it follows the
  API's rule, `repository.access.user_may_read_meter(user, meter_id)`: the meters linked to the user, every
  meter for an admin.
- `visible_dsmr_installations(user, names)` decides which DSMR installations a user sees: DSMR data is read
  with an installation's key in the API, and no user owns an installation, so only admins see the DSMR
  pages (all installations, with a picker); anyone else gets 403.
- `may_view_oms(user)`: OMS export is open in the API (the seed documents no credentials), so the page is;
  in closed mode the export is for admins, and so is the page.
- `sites_owner(user)`: a user sees their own SilesiaSolar sites and hosts, an admin everyone's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from flask import abort, redirect, request, url_for

from controllers.context import settings
from controllers.page_session import page_user
from domain.accounts import User
from repository import access


def login_required(view: Callable) -> Callable:
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if page_user() is None:
            return redirect(url_for("pages_home.login_form", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapper


def admin_required(view: Callable) -> Callable:
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        user = page_user()
        if user is None:
            return redirect(url_for("pages_home.login_form", next=request.full_path.rstrip("?")))
        if not user.is_admin:
            abort(403, description="This page is for admins only; your account is not an admin.")
        return view(*args, **kwargs)

    return wrapper


def require_auth_mode() -> bool:
    """Closed mode (REQUIRE_AUTH=1)."""
    return settings().require_auth


def may_view_joi_meter(user: User | None, meter_id: str) -> bool:
    if not require_auth_mode():
        return True
    return user is not None and access.user_may_read_meter(user, meter_id)


def visible_dsmr_installations(user: User | None, names: Sequence[str]) -> list[str]:
    if user is None or not user.is_admin:
        return []
    return list(names)


def may_view_dsmr(user: User | None) -> bool:
    return user is not None and user.is_admin


def may_view_oms(user: User | None) -> bool:
    return not require_auth_mode() or (user is not None and user.is_admin)


def safe_next(target: str | None) -> str:
    """Where to go after login: only a path on this site (no scheme, no host, no //host), else the start page."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("pages_home.start_page")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return url_for("pages_home.start_page")
    return target


def sites_owner(user: User) -> int | None:
    """Whose SilesiaSolar sites and hosts a logged-in user sees: their own (another user's host is a 404, as in
    the API), or everyone's (None) for an admin."""
    return None if user.is_admin else user.id
