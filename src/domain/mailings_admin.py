"""The mailings admin pages: form fields into the same checked Client and Mailing the API makes (so a
form obeys the API's rules, with the message next to the field at fault), and the progress and message
rows the pages show. Pure: no Flask, no database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from domain.errors import InvalidInput
from domain.mailings import STATUSES, Client, Mailing, client_from_json, mailing_from_json

CLIENT_FIELDS = ("phone", "operator_code", "tag", "timezone")
CLIENT_REQUIRED = ("phone", "operator_code", "timezone")
MAILING_FIELDS = (
    "start_time",
    "end_time",
    "text",
    "client_operator_code_filter",
    "client_tag_filter",
    "send_window_start",
    "send_window_end",
)
MAILING_REQUIRED = ("start_time", "end_time", "text")
# The API's own limits (openapi/mailings.yaml), which Connexion checks there before the domain runs.
MAX_FIELD_LENGTH = {"timezone": 64, "start_time": 64, "end_time": 64, "text": 4096}


@dataclass(frozen=True)
class FormError:
    field: str
    message: str


def _body(form: Mapping[str, str], fields: tuple[str, ...], required: tuple[str, ...]) -> dict:
    """The API body a form stands for: trimmed text, an empty optional field left out (null in the API),
    an empty required one refused."""
    body = {}
    for field in fields:
        value = form.get(field, "")
        value = value if field == "text" else value.strip()
        if not value.strip():
            if field in required:
                raise InvalidInput(f"{field} is required", field=field)
            continue
        limit = MAX_FIELD_LENGTH.get(field)
        if limit is not None and len(value) > limit:
            raise InvalidInput(f"{field} must be at most {limit} characters", field=field)
        body[field] = value
    return body


def client_from_form(form: Mapping[str, str], client_id: int | None = None) -> Client:
    return client_from_json(_body(form, CLIENT_FIELDS, CLIENT_REQUIRED), client_id=client_id)


def mailing_from_form(form: Mapping[str, str], mailing_id: int | None = None) -> Mailing:
    """Times as the API takes them (ISO 8601, naive means UTC); a browser's datetime-local field
    (2030-01-01T09:00) is such a naive time, so the form says UTC beside it."""
    return mailing_from_json(_body(form, MAILING_FIELDS, MAILING_REQUIRED), mailing_id=mailing_id)


def form_error(error: InvalidInput, fields: tuple[str, ...]) -> FormError:
    """Where the message goes: next to its field, or above the form when it names none of the form's."""
    return FormError(error.field if error.field in fields else "", error.detail)


def client_form_values(client: Client) -> dict[str, str]:
    return {
        "phone": client.phone,
        "operator_code": client.operator_code,
        "tag": client.tag or "",
        "timezone": client.timezone,
    }


def _local_input(moment: datetime) -> str:
    """A UTC moment as a datetime-local field shows it (seconds only when there are some)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S" if moment.second else "%Y-%m-%dT%H:%M")


def mailing_form_values(mailing: Mailing) -> dict[str, str]:
    return {
        "start_time": _local_input(mailing.start_time),
        "end_time": _local_input(mailing.end_time),
        "text": mailing.text,
        "client_operator_code_filter": mailing.client_operator_code_filter or "",
        "client_tag_filter": mailing.client_tag_filter or "",
        "send_window_start": mailing.send_window_start.strftime("%H:%M") if mailing.send_window_start else "",
        "send_window_end": mailing.send_window_end.strftime("%H:%M") if mailing.send_window_end else "",
    }


def has_started(mailing: Mailing, now: datetime) -> bool:
    """The API's rule: once start_time has passed a mailing can no longer be edited or deleted."""
    return mailing.start_time <= now


@dataclass(frozen=True)
class StatusShare:
    status: str
    count: int
    percent: float  # of all the mailing's messages, 0 without any


def progress(counts: Mapping[str, int]) -> tuple[list[StatusShare], int]:
    """Every status (in lifecycle order) with its count and share, and the total."""
    total = sum(int(counts.get(status, 0)) for status in STATUSES)
    shares = [
        StatusShare(status, int(counts.get(status, 0)), 100.0 * counts.get(status, 0) / total if total else 0.0)
        for status in STATUSES
    ]
    return shares, total


def shown_time(moment: datetime | None) -> str:
    """2030-01-01 09:00 UTC; an empty string for none."""
    if moment is None:
        return ""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC" if moment.second else "%Y-%m-%d %H:%M UTC")


def window_text(mailing: Mailing) -> str:
    if mailing.window is None:
        return "any time"
    return f"{mailing.send_window_start:%H:%M}–{mailing.send_window_end:%H:%M} local"


def filters_text(mailing: Mailing) -> str:
    parts = []
    if mailing.client_operator_code_filter is not None:
        parts.append(f"operator {mailing.client_operator_code_filter}")
    if mailing.client_tag_filter is not None:
        parts.append(f"tag {mailing.client_tag_filter}")
    return ", ".join(parts) or "every client"
