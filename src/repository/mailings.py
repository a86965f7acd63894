"""Clients, mailings and their messages in the database; the claims that make each send happen once.

Times are stored as naive UTC and handed out as aware UTC datetimes.

Exactly once. A worker claims due messages in one conditional UPDATE (`claim_due`): it stamps them with
its own claim token and a claim expiry, and only messages without a live claim are taken (PostgreSQL
also skips rows another claimer has locked), so two workers never hold the same message. The worker
sends, then records the outcome with `record_sent` / `record_failure`, which change the message only
while the worker's claim token is still on it; a message recorded SENT is never claimed again. A worker
that dies after its send and before its record leaves its claim to expire; the message is then claimed
and sent again, with the same message id (the only way a message can go out twice).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import peewee

from domain.errors import Conflict, NotFound
from domain.mailings import EXPIRED, FAILED, PENDING, SENT, UNSENT, Client, Mailing, ReportLine
from repository.db import BaseModel, is_sqlite, write_transaction


class ClientRow(BaseModel):
    phone = peewee.CharField(max_length=11, unique=True)
    operator_code = peewee.CharField(max_length=3)
    tag = peewee.CharField(max_length=64, null=True)
    timezone = peewee.CharField(max_length=64)

    class Meta:
        table_name = "mailing_clients"


class MailingRow(BaseModel):
    start_time = peewee.DateTimeField()
    end_time = peewee.DateTimeField()
    text = peewee.TextField()
    client_operator_code_filter = peewee.CharField(max_length=3, null=True)
    client_tag_filter = peewee.CharField(max_length=64, null=True)
    send_window_start = peewee.CharField(max_length=5, null=True)
    send_window_end = peewee.CharField(max_length=5, null=True)
    created_at = peewee.DateTimeField()

    class Meta:
        table_name = "mailings"


class MessageRow(BaseModel):
    mailing = peewee.ForeignKeyField(MailingRow, column_name="mailing_id")
    client = peewee.ForeignKeyField(ClientRow, column_name="client_id", null=True)
    status = peewee.CharField(max_length=8)
    attempts = peewee.IntegerField(default=0)
    last_error = peewee.TextField(null=True)
    phone = peewee.CharField(max_length=11, null=True)
    created_at = peewee.DateTimeField()
    next_attempt_at = peewee.DateTimeField()
    last_attempt_at = peewee.DateTimeField(null=True)
    sent_at = peewee.DateTimeField(null=True)
    claim_token = peewee.CharField(max_length=64, null=True)
    claim_expires_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "mailing_messages"


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None else None


# --- Clients ---------------------------------------------------------------------------------------


def _client(row: ClientRow) -> Client:
    return Client(phone=row.phone, operator_code=row.operator_code, timezone=row.timezone, tag=row.tag, id=row.id)


def _phone_taken(phone: str, other_than: int | None = None) -> Conflict | None:
    query = ClientRow.select(ClientRow.id).where(ClientRow.phone == phone)
    if other_than is not None:
        query = query.where(ClientRow.id != other_than)
    row = query.first()
    return Conflict(f"phone {phone} belongs to client {row.id} already", field="phone") if row else None


def create_client(client: Client) -> Client:
    try:
        with write_transaction():
            if conflict := _phone_taken(client.phone):
                raise conflict
            row = ClientRow.create(
                phone=client.phone, operator_code=client.operator_code, tag=client.tag, timezone=client.timezone
            )
    except peewee.IntegrityError:  # a concurrent create of the same phone
        raise _phone_taken(client.phone) or Conflict(f"phone {client.phone} is taken", field="phone") from None
    return _client(row)


def update_client(client: Client) -> Client:
    try:
        with write_transaction():
            if not ClientRow.select().where(ClientRow.id == client.id).exists():
                raise NotFound(f"no client {client.id}")
            if conflict := _phone_taken(client.phone, other_than=client.id):
                raise conflict
            ClientRow.update(
                phone=client.phone, operator_code=client.operator_code, tag=client.tag, timezone=client.timezone
            ).where(ClientRow.id == client.id).execute()
    except peewee.IntegrityError:
        raise Conflict(f"phone {client.phone} is taken", field="phone") from None
    return client


def delete_client(client_id: int) -> int:
    """Delete the client and its unsent messages; its sent and expired messages stay, without it.
    Returns how many unsent messages went with it."""
    with write_transaction():
        if not ClientRow.select().where(ClientRow.id == client_id).exists():
            raise NotFound(f"no client {client_id}")
        dropped = MessageRow.delete().where((MessageRow.client == client_id) & MessageRow.status.in_(UNSENT)).execute()
        MessageRow.update(client=None).where(MessageRow.client == client_id).execute()
        ClientRow.delete().where(ClientRow.id == client_id).execute()
    return dropped


def get_client(client_id: int) -> Client:
    row = ClientRow.get_or_none(ClientRow.id == client_id)
    if row is None:
        raise NotFound(f"no client {client_id}")
    return _client(row)


def list_clients(
    limit: int, offset: int, tag: str | None = None, operator_code: str | None = None
) -> tuple[list[Client], int]:
    query = ClientRow.select()
    if tag is not None:
        query = query.where(ClientRow.tag == tag)
    if operator_code is not None:
        query = query.where(ClientRow.operator_code == operator_code)
    total = query.count()
    rows = query.order_by(ClientRow.id).limit(limit).offset(offset)
    return [_client(row) for row in rows], total


def create_clients(clients: Iterable[Client], chunk: int = 500) -> None:
    """Bulk insert (the benchmark's and tests' loader)."""
    rows = [dict(phone=c.phone, operator_code=c.operator_code, tag=c.tag, timezone=c.timezone) for c in clients]
    with write_transaction():
        for start in range(0, len(rows), chunk):
            ClientRow.insert_many(rows[start : start + chunk]).execute()


# --- Mailings --------------------------------------------------------------------------------------


def _clock(text: str | None) -> time | None:
    return time.fromisoformat(text) if text else None


def _mailing(row: MailingRow) -> Mailing:
    return Mailing(
        start_time=_aware(row.start_time),
        end_time=_aware(row.end_time),
        text=row.text,
        client_operator_code_filter=row.client_operator_code_filter,
        client_tag_filter=row.client_tag_filter,
        send_window_start=_clock(row.send_window_start),
        send_window_end=_clock(row.send_window_end),
        id=row.id,
    )


def _mailing_fields(mailing: Mailing) -> dict:
    return dict(
        start_time=_naive(mailing.start_time),
        end_time=_naive(mailing.end_time),
        text=mailing.text,
        client_operator_code_filter=mailing.client_operator_code_filter,
        client_tag_filter=mailing.client_tag_filter,
        send_window_start=mailing.send_window_start.strftime("%H:%M") if mailing.send_window_start else None,
        send_window_end=mailing.send_window_end.strftime("%H:%M") if mailing.send_window_end else None,
    )


def create_mailing(mailing: Mailing, now: datetime) -> Mailing:
    with write_transaction():
        row = MailingRow.create(**_mailing_fields(mailing), created_at=_naive(now))
    return _mailing(row)


def get_mailing(mailing_id: int) -> Mailing:
    row = MailingRow.get_or_none(MailingRow.id == mailing_id)
    if row is None:
        raise NotFound(f"no mailing {mailing_id}")
    return _mailing(row)


def _not_started_or_raise(mailing_id: int, action: str) -> None:
    row = MailingRow.get_or_none(MailingRow.id == mailing_id)
    if row is None:
        raise NotFound(f"no mailing {mailing_id}")
    raise Conflict(
        f"mailing {mailing_id} started at {_aware(row.start_time).isoformat()}: it can no longer be {action}"
    )


def update_mailing(mailing: Mailing, now: datetime) -> Mailing:
    """Replace a mailing that has not started (checked in the same statement, so a dispatcher that
    starts it at this moment and this edit cannot both win)."""
    with write_transaction():
        changed = (
            MailingRow.update(**_mailing_fields(mailing))
            .where((MailingRow.id == mailing.id) & (MailingRow.start_time > _naive(now)))
            .execute()
        )
        if not changed:
            _not_started_or_raise(mailing.id, "edited")
    return mailing


def delete_mailing(mailing_id: int, now: datetime) -> None:
    with write_transaction():
        deleted = (
            MailingRow.delete().where((MailingRow.id == mailing_id) & (MailingRow.start_time > _naive(now))).execute()
        )
        if not deleted:
            _not_started_or_raise(mailing_id, "deleted")


def mailing_count() -> int:
    return MailingRow.select().count()


def status_counts(mailing_id: int | None = None) -> dict[str, int]:
    query = MessageRow.select(MessageRow.status, peewee.fn.COUNT(MessageRow.id).alias("n"))
    if mailing_id is not None:
        query = query.where(MessageRow.mailing == mailing_id)
    return {row.status: row.n for row in query.group_by(MessageRow.status)}


def mailings_with_counts(limit: int, offset: int) -> tuple[list[tuple[Mailing, dict[str, int]]], int]:
    """A page of mailings, newest first, each with {status: count} of its messages (two queries however
    many mailings the page holds); and how many mailings there are."""
    rows = list(MailingRow.select().order_by(MailingRow.id.desc()).limit(limit).offset(offset))
    counts: dict[int, dict[str, int]] = {row.id: {} for row in rows}
    if rows:
        grouped = (
            MessageRow.select(MessageRow.mailing, MessageRow.status, peewee.fn.COUNT(MessageRow.id))
            .where(MessageRow.mailing.in_(list(counts)))
            .group_by(MessageRow.mailing, MessageRow.status)
            .tuples()
        )
        for mailing_id, status, count in grouped:
            counts[mailing_id][status] = count
    return [(_mailing(row), counts[row.id]) for row in rows], mailing_count()


@dataclass(frozen=True)
class MessageView:
    id: int
    mailing_id: int
    client_id: int | None
    phone: str | None
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    sent_at: datetime | None


def messages(mailing_id: int, limit: int, offset: int, status: str | None = None) -> tuple[list[MessageView], int]:
    query = (
        MessageRow.select(MessageRow, ClientRow.phone.alias("client_phone"))
        .join(ClientRow, peewee.JOIN.LEFT_OUTER, on=(MessageRow.client == ClientRow.id))
        .where(MessageRow.mailing == mailing_id)
    )
    if status is not None:
        query = query.where(MessageRow.status == status)
    total = query.count()
    rows = query.order_by(MessageRow.id).limit(limit).offset(offset).objects()
    return [
        MessageView(
            id=row.id,
            mailing_id=mailing_id,
            client_id=row.client_id,
            phone=row.phone or row.client_phone,
            status=row.status,
            attempts=row.attempts,
            last_error=row.last_error,
            created_at=_aware(row.created_at),
            last_attempt_at=_aware(row.last_attempt_at),
            next_attempt_at=_aware(row.next_attempt_at) if row.status in UNSENT else None,
            sent_at=_aware(row.sent_at),
        )
        for row in rows
    ], total


def day_report(day_start: datetime, day_end: datetime) -> list[ReportLine]:
    """Every mailing that ran during [day_start, day_end): its counts per status now, and how many of its
    messages were sent within the day."""
    start, end = _naive(day_start), _naive(day_end)
    rows = (
        MailingRow.select().where((MailingRow.start_time < end) & (MailingRow.end_time > start)).order_by(MailingRow.id)
    )
    reports = []
    for row in rows:
        sent = (
            MessageRow.select()
            .where((MessageRow.mailing == row.id) & (MessageRow.sent_at >= start) & (MessageRow.sent_at < end))
            .count()
        )
        reports.append(ReportLine(_mailing(row), status_counts(row.id), sent))
    return reports


# --- Dispatch: making, claiming and recording messages ---------------------------------------------


def _active_mailings(now: datetime) -> peewee.Select:
    moment = _naive(now)
    return MailingRow.select(MailingRow.id).where((MailingRow.start_time <= moment) & (MailingRow.end_time > moment))


def make_messages(now: datetime, mailing_id: int | None = None) -> dict[int, int]:
    """A PENDING message for every client that matches an active mailing (or only that one) and has none
    yet. Returns {mailing id: messages made}."""
    moment = _naive(now)
    made: dict[int, int] = {}
    active = MailingRow.select().where((MailingRow.start_time <= moment) & (MailingRow.end_time > moment))
    if mailing_id is not None:
        active = active.where(MailingRow.id == mailing_id)
    for row in active:
        has_one = MessageRow.select(MessageRow.id).where(
            (MessageRow.mailing == row.id) & (MessageRow.client == ClientRow.id)
        )
        matching = ClientRow.select(
            peewee.Value(row.id),
            ClientRow.id,
            peewee.Value(PENDING),
            peewee.Value(0),
            peewee.Value(moment),
            peewee.Value(moment),
        ).where(~peewee.fn.EXISTS(has_one))
        if row.client_operator_code_filter is not None:
            matching = matching.where(ClientRow.operator_code == row.client_operator_code_filter)
        if row.client_tag_filter is not None:
            matching = matching.where(ClientRow.tag == row.client_tag_filter)
        fields = [
            MessageRow.mailing,
            MessageRow.client,
            MessageRow.status,
            MessageRow.attempts,
            MessageRow.created_at,
            MessageRow.next_attempt_at,
        ]
        with write_transaction():
            count = MessageRow.insert_from(matching, fields).on_conflict_ignore().as_rowcount().execute()
        if count:
            made[row.id] = count
    return made


def expire_messages(now: datetime) -> dict[int, int]:
    """Unsent messages of mailings whose end_time has passed become EXPIRED (unless a live claim is on
    them: its worker records it, or its claim expires first). Returns {mailing id: messages expired}."""
    moment = _naive(now)
    ended = MailingRow.select(MailingRow.id).where(MailingRow.end_time <= moment)
    unclaimed = MessageRow.claim_expires_at.is_null() | (MessageRow.claim_expires_at <= moment)
    due = MessageRow.status.in_(UNSENT) & MessageRow.mailing.in_(ended) & unclaimed
    with write_transaction():
        counts = {
            row.mailing_id: row.n
            for row in MessageRow.select(MessageRow.mailing, peewee.fn.COUNT(MessageRow.id).alias("n"))
            .where(due)
            .group_by(MessageRow.mailing)
        }
        if counts:
            MessageRow.update(status=EXPIRED, claim_token=None, claim_expires_at=None).where(due).execute()
    return counts


@dataclass(frozen=True)
class ClaimedMessage:
    id: int
    token: str
    mailing: Mailing
    client: Client | None
    attempts: int  # before this one


def claim_due(now: datetime, limit: int, claim_seconds: float) -> list[ClaimedMessage]:
    """Claim up to `limit` unsent messages that are due (their next attempt has come, their mailing is
    running, nobody holds a live claim on them), oldest due first."""
    token = uuid.uuid4().hex
    moment = _naive(now)
    candidates = (
        MessageRow.select(MessageRow.id)
        .where(
            MessageRow.status.in_(UNSENT)
            & (MessageRow.next_attempt_at <= moment)
            & (MessageRow.claim_expires_at.is_null() | (MessageRow.claim_expires_at <= moment))
            & MessageRow.mailing.in_(_active_mailings(now))
        )
        .order_by(MessageRow.next_attempt_at, MessageRow.id)
        .limit(limit)
    )
    if not is_sqlite():
        candidates = candidates.for_update("FOR UPDATE SKIP LOCKED")
    with write_transaction():
        claimed = (
            MessageRow.update(claim_token=token, claim_expires_at=moment + timedelta(seconds=claim_seconds))
            .where(MessageRow.id.in_(candidates))
            .execute()
        )
    if not claimed:
        return []
    rows = (
        MessageRow.select(MessageRow, MailingRow, ClientRow)
        .join(MailingRow, on=(MessageRow.mailing == MailingRow.id))
        .switch(MessageRow)
        .join(ClientRow, peewee.JOIN.LEFT_OUTER, on=(MessageRow.client == ClientRow.id))
        .where(MessageRow.claim_token == token)
        .order_by(MessageRow.next_attempt_at, MessageRow.id)
    )
    return [
        ClaimedMessage(
            id=row.id,
            token=token,
            mailing=_mailing(row.mailing),
            client=_client(row.client) if row.client_id is not None else None,
            attempts=row.attempts,
        )
        for row in rows
    ]


def _claimed(message: ClaimedMessage):
    return (MessageRow.id == message.id) & (MessageRow.claim_token == message.token) & MessageRow.status.in_(UNSENT)


@dataclass(frozen=True)
class Outcome:
    """What became of one attempt: sent (sent_at) or failed (error, retry_at)."""

    message: ClaimedMessage
    phone: str
    attempted_at: datetime
    sent_at: datetime | None = None
    error: str | None = None
    retry_at: datetime | None = None


def _outcome_update(outcome: Outcome) -> peewee.ModelUpdate:
    common = dict(
        attempts=MessageRow.attempts + 1,
        phone=outcome.phone,
        last_attempt_at=_naive(outcome.attempted_at),
        claim_token=None,
        claim_expires_at=None,
    )
    if outcome.sent_at is not None:
        fields = dict(status=SENT, sent_at=_naive(outcome.sent_at), last_error=None)
    else:
        fields = dict(status=FAILED, last_error=(outcome.error or "")[:1000], next_attempt_at=_naive(outcome.retry_at))
    return MessageRow.update(**common, **fields).where(_claimed(outcome.message))


def record_outcomes(outcomes: list[Outcome]) -> list[bool]:
    """Record attempts in one transaction; each changes its message only while its claim is on it (so a
    message is recorded SENT once). Returns, per outcome, whether it was recorded (False: claim lost)."""
    with write_transaction():
        return [bool(_outcome_update(outcome).execute()) for outcome in outcomes]


def record_sent(message: ClaimedMessage, phone: str, attempted_at: datetime, sent_at: datetime) -> bool:
    """SENT, once: only while this claim is on the message. False when the claim was lost."""
    return record_outcomes([Outcome(message, phone, attempted_at, sent_at=sent_at)])[0]


def record_failure(message: ClaimedMessage, phone: str, attempted_at: datetime, error: str, retry_at: datetime) -> bool:
    return record_outcomes([Outcome(message, phone, attempted_at, error=error, retry_at=retry_at)])[0]


def postpone(message: ClaimedMessage, until: datetime) -> bool:
    """Give the claim back without an attempt, due again at `until` (the client's window opens then)."""
    with write_transaction():
        return bool(
            MessageRow.update(next_attempt_at=_naive(until), claim_token=None, claim_expires_at=None)
            .where(_claimed(message))
            .execute()
        )


def expire(message: ClaimedMessage) -> bool:
    with write_transaction():
        return bool(
            MessageRow.update(status=EXPIRED, claim_token=None, claim_expires_at=None)
            .where(_claimed(message))
            .execute()
        )


def drop(message: ClaimedMessage) -> bool:
    """Delete an unsent message whose client no longer matches its mailing (or is gone)."""
    with write_transaction():
        return bool(MessageRow.delete().where(_claimed(message)).execute())


def has_due_work(now: datetime) -> bool:
    moment = _naive(now)
    return (
        MessageRow.select(MessageRow.id)
        .where(
            MessageRow.status.in_(UNSENT)
            & (MessageRow.next_attempt_at <= moment)
            & (MessageRow.claim_expires_at.is_null() | (MessageRow.claim_expires_at <= moment))
            & MessageRow.mailing.in_(_active_mailings(now))
        )
        .exists()
    )
