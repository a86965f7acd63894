"""What the load's answers promised, checked against the database (the open `repository.db` connection).

`problems(acks)` lists every broken promise: a write answered 2xx that is not there as sent, or a write
answered otherwise (or not at all) that is there in part, or a write refused with a 4xx that left anything
behind. An empty list is the pass.
"""

from __future__ import annotations

from collections import defaultdict

from repository import dsmr as dsmr_repo
from repository import mailings as mailings_repo
from repository import oms as oms_repo
from repository import readings as readings_repo
from tests.support.load import OMS_RECORDS, Ack


def _joi_samples(meters: set[str]) -> dict[str, dict[int, float]]:
    Meter, Sample = readings_repo.Meter, readings_repo.MeterSample
    found: dict[str, dict[int, float]] = defaultdict(dict)
    rows = (
        Sample.select(Meter.meter_id, Sample.time, Sample.reading)
        .join(Meter, on=(Meter.meter_key == Sample.meter_key))
        .where(Meter.meter_id.in_(sorted(meters)))
        .tuples()
    )
    for meter, moment, reading in rows:
        found[meter][moment] = reading
    return found


def _oms_records(identnrs: set[int]) -> dict[int, list[int]]:
    """Records per message, per device identnr (a device row without a message shows as [])."""
    Device, Message, Record = oms_repo.DeviceRow, oms_repo.MessageRow, oms_repo.RecordRow
    found: dict[int, list[int]] = {}
    for (identnr,) in Device.select(Device.identnr).where(Device.identnr.in_(sorted(identnrs))).tuples():
        found[identnr] = []
    rows = (
        Message.select(Device.identnr, Message.id)
        .join(Device, on=(Message.device == Device.id))
        .where(Device.identnr.in_(sorted(identnrs)))
        .tuples()
    )
    for identnr, message_id in rows:
        found[identnr].append(Record.select().where(Record.message == message_id).count())
    return found


def _chunks(values: list, size: int = 500):
    for start in range(0, len(values), size):
        yield values[start : start + size]


def problems(acks: list[Ack]) -> list[str]:
    found: list[str] = []
    by_kind: dict[str, list[Ack]] = defaultdict(list)
    for ack in acks:
        by_kind[ack.kind].append(ack)

    joi = by_kind["joi"]
    samples = _joi_samples({ack.key[0] for ack in joi}) if joi else {}
    for ack in joi:
        meter, readings = ack.key
        present = [samples[meter].get(moment) == reading for moment, reading in readings]
        if ack.acknowledged and not all(present):
            found.append(f"JOI batch answered {ack.status} is missing {present.count(False)} of {len(readings)}")
        if not ack.acknowledged and any(present) and not all(present):
            found.append(f"JOI batch answered {ack.status} is half there: {present.count(True)} of {len(readings)}")
        if ack.status is not None and 400 <= ack.status < 500 and any(present):
            found.append(f"JOI batch answered {ack.status} left {present.count(True)} of {len(readings)} behind")

    dsmr = by_kind["dsmr"]
    stored: set[int] = set()
    for chunk in _chunks(sorted({ack.key for ack in dsmr})):
        Row = dsmr_repo.ReadingRow
        stored |= {moment for (moment,) in Row.select(Row.timestamp).where(Row.timestamp.in_(chunk)).tuples()}
    for ack in dsmr:
        if ack.acknowledged and ack.key not in stored:
            found.append(f"DSMR telegram of {ack.key} answered {ack.status} is not stored")

    oms: dict[int, list[int]] = {}
    for chunk in _chunks(sorted({ack.key for ack in by_kind["oms"]})):
        oms.update(_oms_records(set(chunk)))
    for ack in by_kind["oms"]:
        records = oms.get(ack.key)
        whole = records == [OMS_RECORDS]
        if ack.acknowledged and not whole:
            found.append(f"OMS message of device {ack.key} answered {ack.status} is stored as {records}")
        if not ack.acknowledged and records is not None and not whole:
            found.append(f"OMS message of device {ack.key} answered {ack.status} is half there: {records}")

    clients = by_kind["client"]
    phones: set[str] = set()
    for chunk in _chunks(sorted({ack.key for ack in clients})):
        Client = mailings_repo.ClientRow
        phones |= {phone for (phone,) in Client.select(Client.phone).where(Client.phone.in_(chunk)).tuples()}
    for ack in clients:
        if ack.acknowledged and ack.key not in phones:
            found.append(f"client {ack.key} answered {ack.status} is not stored")
    return found


def summary(acks: list[Ack]) -> dict[str, int]:
    """Counts per kind and answer, for the test's report (`-s` or a failure shows them)."""
    counts: dict[str, int] = defaultdict(int)
    for ack in acks:
        counts[f"{ack.kind} {ack.status if ack.status is not None else ack.failure}"] += 1
    return dict(sorted(counts.items()))
