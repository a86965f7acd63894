"""Mailings domain: clients, mailings, their filters and sending windows, message statuses, retry backoff,
and what the send API's answer means. Pure: no I/O (time zones come from the IANA database via zoneinfo).

Rules:
- A client has a phone `7XXXXXXXXXX` (unique), a 3-digit operator code, an optional tag and an IANA time
  zone. A mailing has a text, `start_time` < `end_time` (a date alone is midnight UTC), optional filters on
  operator code and tag (a client matches when it matches every filter given), and an optional sending
  window `HH:MM`-`HH:MM` in the client's local time (start inclusive, end exclusive; when the end is not
  after the start the window crosses midnight, e.g. 22:00-06:00).
- From its start until its end, every matching client gets one message (clients who come to match later
  too). Statuses: PENDING (not sent yet, or waiting for the client's window), SENT (the send API accepted
  it), FAILED (the last attempt failed; it will be retried), EXPIRED (end_time came before it was sent).
- A failed attempt is retried after `min(max, base * 2**(attempts - 1))` seconds, times a random factor
  in [0.5, 1] (jitter spreads the retries of a mailing that failed all at once).
- Success is HTTP 200 with a JSON object whose `code` is the integer 0; anything else is a failure.
- A mailing that has started (its start_time has passed) can no longer be edited or deleted.
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.errors import InvalidInput

PENDING, SENT, FAILED, EXPIRED = "PENDING", "SENT", "FAILED", "EXPIRED"
STATUSES = (PENDING, SENT, FAILED, EXPIRED)
UNSENT = (PENDING, FAILED)

PHONE = re.compile(r"7[0-9]{10}")
OPERATOR_CODE = re.compile(r"[0-9]{3}")
WINDOW_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
MAX_TAG_LENGTH = 64
MAX_TEXT_LENGTH = 4096


@dataclass(frozen=True)
class Client:
    phone: str
    operator_code: str
    timezone: str
    tag: str | None = None
    id: int | None = None


@dataclass(frozen=True)
class Mailing:
    start_time: datetime  # aware, UTC
    end_time: datetime
    text: str
    client_operator_code_filter: str | None = None
    client_tag_filter: str | None = None
    send_window_start: time | None = None
    send_window_end: time | None = None
    id: int | None = None

    @property
    def window(self) -> SendWindow | None:
        if self.send_window_start is None or self.send_window_end is None:
            return None
        return SendWindow(self.send_window_start, self.send_window_end)


@dataclass(frozen=True)
class SendWindow:
    """Local wall-clock times; start inclusive, end exclusive; end <= start crosses midnight."""

    start: time
    end: time

    def contains(self, local: time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


# --- Validation ------------------------------------------------------------------------------------


def time_zone(name: str) -> ZoneInfo:
    try:
        if not name or "\x00" in name or name != name.strip():
            raise ValueError
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput(
            f"timezone: {name!r} is not an IANA time zone name; expected e.g. 'Europe/Moscow' or 'UTC'",
            field="timezone",
        ) from None


def client_from_json(body: dict, client_id: int | None = None) -> Client:
    phone, operator_code, timezone = str(body["phone"]), str(body["operator_code"]), str(body["timezone"])
    if not PHONE.fullmatch(phone):
        raise InvalidInput(f"phone: {phone!r} must be 7 followed by 10 digits (7XXXXXXXXXX)", field="phone")
    if not OPERATOR_CODE.fullmatch(operator_code):
        raise InvalidInput(f"operator_code: {operator_code!r} must be 3 digits", field="operator_code")
    time_zone(timezone)
    return Client(phone, operator_code, timezone, _optional_text(body, "tag", MAX_TAG_LENGTH), client_id)


def parse_moment(text: str, field: str) -> datetime:
    """An ISO 8601 date-time (naive means UTC) or a date alone (midnight UTC), as an aware UTC datetime."""
    try:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except (ValueError, TypeError, OverflowError):
        raise InvalidInput(
            f"{field}: {text!r} is not an ISO 8601 date-time (e.g. 2028-11-20T16:50:00Z) or date", field=field
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"{field}: {text!r} is out of range", field=field) from None


def parse_window_time(text: str, field: str) -> time:
    match = WINDOW_TIME.fullmatch(text)
    if not match:
        raise InvalidInput(f"{field}: {text!r} must be a local time HH:MM (00:00 to 23:59)", field=field)
    return time(int(match[1]), int(match[2]))


def mailing_from_json(body: dict, mailing_id: int | None = None) -> Mailing:
    start = parse_moment(body["start_time"], "start_time")
    end = parse_moment(body["end_time"], "end_time")
    if end <= start:
        raise InvalidInput(
            f"end_time ({end.isoformat()}) must be after start_time ({start.isoformat()})", field="end_time"
        )
    text = body["text"]
    if not text.strip() or len(text) > MAX_TEXT_LENGTH:
        raise InvalidInput(f"text must not be blank and at most {MAX_TEXT_LENGTH} characters", field="text")
    window_start, window_end = body.get("send_window_start"), body.get("send_window_end")
    if (window_start is None) != (window_end is None):
        raise InvalidInput(
            "send_window_start and send_window_end go together: give both, or neither for no window",
            field="send_window_start" if window_start is None else "send_window_end",
        )
    opens = parse_window_time(window_start, "send_window_start") if window_start is not None else None
    closes = parse_window_time(window_end, "send_window_end") if window_end is not None else None
    if opens is not None and opens == closes:
        raise InvalidInput(
            "send_window_start equals send_window_end: a window must not be empty (omit both for no window)",
            field="send_window_end",
        )
    operator_filter = _optional_text(body, "client_operator_code_filter", 3)
    if operator_filter is not None and not OPERATOR_CODE.fullmatch(operator_filter):
        raise InvalidInput(
            f"client_operator_code_filter: {operator_filter!r} must be 3 digits", field="client_operator_code_filter"
        )
    return Mailing(
        start_time=start,
        end_time=end,
        text=text,
        client_operator_code_filter=operator_filter,
        client_tag_filter=_optional_text(body, "client_tag_filter", MAX_TAG_LENGTH),
        send_window_start=opens,
        send_window_end=closes,
        id=mailing_id,
    )


def _optional_text(body: dict, field: str, max_length: int) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_length or any(ord(c) < 32 for c in value):
        raise InvalidInput(f"{field} must be a string of at most {max_length} printable characters", field=field)
    return value


# --- Matching, windows, timing ---------------------------------------------------------------------


def client_matches(mailing: Mailing, client: Client) -> bool:
    if mailing.client_operator_code_filter is not None and client.operator_code != mailing.client_operator_code_filter:
        return False
    return mailing.client_tag_filter is None or client.tag == mailing.client_tag_filter


def _local(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone)


def _at_local(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The UTC moment the local clock shows `wall` on `day` (a time skipped by DST maps past the gap)."""
    return datetime.combine(day, wall, tzinfo=zone).astimezone(UTC)


