"""The mailings API through the app (SQLite and PostgreSQL)."""

from datetime import UTC, datetime, timedelta

import pytest

from repository import db
from repository import mailings as mailings_repo

SEED_CLIENT = {"phone": "78218173218", "operator_code": "123", "timezone": "Europe/Moscow"}
SEED_MAILING = {
    "start_time": "2022-12-02T16:50:00Z",
    "text": "hello",
    "client_tag_filter": "VIP",
    "end_time": "2028-11-20",
}


def future_mailing(**changes) -> dict:
    start = datetime.now(UTC) + timedelta(days=1)
    return {
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(days=1)).isoformat(),
        "text": "soon",
        **changes,
    }


def add_client(client, **changes) -> dict:
    response = client.post("/api/v1/clients/", json={**SEED_CLIENT, **changes})
    assert response.status_code == 201, response.text
    return response.json()


def test_the_seed_client_post_answers_its_fields_with_id_and_a_null_tag(client):
    response = client.post("/api/v1/clients/", json=SEED_CLIENT)
    assert response.status_code == 201
    assert response.json() == {"id": response.json()["id"], **SEED_CLIENT, "tag": None}


def test_the_seeds_placeholder_timezone_is_a_400_that_says_what_is_expected(client):
    response = client.post("/api/v1/clients/", json={**SEED_CLIENT, "timezone": "timezone"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "IANA" in response.json()["detail"] and response.json()["field"] == "timezone"
    assert client.get("/api/v1/clients/").json()["count"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {**SEED_CLIENT, "phone": "88218173218"},
        {**SEED_CLIENT, "phone": "7821817321\n"},
        {**SEED_CLIENT, "operator_code": "1234"},
        {"phone": "78218173218", "operator_code": "123"},
        {**SEED_CLIENT, "phone": 78218173218},
        {**SEED_CLIENT, "tag": "x" * 65},
    ],
)
def test_a_bad_client_is_a_400_and_nothing_is_stored(client, body):
    assert client.post("/api/v1/clients/", json=body).status_code == 400
    assert client.get("/api/v1/clients/").json()["count"] == 0


def test_a_phone_is_unique(client):
    first = add_client(client)
    response = client.post("/api/v1/clients/", json=SEED_CLIENT)
    assert response.status_code == 409 and str(first["id"]) in response.json()["detail"]
    other = add_client(client, phone="79990000000")
    assert client.put(f"/api/v1/clients/{other['id']}", json=SEED_CLIENT).status_code == 409


def test_every_path_answers_with_or_without_its_trailing_slash(client):
    created = client.post("/api/v1/clients", json=SEED_CLIENT)
    assert created.status_code == 201
    client_id = created.json()["id"]
    for path in (
        "/api/v1/clients",
        "/api/v1/clients/",
        f"/api/v1/clients/{client_id}",
        f"/api/v1/clients/{client_id}/",
    ):
        assert client.get(path, follow_redirects=False).status_code == 200, path
    mailing = client.post("/api/v1/mailings", json=SEED_MAILING)
    assert mailing.status_code == 201
    mailing_id = mailing.json()["id"]
    for path in (
        "/api/v1/mailings",
        "/api/v1/mailings/",
        f"/api/v1/mailings/{mailing_id}/",
        f"/api/v1/mailings/{mailing_id}/messages",
        f"/api/v1/mailings/{mailing_id}/messages/",
    ):
        assert client.get(path, follow_redirects=False).status_code == 200, path


def test_a_client_is_read_replaced_and_deleted(client):
    created = add_client(client, tag="VIP")
    path = f"/api/v1/clients/{created['id']}"
    assert client.get(path).json() == created
    replaced = client.put(path, json={**SEED_CLIENT, "operator_code": "900", "tag": None, "timezone": "Asia/Tokyo"})
    assert replaced.status_code == 200
    assert replaced.json() == {**created, "operator_code": "900", "tag": None, "timezone": "Asia/Tokyo"}
    assert client.get(path).json() == replaced.json()
    assert client.delete(path).status_code == 204
    assert client.get(path).status_code == 404
    assert client.delete(path).status_code == 404
    assert client.put(path, json=SEED_CLIENT).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/clients/0",
        "/api/v1/clients/abc",
        "/api/v1/clients/1%0A",
        "/api/v1/mailings/1%0A",
        "/api/v1/mailings/99999999999999999999",
        "/api/v1/mailings/7/messages?limit=0",
    ],
)
def test_bad_ids_and_parameters_are_4xx(client, path):
    assert 400 <= client.get(path).status_code < 500


def test_the_client_list_pages_and_filters_by_tag_and_operator_code(client):
    for n in range(5):
        add_client(
            client, phone=f"7900000000{n}", tag="VIP" if n % 2 == 0 else None, operator_code="900" if n < 3 else "901"
        )
    page = client.get("/api/v1/clients/?limit=2").json()
    assert page["count"] == 5 and len(page["results"]) == 2 and page["previous"] is None
    second = client.get(page["next"]).json()
    assert [c["phone"] for c in second["results"]] == ["79000000002", "79000000003"]
    assert client.get(second["previous"]).json() == page
    assert [c["phone"] for c in client.get("/api/v1/clients/?tag=VIP&operator_code=900").json()["results"]] == [
        "79000000000",
        "79000000002",
    ]


