"""The OMS page: the devices with their latest values and message time, a search, and the CSV download
(the API's GET /export, which the billing staff's spreadsheet reads)."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from flask import Blueprint, abort, redirect, render_template, request

from controllers.page_access import may_view_oms
from controllers.page_session import page_user
from controllers.pages import NavItem
from domain.errors import InvalidInput
from domain.oms import export_rows, manufacturer_code, manufacturer_number
from repository import oms as oms_repo

blueprint = Blueprint("pages_oms", __name__)
NAVIGATION = [NavItem("OMS devices", "pages_oms.devices", order=30)]

PAGE_SIZE = 50
_DIGITS = re.compile(r"[0-9]{1,10}")
_LETTERS = re.compile(r"[A-Za-z]{3}")
_PAGE = re.compile(r"[1-9][0-9]{0,6}")
MAX_SEARCH_CHARS = 40


@blueprint.get("/dashboard/oms")
def devices():
    _check_access()
    search = request.args.get("q", "").strip()
    page_text = request.args.get("page", "1")
    if not _PAGE.fullmatch(page_text):
        raise InvalidInput("page: a whole number from 1", field="page")
    page = int(page_text)
    identnr_prefix, manufacturer = _search_terms(search)
    messages, total = oms_repo.devices_with_latest(
        identnr_prefix=identnr_prefix, manufacturer=manufacturer, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    rows = [
        {
            "identnr": message.device.identnr,
            "manufacturer": message.device.manufacturer,
            "manufacturer_code": manufacturer_code(message.device.manufacturer),
            "type": message.device.type,
            "version": message.device.version,
            "message_time": message.message_time,
            "values": [(row.dimension, row.value_new) for row in export_rows(message.device, message)],
        }
        for message in messages
    ]
    pages = max(1, -(-total // PAGE_SIZE))
    return render_template(
        "oms/devices.html",
        devices=rows,
        total=total,
        search=search,
        page=page,
        pages=pages,
        previous_url=_page_url(search, page - 1) if page > 1 else None,
        next_url=_page_url(search, page + 1) if page < pages else None,
    )


@blueprint.get("/dashboard/oms/export")
def export():
    """The download form's target: GET /export with only the fields that were filled in."""
    _check_access()
    query = {name: request.args[name].strip() for name in ("since", "until") if request.args.get(name, "").strip()}
    if request.args.get("manufacturer") == "flag":
        query["manufacturer"] = "flag"
    return redirect("/export" + (f"?{urlencode(query)}" if query else ""), code=303)


def _check_access() -> None:
    if not may_view_oms(page_user()):
        abort(404, description="There is no such page.")


def _search_terms(search: str) -> tuple[str | None, int | None]:
    """Device id digits (a prefix) and/or three FLAG letters (the manufacturer), e.g. "EFE 8325"."""
    if len(search) > MAX_SEARCH_CHARS:
        raise InvalidInput(f"search: at most {MAX_SEARCH_CHARS} characters", field="q")
    identnr_prefix = manufacturer = None
    for term in search.split():
        if _DIGITS.fullmatch(term) and identnr_prefix is None:
            identnr_prefix = term
        elif _LETTERS.fullmatch(term) and manufacturer is None:
            manufacturer = manufacturer_number(term)
        else:
            raise InvalidInput(
                "search: a device id (or its first digits) and/or a manufacturer's three letters, e.g. EFE 8325",
                field="q",
            )
    return identnr_prefix, manufacturer


def _page_url(search: str, page: int) -> str:
    return "/dashboard/oms?" + urlencode({**({"q": search} if search else {}), "page": page})
