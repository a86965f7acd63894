"""The mailings admin pages over HTTP: admins only, forms that apply the API's rules (the message next to
the field, nothing changed), a started mailing that cannot be edited, progress and messages, CSRF."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from domain.mailings import Client, Mailing
from repository import db
from repository import mailings as mailings_repo
from tests.support.accounts import PASSWORD, register, register_admin

MAILING_FORM = {
    "start_time": "2030-01-01T09:00",
    "end_time": "2030-01-03T00:00",
    "text": "night owls",
    "client_operator_code_filter": "123",
    "client_tag_filter": "",
    "send_window_start": "22:00",
    "send_window_end": "06:00",
}
CLIENT_FORM = {"phone": "78218173218", "operator_code": "123", "tag": "VIP", "timezone": "Europe/Moscow"}


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html)[1]


def log_in(client, username: str) -> None:
    token = csrf_of(client.get("/login").text)
    answer = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert answer.status_code in (200, 303), answer.text


def post_form(client, path: str, form: dict, page: str = "/dashboard/mailings"):
    token = csrf_of(client.get(page).text)
    return client.post(path, data={**form, "csrf_token": token}, follow_redirects=False)


@pytest.fixture
def admin(client):
    register_admin(client, "boss")
    log_in(client, "boss")


def field_error(html: str, form_id: str, field: str) -> str | None:
    match = re.search(rf'id="{form_id}-{field}-error"[^>]*>([^<]*)<', html)
    return match[1] if match else None


def started_mailing(**changes) -> Mailing:
    now = datetime.now(UTC)
    fields = dict(start_time=now - timedelta(minutes=1), end_time=now + timedelta(hours=1), text="already going")
    with db.database.connection_context():
        return mailings_repo.create_mailing(Mailing(**{**fields, **changes}), now)


def test_the_mailings_pages_are_for_admins_only(client):
    assert client.get("/dashboard/mailings", follow_redirects=False).status_code in (302, 303)
    register(client, "plain")
    log_in(client, "plain")
    assert client.get("/dashboard/mailings").status_code == 403


def test_a_mailing_created_through_the_form_is_the_apis_mailing(client, admin):
    answer = post_form(client, "/dashboard/mailings/new", MAILING_FORM)
    assert answer.status_code == 303
    mailing_id = int(answer.headers["location"].rstrip("/").rsplit("/", 1)[1])
    assert client.get(f"/api/v1/mailings/{mailing_id}").json() == {
        "id": mailing_id,
        "start_time": "2030-01-01T09:00:00Z",
        "end_time": "2030-01-03T00:00:00Z",
        "text": "night owls",
        "client_operator_code_filter": "123",
        "client_tag_filter": None,
        "send_window_start": "22:00",
        "send_window_end": "06:00",
        "message_data": [{"status": status, "count": 0} for status in ("PENDING", "SENT", "FAILED", "EXPIRED")],
    }
    assert client.get("/api/v1/mailings/").json()["total_mailings"] == 1


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"end_time": "2029-12-31T00:00"}, "end_time", "must be after start_time"),
        ({"text": " "}, "text", "text is required"),
        ({"send_window_end": ""}, "send_window_end", "go together"),
    ],
)
def test_a_bad_mailing_form_shows_the_message_next_to_the_field_and_creates_nothing(
    client, admin, changes, field, words
):
    answer = post_form(client, "/dashboard/mailings/new", {**MAILING_FORM, **changes})
    assert answer.status_code == 400
    assert words in field_error(answer.text, "new-mailing", field)
    assert 'value="123"' in answer.text  # what was typed is kept
    assert client.get("/api/v1/mailings/").json()["total_mailings"] == 0


def test_a_mailing_is_edited_and_deleted_through_its_page_before_it_starts(client, admin):
    created = post_form(client, "/dashboard/mailings/new", MAILING_FORM)
    page = created.headers["location"]
    edited = post_form(client, page, {**MAILING_FORM, "text": "night owls, later"}, page=page)
    assert edited.status_code == 303
    mailing_id = int(page.rsplit("/", 1)[1])
    assert client.get(f"/api/v1/mailings/{mailing_id}").json()["text"] == "night owls, later"
    assert post_form(client, f"{page}/delete", {}, page=page).status_code == 303
    assert client.get(f"/api/v1/mailings/{mailing_id}").status_code == 404


def test_a_started_mailing_cannot_be_edited_or_deleted_and_nothing_changes(client, admin):
    mailing = started_mailing()
    page = f"/dashboard/mailings/{mailing.id}"
    assert "can no longer be edited or deleted" in client.get(page).text
    assert 'id="edit-mailing"' not in client.get(page).text
    refused = post_form(client, page, {**MAILING_FORM, "text": "changed"}, page=page)
    assert refused.status_code == 409 and "it can no longer be edited" in refused.text
    assert post_form(client, f"{page}/delete", {}, page=page).status_code == 409
    assert client.get(f"/api/v1/mailings/{mailing.id}").json()["text"] == "already going"


def test_a_mailings_progress_and_messages_show_attempts_and_the_last_error(client, admin):
    with db.database.connection_context():
        mailings_repo.create_client(Client("79000000001", "900", "UTC"))
        mailings_repo.create_client(Client("79000000002", "900", "UTC"))
    mailing = started_mailing()
    now = datetime.now(UTC)
    with db.database.connection_context():
        mailings_repo.make_messages(now)
        first, second = mailings_repo.claim_due(now, 2, 30)
        mailings_repo.record_sent(first, "79000000001", now, now)
        mailings_repo.record_failure(second, "79000000002", now, "HTTP 500: down", now + timedelta(minutes=1))
    overview = client.get("/dashboard/mailings").text
    assert "SENT 1" in overview and "FAILED 1" in overview and "(of 2)" in overview
    page = client.get(f"/dashboard/mailings/{mailing.id}").text
    assert "HTTP 500: down" in page
    failed_row = re.search(rf'data-message="{second.id}".*?</tr>', page, re.S)[0]
    assert '<td class="number">1</td>' in failed_row and "FAILED" in failed_row
    only_failed = client.get(f"/dashboard/mailings/{mailing.id}", params={"status": "FAILED"}).text
    assert f'data-message="{second.id}"' in only_failed and f'data-message="{first.id}"' not in only_failed


def test_clients_are_created_edited_and_deleted_through_forms_with_the_apis_rules(client, admin):
    created = post_form(client, "/dashboard/mailings/clients/new", CLIENT_FORM)
    assert created.status_code == 303
    listed = client.get("/api/v1/clients/").json()["results"]
    assert [(item["phone"], item["tag"]) for item in listed] == [("78218173218", "VIP")]
    client_id = listed[0]["id"]
    taken = post_form(client, "/dashboard/mailings/clients/new", CLIENT_FORM)
    assert taken.status_code == 409 and "belongs to client" in field_error(taken.text, "new-client", "phone")
    bad_zone = post_form(
        client, "/dashboard/mailings/clients/new", {**CLIENT_FORM, "phone": "78218173219", "timezone": "Mars/Base"}
    )
    assert bad_zone.status_code == 400 and "IANA" in field_error(bad_zone.text, "new-client", "timezone")
    page = f"/dashboard/mailings/clients/{client_id}"
    assert post_form(client, page, {**CLIENT_FORM, "tag": ""}, page=page).status_code == 303
    assert client.get(f"/api/v1/clients/{client_id}").json()["tag"] is None
    assert post_form(client, f"{page}/delete", {}, page=page).status_code == 303
    assert client.get(f"/api/v1/clients/{client_id}").status_code == 404


def test_a_form_without_the_csrf_token_changes_nothing(client, admin):
    answer = client.post("/dashboard/mailings/new", data=MAILING_FORM)
    assert answer.status_code == 400
    assert client.get("/api/v1/mailings/").json()["total_mailings"] == 0