def test_the_seed_mailing_post_answers_its_fields_with_null_filters_and_end_at_midnight(client):
    response = client.post("/api/v1/mailings/", json=SEED_MAILING)
    assert response.status_code == 201
    assert response.json() == {
        "id": response.json()["id"],
        "start_time": "2022-12-02T16:50:00Z",
        "text": "hello",
        "client_operator_code_filter": None,
        "client_tag_filter": "VIP",
        "end_time": "2028-11-20T00:00:00Z",
        "send_window_start": None,
        "send_window_end": None,
    }


def test_a_mailing_that_ends_before_it_starts_is_a_400(client):
    response = client.post("/api/v1/mailings/", json={**SEED_MAILING, "end_time": "2022-12-01"})
    assert response.status_code == 400 and response.json()["field"] == "end_time"
    assert client.get("/api/v1/mailings/").json()["total_mailings"] == 0


def test_a_mailing_not_started_yet_can_be_edited_and_deleted(client):
    created = client.post("/api/v1/mailings/", json=future_mailing()).json()
    path = f"/api/v1/mailings/{created['id']}"
    edited = client.put(path, json=future_mailing(text="changed", send_window_start="22:00", send_window_end="06:00"))
    assert edited.status_code == 200
    assert edited.json()["text"] == "changed" and edited.json()["send_window_start"] == "22:00"
    got = client.get(path).json()
    assert got["text"] == "changed" and got["send_window_end"] == "06:00"
    assert client.delete(path).status_code == 204
    assert client.get(path).status_code == 404


def test_a_started_mailing_cannot_be_edited_or_deleted(client):
    created = client.post("/api/v1/mailings/", json=SEED_MAILING).json()
    path = f"/api/v1/mailings/{created['id']}"
    for response in (client.put(path, json=future_mailing()), client.delete(path)):
        assert response.status_code == 409
        assert "started at 2022-12-02T16:50:00+00:00" in response.json()["detail"]
    assert client.get(path).json()["text"] == "hello"


def test_statistics_have_the_seeds_shape_and_count_messages_per_status(client, app):
    mailing = client.post("/api/v1/mailings/", json={**SEED_MAILING, "client_tag_filter": None}).json()
    for n in range(3):
        add_client(client, phone=f"7900000000{n}")
    db.connect()
    try:
        mailings_repo.make_messages(datetime.now(UTC))
        claimed = mailings_repo.claim_due(datetime.now(UTC), 1, 30)
        mailings_repo.record_sent(claimed[0], "79000000000", datetime.now(UTC), datetime.now(UTC))
    finally:
        db.close()
    client.post("/api/v1/mailings/", json=future_mailing())
    overall = client.get("/api/v1/mailings/").json()
    assert overall == {
        "message_data": [
            {"status": "PENDING", "count": 2},
            {"status": "SENT", "count": 1},
            {"status": "FAILED", "count": 0},
            {"status": "EXPIRED", "count": 0},
        ],
        "total_mailings": 2,
    }
    one = client.get(f"/api/v1/mailings/{mailing['id']}").json()
    assert one["message_data"] == overall["message_data"] and "total_mailings" not in one
    assert one["text"] == "hello"

    messages = client.get(f"/api/v1/mailings/{mailing['id']}/messages?limit=2").json()
    assert messages["count"] == 3 and len(messages["results"]) == 2 and messages["next"]
    sent = messages["results"][0]
    assert sent["status"] == "SENT" and sent["attempts"] == 1 and sent["sent_at"] and sent["next_attempt_at"] is None
    assert sent["client_id"] and sent["phone"] == "79000000000" and sent["last_error"] is None
    pending = client.get(f"/api/v1/mailings/{mailing['id']}/messages?status=PENDING").json()
    assert pending["count"] == 2 and all(m["sent_at"] is None and m["next_attempt_at"] for m in pending["results"])
    assert client.get("/api/v1/mailings/999/messages").status_code == 404


def test_deleting_a_client_keeps_its_sent_messages_in_the_statistics(client):
    add_client(client, phone="79000000000")
    gone = add_client(client, phone="79000000001")
    mailing = client.post("/api/v1/mailings/", json={**SEED_MAILING, "client_tag_filter": None}).json()
    db.connect()
    try:
        mailings_repo.make_messages(datetime.now(UTC))
        for claimed in mailings_repo.claim_due(datetime.now(UTC), 10, 30):
            if claimed.client.id == gone["id"]:
                mailings_repo.record_sent(claimed, claimed.client.phone, datetime.now(UTC), datetime.now(UTC))
    finally:
        db.close()
    assert client.delete(f"/api/v1/clients/{gone['id']}").status_code == 204
    messages = client.get(f"/api/v1/mailings/{mailing['id']}/messages").json()["results"]
    assert [(m["client_id"], m["phone"], m["status"]) for m in messages if m["status"] == "SENT"] == [
        (None, "79000000001", "SENT")
    ]


def test_swagger_ui_is_also_at_docs(client):
    page = client.get("/docs/")
    assert page.status_code == 200 and "Swagger UI" in page.text
    assert client.get("/docs/swagger-ui.css").status_code == 200
