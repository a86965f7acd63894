"""The mailings admin pages (admins only): clients and mailings listed, created, edited and deleted through
forms, each mailing's progress by status and its messages with attempts and last error.

Forms go through the API's own checks (domain.mailings via domain.mailings_admin) and the same repository
calls, so the API's rules hold here too: a started mailing cannot be edited or deleted, a taken phone is
refused. Bad input re-renders the form with the message next to the field (400, or 409 for a conflict)
and changes nothing. Every form carries the CSRF token (the page foundation checks it on every POST).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Blueprint, flash, redirect, render_template, request, url_for

from controllers.page_access import admin_required
from controllers.pages import NavItem
from domain import mailings_admin as forms
from domain.errors import Conflict, DomainError, InvalidInput
from domain.mailings import STATUSES
from repository import mailings as mailings_repo

blueprint = Blueprint("pages_mailings", __name__)
NAVIGATION = [NavItem("Mailings", "pages_mailings.mailings", order=60, admin_only=True)]
log = logging.getLogger("joi.mailings")

PAGE_SIZE = 50
MESSAGES_PAGE_SIZE = 100


def _now() -> datetime:
    return datetime.now(UTC)


def _offset(name: str) -> int:
    value = request.args.get(name, "0")
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 9 else 0


def _status(code: int, error: DomainError) -> int:
    return 409 if isinstance(error, Conflict) else code


# --- the overview: mailings and clients, with their create forms --------------------------------------------


@blueprint.get("/dashboard/mailings")
@admin_required
def mailings():
    return _overview()


def _overview(
    mailing_form: dict | None = None,
    mailing_error: forms.FormError | None = None,
    client_form: dict | None = None,
    client_error: forms.FormError | None = None,
    status: int = 200,
):
    mailings_offset, clients_offset = _offset("mailings_offset"), _offset("clients_offset")
    page, mailing_total = mailings_repo.mailings_with_counts(PAGE_SIZE, mailings_offset)
    clients, client_total = mailings_repo.list_clients(PAGE_SIZE, clients_offset)
    now = _now()
    rows = [
        {"mailing": mailing, "progress": forms.progress(counts), "started": forms.has_started(mailing, now)}
        for mailing, counts in page
    ]
    body = render_template(
        "mailings/index.html",
        rows=rows,
        mailing_total=mailing_total,
        mailings_offset=mailings_offset,
        clients=clients,
        client_total=client_total,
        clients_offset=clients_offset,
        page_size=PAGE_SIZE,
        mailing_form=mailing_form or {},
        mailing_error=mailing_error,
        client_form=client_form or {},
        client_error=client_error,
        forms=forms,
    )
    return body, status


@blueprint.post("/dashboard/mailings/new")
@admin_required
def create_mailing():
    try:
        mailing = mailings_repo.create_mailing(forms.mailing_from_form(request.form), _now())
    except (InvalidInput, Conflict) as refusal:
        error = forms.form_error(refusal, forms.MAILING_FIELDS)
        return _overview(mailing_form=request.form, mailing_error=error, status=_status(400, refusal))
    log.info("mailing_id=%d created (admin page): start_time=%s", mailing.id, mailing.start_time.isoformat())
    flash(f"Mailing {mailing.id} created.", "ok")
    return redirect(url_for("pages_mailings.mailing", mailing_id=mailing.id), code=303)


@blueprint.post("/dashboard/mailings/clients/new")
@admin_required
def create_client():
    try:
        client = mailings_repo.create_client(forms.client_from_form(request.form))
    except (InvalidInput, Conflict) as refusal:
        error = forms.form_error(refusal, forms.CLIENT_FIELDS)
        return _overview(client_form=request.form, client_error=error, status=_status(400, refusal))
    log.info("client_id=%d created (admin page): phone=%s", client.id, client.phone)
    flash(f"Client {client.id} ({client.phone}) created.", "ok")
    return redirect(url_for("pages_mailings.mailings") + "#clients", code=303)


# --- one mailing: progress, messages, edit, delete ----------------------------------------------------------


@blueprint.get("/dashboard/mailings/<int:mailing_id>")
@admin_required
def mailing(mailing_id: int):
    return _mailing_page(mailing_id)


def _mailing_page(mailing_id: int, form: dict | None = None, error: forms.FormError | None = None, status: int = 200):
    current = mailings_repo.get_mailing(mailing_id)
    wanted = request.args.get("status")
    wanted = wanted if wanted in STATUSES else None
    offset = _offset("offset")
    messages, message_total = mailings_repo.messages(mailing_id, MESSAGES_PAGE_SIZE, offset, status=wanted)
    body = render_template(
        "mailings/mailing.html",
        mailing=current,
        started=forms.has_started(current, _now()),
        progress=forms.progress(mailings_repo.status_counts(mailing_id)),
        messages=messages,
        message_total=message_total,
        offset=offset,
        page_size=MESSAGES_PAGE_SIZE,
        wanted=wanted,
        statuses=STATUSES,
        form=form if form is not None else forms.mailing_form_values(current),
        error=error,
        forms=forms,
    )
    return body, status


@blueprint.post("/dashboard/mailings/<int:mailing_id>")
@admin_required
def update_mailing(mailing_id: int):
    mailings_repo.get_mailing(mailing_id)  # an unknown mailing is a 404 page, not a form error
    try:
        mailings_repo.update_mailing(forms.mailing_from_form(request.form, mailing_id=mailing_id), _now())
    except (InvalidInput, Conflict) as refusal:
        error = forms.form_error(refusal, forms.MAILING_FIELDS)
        return _mailing_page(mailing_id, form=request.form, error=error, status=_status(400, refusal))
    log.info("mailing_id=%d updated (admin page)", mailing_id)
    flash(f"Mailing {mailing_id} saved.", "ok")
    return redirect(url_for("pages_mailings.mailing", mailing_id=mailing_id), code=303)


@blueprint.post("/dashboard/mailings/<int:mailing_id>/delete")
@admin_required
def delete_mailing(mailing_id: int):
    try:
        mailings_repo.delete_mailing(mailing_id, _now())
    except Conflict as refusal:
        return _mailing_page(mailing_id, error=forms.FormError("", refusal.detail), status=409)
    log.info("mailing_id=%d deleted (admin page)", mailing_id)
    flash(f"Mailing {mailing_id} deleted.", "ok")
    return redirect(url_for("pages_mailings.mailings"), code=303)


# --- one client: edit, delete -------------------------------------------------------------------------------


@blueprint.get("/dashboard/mailings/clients/<int:client_id>")
@admin_required
def client(client_id: int):
    current = mailings_repo.get_client(client_id)
    return render_template("mailings/client.html", client=current, form=forms.client_form_values(current), error=None)


@blueprint.post("/dashboard/mailings/clients/<int:client_id>")
@admin_required
def update_client(client_id: int):
    current = mailings_repo.get_client(client_id)
    try:
        mailings_repo.update_client(forms.client_from_form(request.form, client_id=client_id))
    except (InvalidInput, Conflict) as refusal:
        error = forms.form_error(refusal, forms.CLIENT_FIELDS)
        page = render_template("mailings/client.html", client=current, form=request.form, error=error)
        return page, _status(400, refusal)
    log.info("client_id=%d updated (admin page)", client_id)
    flash(f"Client {client_id} saved.", "ok")
    return redirect(url_for("pages_mailings.mailings") + "#clients", code=303)


@blueprint.post("/dashboard/mailings/clients/<int:client_id>/delete")
@admin_required
def delete_client(client_id: int):
    dropped = mailings_repo.delete_client(client_id)
    log.info("client_id=%d deleted (admin page) with %d unsent messages", client_id, dropped)
    flash(f"Client {client_id} deleted ({dropped} unsent messages with it).", "ok")
    return redirect(url_for("pages_mailings.mailings") + "#clients", code=303)