def in_window(moment: datetime, window: SendWindow | None, zone_name: str) -> bool:
    if window is None:
        return True
    return window.contains(_local(moment, ZoneInfo(zone_name)).time().replace(tzinfo=None))


def next_window_opening(moment: datetime, window: SendWindow | None, zone_name: str) -> datetime:
    """`moment` itself when it is inside the window, else the next moment the window opens."""
    if in_window(moment, window, zone_name):
        return moment
    zone = ZoneInfo(zone_name)
    local_day = _local(moment, zone).date()
    for offset in range(3):
        opening = _at_local(local_day + timedelta(days=offset), window.start, zone)
        if opening > moment:
            return opening
    raise AssertionError("a window opens every day")  # pragma: no cover


def window_closing(moment: datetime, window: SendWindow | None, zone_name: str) -> datetime | None:
    """When the window that contains `moment` closes (None without a window)."""
    if window is None:
        return None
    zone = ZoneInfo(zone_name)
    local_day = _local(moment, zone).date()
    for offset in range(3):
        closing = _at_local(local_day + timedelta(days=offset), window.end, zone)
        if closing > moment:
            return closing
    raise AssertionError("a window closes every day")  # pragma: no cover


def retry_delay_seconds(attempts: int, base: float, maximum: float, rng: random.Random | None = None) -> float:
    """The wait after the `attempts`-th failed attempt: exponential, capped, with jitter in [0.5, 1]."""
    exponent = min(max(attempts - 1, 0), 62)
    delay = min(maximum, base * math.pow(2, exponent))
    return delay * (rng or random).uniform(0.5, 1.0)


@dataclass(frozen=True)
class SendOutcome:
    ok: bool
    detail: str  # what the answer was, for the log and the message's last_error


def judge_answer(status_code: int, body: bytes) -> SendOutcome:
    """Success is HTTP 200 with a JSON object whose `code` is the integer 0."""

    excerpt = body[:200].decode("utf-8", "replace")
    if status_code != 200:
        return SendOutcome(False, f"HTTP {status_code}: {excerpt}")
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return SendOutcome(False, f"HTTP 200 with a body that is not JSON: {excerpt!r}")
    if not isinstance(answer, dict) or "code" not in answer:
        return SendOutcome(False, f"HTTP 200 without a code: {excerpt}")
    code = answer["code"]
    if type(code) is not int or code != 0:
        return SendOutcome(False, f"HTTP 200 with code {code!r}: {excerpt}")
    return SendOutcome(True, f"HTTP 200 code 0: {excerpt}")


# --- Statistics ------------------------------------------------------------------------------------


def message_data(counts: dict[str, int]) -> list[dict]:
    """Counts per status, every status listed (0 when none), in lifecycle order."""
    return [{"status": status, "count": int(counts.get(status, 0))} for status in STATUSES]


# --- The daily report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportLine:
    mailing: Mailing
    counts: dict[str, int]
    sent_that_day: int


def report_day(now: datetime, report_at: str) -> date | None:
    """The day whose report is due at `now` (yesterday, UTC) once today's report time has passed."""
    hours, minutes = (int(part) for part in report_at.split(":"))
    if now.astimezone(UTC).time().replace(tzinfo=None) < time(hours, minutes):
        return None
    return now.astimezone(UTC).date() - timedelta(days=1)


def report_message(day: date, lines: list[ReportLine]) -> tuple[str, str]:
    """The subject and plain-text body of the day's report."""
    sent = sum(line.sent_that_day for line in lines)
    subject = f"Mailings on {day.isoformat()}: {len(lines)} mailings, {sent} messages sent"
    body = [f"Mailing statistics for {day.isoformat()} (UTC days), one line per mailing that ran that day.", ""]
    if not lines:
        body.append("No mailing ran that day.")
    for line in lines:
        mailing = line.mailing
        excerpt = mailing.text if len(mailing.text) <= 40 else mailing.text[:39] + "…"
        totals = ", ".join(f"{status} {line.counts.get(status, 0)}" for status in STATUSES)
        body.append(
            f"mailing {mailing.id} {excerpt!r} ({mailing.start_time:%Y-%m-%d %H:%M} - {mailing.end_time:%Y-%m-%d %H:%M}"
            f" UTC): sent that day {line.sent_that_day}; now {totals}"
        )
    return subject, "\n".join(body) + "\n"
