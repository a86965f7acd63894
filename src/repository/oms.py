"""OMS messages as received, and each device's latest message, kept current at write time for the export.

A device is its wireless M-Bus address (identnr, manufacturer, version, type). Every message is stored whole
(device status and access number, message time, when it was received, every record in order) and only once,
recognised by its fingerprint. The device row points at the device's latest message: the newest message time,
the first stored on a tie (domain.oms.is_newer). The pointer moves inside the transaction that stores the
message, with the device row locked, so concurrent posts cannot move it backwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import peewee

from domain.oms import OmsDevice, OmsMessage, OmsRecord, OmsValue, is_newer, message_fingerprint
from repository.db import BaseModel, database, is_sqlite, write_transaction

EXPORT_PAGE_DEVICES = 1_000
# Bound parameters per statement, below the smallest SQLite variable limit (999).
MAX_PARAMETERS = 900

# identnr, manufacturer, version, type: the device's identity and the export's order.
DeviceKey = tuple[int, int, int, int]


class DeviceRow(BaseModel):
    identnr = peewee.IntegerField()
    manufacturer = peewee.IntegerField()
    version = peewee.IntegerField()
    device_type = peewee.IntegerField()
    latest_message_id = peewee.IntegerField(null=True)
    latest_message_time = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "oms_devices"


class MessageRow(BaseModel):
    device = peewee.ForeignKeyField(DeviceRow, column_name="device_id")
    message_time = peewee.DateTimeField()
    received_at = peewee.DateTimeField()
    fingerprint = peewee.CharField(max_length=64, unique=True)
    status = peewee.IntegerField()
    accessnr = peewee.IntegerField()

    class Meta:
        table_name = "oms_messages"


class RecordRow(BaseModel):
    message = peewee.ForeignKeyField(MessageRow, column_name="message_id")
    position = peewee.IntegerField()
    dimension = peewee.CharField(max_length=128)
    storagenr = peewee.IntegerField()
    tariff = peewee.IntegerField()
    subunit = peewee.IntegerField()
    number_value = peewee.TextField(null=True)
    time_value = peewee.DateTimeField(null=True)
    utc_offset_microseconds = peewee.BigIntegerField(null=True)

    class Meta:
        table_name = "oms_records"
        primary_key = peewee.CompositeKey("message", "position")


DEVICE_KEY_FIELDS = (DeviceRow.identnr, DeviceRow.manufacturer, DeviceRow.version, DeviceRow.device_type)


@dataclass(frozen=True)
class DeviceSummary:
    identnr: int
    manufacturer: int
    version: int
    type: int
    latest_message_time: datetime


@dataclass
class _LockedDevice:
    id: int
    latest_message_time: datetime | None
    latest_message_id: int | None = None


@dataclass(frozen=True)
class _Page:
    messages: list[OmsMessage]
    # The last device this page looked at, or None when no device comes after it.
    last_key: DeviceKey | None


# --- writing ----------------------------------------------------------------------------------------------


def store_message(message: OmsMessage, received_at: datetime | None = None) -> bool:
    """Store the message unless it is stored already. Returns whether it was new."""
    return store_messages([message], received_at) == 1


def store_messages(messages: Sequence[OmsMessage], received_at: datetime | None = None) -> int:
    """Store every message not stored before, all or nothing, as if posted one by one in this order.

    Returns how many were new. Each device's latest pointer moves to a new message only when that one is
    newer (domain.oms.is_newer), so a late-arriving older message never replaces a newer one.
    """
    received = _naive_utc(received_at or datetime.now(UTC))
    by_fingerprint = {}
    for message in messages:
        by_fingerprint.setdefault(message_fingerprint(message), message)
    with write_transaction():
        devices = _locked_devices({device_key(message.device) for message in by_fingerprint.values()})
        new = _not_stored_yet(by_fingerprint)
        if new:
            message_ids = _insert_messages(new, devices, received)
            _insert_records(new, message_ids)
            _advance_latest(new, message_ids, devices)
    return len(new)


def _locked_devices(keys: set[DeviceKey]) -> dict[DeviceKey, _LockedDevice]:
    """Create the devices not seen before and lock every one of them until the transaction ends.

    Rows are inserted and locked in key order, so two batches sharing devices cannot deadlock. On SQLite the
    write transaction already holds the database's only write lock (BEGIN IMMEDIATE).
    """
    ordered_keys = sorted(keys)
    for chunk in _chunks(ordered_keys, MAX_PARAMETERS // 4):
        DeviceRow.insert_many(chunk, fields=DEVICE_KEY_FIELDS).on_conflict_ignore().execute()
    found = {}
    for identnrs in _chunks(sorted({key[0] for key in keys}), MAX_PARAMETERS):
        query = (
            DeviceRow.select(DeviceRow.id, *DEVICE_KEY_FIELDS, DeviceRow.latest_message_time)
            .where(DeviceRow.identnr.in_(identnrs))
            .order_by(*DEVICE_KEY_FIELDS)
        )
        if not is_sqlite():
            query = query.for_update()
        for device_id, *key, latest_time in query.tuples():
            if tuple(key) in keys:
                found[tuple(key)] = _LockedDevice(device_id, _aware_utc(latest_time))
    return found


def _not_stored_yet(by_fingerprint: dict[str, OmsMessage]) -> dict[str, OmsMessage]:
    stored = set()
    for chunk in _chunks(list(by_fingerprint), MAX_PARAMETERS):
        query = MessageRow.select(MessageRow.fingerprint).where(MessageRow.fingerprint.in_(chunk))
        stored.update(fingerprint for (fingerprint,) in query.tuples())
    return {fingerprint: message for fingerprint, message in by_fingerprint.items() if fingerprint not in stored}


def _insert_messages(
    new: dict[str, OmsMessage], devices: dict[DeviceKey, _LockedDevice], received: datetime
) -> dict[str, int]:
    fields = [
        MessageRow.device,
        MessageRow.message_time,
        MessageRow.received_at,
        MessageRow.fingerprint,
        MessageRow.status,
        MessageRow.accessnr,
    ]
    rows = [
        (
            devices[device_key(message.device)].id,
            _naive_utc(message.message_time),
            received,
            fingerprint,
            message.device.status,
            message.device.accessnr,
        )
        for fingerprint, message in new.items()
    ]
    for chunk in _chunks(rows, MAX_PARAMETERS // len(fields)):
        MessageRow.insert_many(chunk, fields=fields).execute()
    ids = {}
    for chunk in _chunks(list(new), MAX_PARAMETERS):
        query = MessageRow.select(MessageRow.fingerprint, MessageRow.id).where(MessageRow.fingerprint.in_(chunk))
        ids.update(query.tuples())
    return ids


def _insert_records(new: dict[str, OmsMessage], message_ids: dict[str, int]) -> None:
    fields = [
        RecordRow.message,
        RecordRow.position,
        RecordRow.dimension,
        RecordRow.storagenr,
        RecordRow.tariff,
        RecordRow.subunit,
        RecordRow.number_value,
        RecordRow.time_value,
        RecordRow.utc_offset_microseconds,
    ]
    rows = (
        (message_ids[fingerprint], position, *_record_columns(record))
        for fingerprint, message in new.items()
        for position, record in enumerate(message.records)
    )
    for chunk in _chunks(rows, MAX_PARAMETERS // len(fields)):
        RecordRow.insert_many(chunk, fields=fields).execute()


def _record_columns(record: OmsRecord) -> tuple:
    common = (record.dimension, record.storagenr, record.tariff, record.subunit)
    if isinstance(record.value, datetime):
        offset = record.value.utcoffset() or timedelta(0)
        return (*common, None, _naive_utc(record.value), offset // timedelta(microseconds=1))
    return (*common, _exact_text(Decimal(record.value)), None, None)


def _advance_latest(
    new: dict[str, OmsMessage], message_ids: dict[str, int], devices: dict[DeviceKey, _LockedDevice]
) -> None:
    moved = {}
    for fingerprint, message in new.items():
        device = devices[device_key(message.device)]
        if is_newer(message.message_time, device.latest_message_time):
            device.latest_message_time = message.message_time
            device.latest_message_id = message_ids[fingerprint]
            moved[device.id] = device
    updates = [
        DeviceRow(
            id=device.id,
            latest_message_id=device.latest_message_id,
            latest_message_time=_naive_utc(device.latest_message_time),
        )
        for device in moved.values()
    ]
    # Two CASE parameters per field and the id in the WHERE list.
    DeviceRow.bulk_update(
        updates, fields=[DeviceRow.latest_message_id, DeviceRow.latest_message_time], batch_size=MAX_PARAMETERS // 5
    )


# --- reading ----------------------------------------------------------------------------------------------


def latest_messages(
    since: datetime | None = None, until: datetime | None = None, page_size: int = EXPORT_PAGE_DEVICES
) -> Iterator[OmsMessage]:
    """Each device's latest message, in device order (identnr, manufacturer, version, type).

    With since and/or until, each device's latest message among those with since <= message time < until
    (the export as it stood at `until`); devices without one are left out.

    The first page is read now, on the caller's connection, so an unreachable database fails before a
    response starts. Later pages are read lazily, `page_size` devices at a time, each on a connection
    borrowed for that page only: a streamed response is consumed after the request gave its connection back.
    """
    first = _latest_page(None, since, until, page_size)
    return _pages_from(first, since, until, page_size)


def _pages_from(page: _Page, since: datetime | None, until: datetime | None, page_size: int) -> Iterator[OmsMessage]:
    while True:
        yield from page.messages
        if page.last_key is None:
            return
        with _borrowed_connection():
            page = _latest_page(page.last_key, since, until, page_size)


@contextlib.contextmanager
def _borrowed_connection():
    if not database.is_closed():
        yield
        return
    with database.connection_context():
        yield


def _latest_page(after: DeviceKey | None, since: datetime | None, until: datetime | None, size: int) -> _Page:
    chosen = DeviceRow.latest_message_id if until is None else _newest_message_in(since, until)
    query = DeviceRow.select(*DEVICE_KEY_FIELDS, chosen.alias("chosen")).where(
        DeviceRow.latest_message_id.is_null(False)
    )
    if since is not None:  # the newest message overall is older than since: none is in the window
        query = query.where(DeviceRow.latest_message_time >= _naive_utc(since))
    if after is not None:
        query = query.where(peewee.Tuple(*DEVICE_KEY_FIELDS) > peewee.Tuple(*after))
    rows = list(query.order_by(*DEVICE_KEY_FIELDS).limit(size).tuples())
    devices = {message_id: key for *key, message_id in rows if message_id is not None}
    messages = _messages(devices)
    return _Page(messages=messages, last_key=tuple(rows[-1][:4]) if len(rows) == size else None)


def _newest_message_in(since: datetime | None, until: datetime) -> peewee.SelectQuery:
    candidate = MessageRow.alias("candidate")
    query = candidate.select(candidate.id).where(
        (candidate.device == DeviceRow.id) & (candidate.message_time < _naive_utc(until))
    )
    if since is not None:
        query = query.where(candidate.message_time >= _naive_utc(since))
    return query.order_by(candidate.message_time.desc(), candidate.id).limit(1)


def _messages(device_by_message_id: dict[int, list[int]]) -> list[OmsMessage]:
    """The messages with these ids, whole, in the order of the given dict."""
    ids = list(device_by_message_id)
    headers = {}
    records: dict[int, list[OmsRecord]] = {message_id: [] for message_id in ids}
    for chunk in _chunks(ids, MAX_PARAMETERS):
        query = MessageRow.select(MessageRow.id, MessageRow.message_time, MessageRow.status, MessageRow.accessnr).where(
            MessageRow.id.in_(chunk)
        )
        headers.update((message_id, rest) for message_id, *rest in query.tuples())
        record_query = (
            RecordRow.select(
                RecordRow.message,
                RecordRow.dimension,
                RecordRow.storagenr,
                RecordRow.tariff,
                RecordRow.subunit,
                RecordRow.number_value,
                RecordRow.time_value,
                RecordRow.utc_offset_microseconds,
            )
            .where(RecordRow.message.in_(chunk))
            .order_by(RecordRow.message, RecordRow.position)
        )
        # The raw cursor: peewee's per-cell conversion was half the export's time. Cells are converted below.
        for message_id, dimension, storagenr, tariff, subunit, number, moment, offset in database.execute(record_query):
            value = _stored_value(number, moment, offset)
            records[message_id].append(OmsRecord(dimension, value, storagenr=storagenr, tariff=tariff, subunit=subunit))
    messages = []
    for message_id, (identnr, manufacturer, version, device_type) in device_by_message_id.items():
        message_time, status, accessnr = headers[message_id]
        device = OmsDevice(identnr, manufacturer, device_type, version, status, accessnr)
        messages.append(OmsMessage(device, tuple(records[message_id]), _aware_utc(message_time)))
    return messages


def devices(limit: int, offset: int = 0) -> tuple[list[DeviceSummary], int]:
    """A page of the devices that sent a message, in device order, and how many there are in all."""
    with_message = DeviceRow.latest_message_id.is_null(False)
    query = (
        DeviceRow.select(*DEVICE_KEY_FIELDS, DeviceRow.latest_message_time)
        .where(with_message)
        .order_by(*DEVICE_KEY_FIELDS)
        .limit(limit)
        .offset(offset)
    )
    page = [
        DeviceSummary(identnr, manufacturer, version, device_type, _aware_utc(latest))
        for identnr, manufacturer, version, device_type, latest in query.tuples()
    ]
    return page, DeviceRow.select().where(with_message).count()


def counts() -> dict[str, int]:
    """How many devices, messages and records are stored."""
    return {
        "devices": DeviceRow.select().count(),
        "messages": MessageRow.select().count(),
        "records": RecordRow.select().count(),
    }


# --- conversions ------------------------------------------------------------------------------------------


def device_key(device: OmsDevice) -> DeviceKey:
    return (device.identnr, device.manufacturer, device.version, device.type)


def _naive_utc(moment: datetime) -> datetime:
    # Stored without zone on both engines (SQLite compares them as text), always in UTC.
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _aware_utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None else None


def _stored_value(number: str | None, moment: datetime | str | None, offset_microseconds: int | None) -> OmsValue:
    if number is not None:
        return Decimal(number)
    moment = moment if isinstance(moment, datetime) else datetime.fromisoformat(moment)  # SQLite answers text
    return moment.replace(tzinfo=UTC).astimezone(timezone(timedelta(microseconds=offset_microseconds)))


def _exact_text(number: Decimal) -> str:
    return "0" if number == 0 else format(number.normalize(), "f")


def _chunks(rows: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --- the devices page (controllers/pages_oms.py) ----------------------------------------------------------


def devices_with_latest(
    *, identnr_prefix: str | None = None, manufacturer: int | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[OmsMessage], int]:
    """A page of the devices that sent a message (device order), each with its latest message whole, and how
    many devices match: those whose id starts with `identnr_prefix` (digits) and/or of that manufacturer."""
    query = DeviceRow.select(DeviceRow.latest_message_id, *DEVICE_KEY_FIELDS).where(
        DeviceRow.latest_message_id.is_null(False)
    )
    if identnr_prefix:
        query = query.where(DeviceRow.identnr.cast("TEXT").startswith(identnr_prefix))
    if manufacturer is not None:
        query = query.where(DeviceRow.manufacturer == manufacturer)
    total = query.count()
    rows = query.order_by(*DEVICE_KEY_FIELDS).limit(limit).offset(offset).tuples()
    return _messages({message_id: key for message_id, *key in rows}), total
