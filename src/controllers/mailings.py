"""Mailings API: clients, mailings and their statistics (the mailing service's paths under /api/v1/).

Sending happens in the queue workers only (tasks.dispatch_mailings): nothing here waits for the send API.
Every log line about a client or a mailing carries its id (client_id=, mailing_id=).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from urllib.parse import urlencode

from flask import Response, request

import logs
import tasks
from controllers.access import require_mailings_operator
from controllers.responses import json_response
from domain.mailings import Client, Mailing, client_from_json, mailing_from_json, message_data
from repository import mailings as mailings_repo

log = logging.getLogger("joi.mailings")


def _no_content() -> Response:
    response = Response(status=204)
    del response.headers["Content-Type"]  # a 204 has no body, so no media type
    return response


def _now() -> datetime:
    return datetime.now(UTC)


def _utc_text(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if moment.microsecond else "%Y-%m-%dT%H:%M:%SZ")


def _client_json(client: Client) -> dict:
    return {
        "id": client.id,
        "phone": client.phone,
        "operator_code": client.operator_code,
        "tag": client.tag,
        "timezone": client.timezone,
    }


def _mailing_json(mailing: Mailing) -> dict:
    return {
        "id": mailing.id,
        "start_time": _utc_text(mailing.start_time),
        "text": mailing.text,
        "client_operator_code_filter": mailing.client_operator_code_filter,
        "client_tag_filter": mailing.client_tag_filter,
        "end_time": _utc_text(mailing.end_time),
        "send_window_start": mailing.send_window_start.strftime("%H:%M") if mailing.send_window_start else None,
        "send_window_end": mailing.send_window_end.strftime("%H:%M") if mailing.send_window_end else None,
    }


def _page(results: list, total: int, limit: int, offset: int) -> dict:
    def link(to_offset: int) -> str:
        query = {key: value for key, value in request.args.items() if key not in {"limit", "offset"}}
        return f"{request.path}?{urlencode({**query, 'limit': limit, 'offset': to_offset})}"

    return {
        "count": total,
        "next": link(offset + limit) if offset + limit < total else None,
        "previous": link(max(0, offset - limit)) if offset > 0 else None,
        "results": results,
    }


# --- Clients ---------------------------------------------------------------------------------------


def create_client(body: dict):
    require_mailings_operator()
    client = mailings_repo.create_client(client_from_json(body))
    log.info(
        "client_id=%d created: phone=%s operator_code=%s tag=%s",
        client.id,
        client.phone,
        client.operator_code,
        client.tag,
    )
    return json_response(_client_json(client), status=201)


def list_clients(limit: int = 100, offset: int = 0, tag: str | None = None, operator_code: str | None = None):
    require_mailings_operator()
    clients, total = mailings_repo.list_clients(limit, offset, tag=tag, operator_code=operator_code)
    return json_response(_page([_client_json(client) for client in clients], total, limit, offset))


def get_client(id_: int):
    require_mailings_operator()
    return json_response(_client_json(mailings_repo.get_client(id_)))


def update_client(id_: int, body: dict):
    require_mailings_operator()
    client = mailings_repo.update_client(client_from_json(body, client_id=id_))
    log.info(
        "client_id=%d updated: phone=%s operator_code=%s tag=%s",
        client.id,
        client.phone,
        client.operator_code,
        client.tag,
    )
    return json_response(_client_json(client))


def delete_client(id_: int):
    require_mailings_operator()
    dropped = mailings_repo.delete_client(id_)
    log.info("client_id=%d deleted with %d unsent messages", id_, dropped)
    return _no_content()


# --- Mailings --------------------------------------------------------------------------------------


def create_mailing(body: dict):
    require_mailings_operator()
    mailing = mailings_repo.create_mailing(mailing_from_json(body), _now())
    log.info(
        "mailing_id=%d created: start_time=%s end_time=%s filters operator_code=%s tag=%s window=%s-%s",
        mailing.id,
        _utc_text(mailing.start_time),
        _utc_text(mailing.end_time),
        mailing.client_operator_code_filter,
        mailing.client_tag_filter,
        mailing.send_window_start,
        mailing.send_window_end,
    )
    if mailing.start_time <= _now() < mailing.end_time:
        _start_at_once(mailing.id)
    return json_response(_mailing_json(mailing), status=201)


def _start_at_once(mailing_id: int) -> None:
    """A worker makes the messages now, its log lines under this request's id. Should the queue be
    unreachable, the next dispatch round makes them anyway: the mailing is committed, the answer stays 201."""
    try:
        tasks.start_mailing(mailing_id, request_id=logs.current_request_id())
    except Exception:  # noqa: BLE001 - the periodic round is the fallback
        log.warning("mailing_id=%d: could not enqueue its start; the next dispatch round starts it", mailing_id)


def all_statistics():
    require_mailings_operator()
    return json_response(
        {"message_data": message_data(mailings_repo.status_counts()), "total_mailings": mailings_repo.mailing_count()}
    )


def get_mailing(id_: int):
    require_mailings_operator()
    mailing = mailings_repo.get_mailing(id_)
    return json_response({**_mailing_json(mailing), "message_data": message_data(mailings_repo.status_counts(id_))})


def update_mailing(id_: int, body: dict):
    require_mailings_operator()
    mailing = mailings_repo.update_mailing(mailing_from_json(body, mailing_id=id_), _now())
    log.info(
        "mailing_id=%d updated: start_time=%s end_time=%s",
        id_,
        _utc_text(mailing.start_time),
        _utc_text(mailing.end_time),
    )
    return json_response(_mailing_json(mailing))


def delete_mailing(id_: int):
    require_mailings_operator()
    mailings_repo.delete_mailing(id_, _now())
    log.info("mailing_id=%d deleted", id_)
    return _no_content()


def list_messages(id_: int, limit: int = 100, offset: int = 0, status: str | None = None):
    require_mailings_operator()
    mailings_repo.get_mailing(id_)  # 404 for an unknown mailing
    page, total = mailings_repo.messages(id_, limit, offset, status=status)
    results = [
        {
            "id": message.id,
            "mailing_id": message.mailing_id,
            "client_id": message.client_id,
            "phone": message.phone,
            "status": message.status,
            "attempts": message.attempts,
            "last_error": message.last_error,
            "created_at": _utc_text(message.created_at),
            "last_attempt_at": _utc_text(message.last_attempt_at),
            "next_attempt_at": _utc_text(message.next_attempt_at),
            "sent_at": _utc_text(message.sent_at),
        }
        for message in page
    ]
    return json_response(_page(results, total, limit, offset))
