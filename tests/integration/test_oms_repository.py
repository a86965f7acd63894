"""The OMS repository on a real database (SQLite always, PostgreSQL when configured)."""

import copy
import threading
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import peewee
import pytest

from domain.oms import OmsMessage, message_from_json
from repository import db
from repository import oms as oms_repo

SEED_PAYLOAD = {
    "data": [
        {"value": "2020-06-26T06:49:00.000000", "tariff": 0, "subunit": 0, "dimension": "Time Point (time & date)",
         "storagenr": 0},
        {"value": 29690, "tariff": 0, "subunit": 0, "dimension": "Energy (kWh)", "storagenr": 0},
        {"value": "2019-09-30T00:00:00.000000", "tariff": 0, "subunit": 0, "dimension": "Time Point (date)",
         "storagenr": 1},
        {"value": 16274, "tariff": 0, "subunit": 0, "dimension": "Energy (kWh)", "storagenr": 1},
    ],
    "device": {"type": 4, "status": 0, "identnr": 83251076, "version": 0, "accessnr": 156, "manufacturer": 5317},
}  # fmt: skip


def a_message(identnr=83251076, time="2020-06-26T06:49:00", energy=29690, manufacturer=5317, **device) -> OmsMessage:
    payload = copy.deepcopy(SEED_PAYLOAD)
    payload["device"].update(identnr=identnr, manufacturer=manufacturer, **device)
    payload["data"][0]["value"] = time
    payload["data"][1]["value"] = energy
    return message_from_json(payload)


def exported(**window) -> list[OmsMessage]:
    return list(oms_repo.latest_messages(**window))


def latest_energy(**window) -> list:
    return [message.records[1].value for message in exported(**window)]


def test_a_stored_message_reads_back_whole_with_exact_numbers_and_written_offsets(database):
    payload = copy.deepcopy(SEED_PAYLOAD)
    payload["data"][2]["value"] = "2019-09-30T00:00:00+02:00"
    payload["data"].append({"value": 0.1, "tariff": 1, "subunit": 2, "dimension": "Volume (m3)", "storagenr": 0})
    payload["data"].append(
        {"value": 123456789.123456, "tariff": 0, "subunit": 0, "dimension": "Power (W)", "storagenr": 3}
    )
    payload["data"].append(
        {"value": "2020-06-26T00:00:00+01:00:00.500000", "tariff": 0, "subunit": 0, "dimension": "Time Point (date)",
         "storagenr": 7}
    )  # fmt: skip
    message = message_from_json(payload)

    assert oms_repo.store_message(message)

    [stored] = exported()
    assert stored == message
    assert stored.records[2].value.utcoffset() == timedelta(hours=2)
    assert stored.records[2].value.date().isoformat() == "2019-09-30"
    assert stored.records[4].value == Decimal("0.1")
    assert stored.records[5].value == Decimal("123456789.123456")
    assert stored.records[6].value.utcoffset() == timedelta(hours=1, microseconds=500_000)


def test_the_same_message_stored_twice_is_stored_once(database):
    assert oms_repo.store_message(a_message())
    assert not oms_repo.store_message(a_message(status=3, accessnr=9))

    assert oms_repo.counts() == {"devices": 1, "messages": 1, "records": 4}


def test_the_received_time_is_stored_with_the_message(database):
    received = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=1)))

    oms_repo.store_message(a_message(), received_at=received)

    assert oms_repo.MessageRow.get().received_at == datetime(2024, 1, 2, 2, 4, 5)


def test_a_late_arriving_older_message_never_replaces_the_newer_one(database):
    oms_repo.store_message(a_message(time="2021-10-12T00:00:00", energy=3))
    oms_repo.store_message(a_message(time="2021-10-10T00:00:00", energy=1))

    assert latest_energy() == [Decimal(3)]
    assert oms_repo.counts()["messages"] == 2


def test_a_newer_message_replaces_the_latest(database):
    oms_repo.store_message(a_message(time="2021-10-10T00:00:00", energy=1))
    oms_repo.store_message(a_message(time="2021-10-12T00:00:00", energy=3))

    assert latest_energy() == [Decimal(3)]


def test_on_equal_message_times_the_first_stored_message_stays_latest(database):
    oms_repo.store_message(a_message(energy=1))
    oms_repo.store_message(a_message(energy=2))

    assert latest_energy() == [Decimal(1)]


def test_message_times_are_compared_as_instants_across_offsets(database):
    oms_repo.store_message(a_message(time="2021-10-12T12:00:00+00:00", energy=1))
    oms_repo.store_message(a_message(time="2021-10-12T13:30:00+02:00", energy=2))  # 11:30 UTC: older

    assert latest_energy() == [Decimal(1)]
    assert exported()[0].message_time == datetime(2021, 10, 12, 12, tzinfo=UTC)


def test_a_batch_is_stored_as_if_posted_one_by_one(database):
    batch = [
        a_message(time="2021-10-10T00:00:00", energy=1),
        a_message(time="2021-10-12T00:00:00", energy=3),
        a_message(time="2021-10-11T00:00:00", energy=2),
        a_message(time="2021-10-12T00:00:00", energy=4),
        a_message(time="2021-10-10T00:00:00", energy=1),  # a repeat of the first
        a_message(identnr=7, energy=5),
    ]

    assert oms_repo.store_messages(batch) == 5
    assert oms_repo.store_messages(batch) == 0

    assert latest_energy() == [Decimal(5), Decimal(3)]


def test_a_failing_store_leaves_nothing_behind(database, monkeypatch):
    def explode(*args):
        raise peewee.OperationalError("disk full")

    monkeypatch.setattr(oms_repo, "_advance_latest", explode)

    with pytest.raises(peewee.OperationalError):
        oms_repo.store_messages([a_message(), a_message(identnr=7)])

    assert oms_repo.counts() == {"devices": 0, "messages": 0, "records": 0}


def test_an_identnr_shared_by_two_manufacturers_is_two_devices_in_device_order(database):
    oms_repo.store_message(a_message(identnr=5, manufacturer=9000, energy=2))
    oms_repo.store_message(a_message(identnr=5, manufacturer=5317, energy=1))
    oms_repo.store_message(a_message(identnr=4, manufacturer=9999, energy=0))

    assert [(m.device.identnr, m.device.manufacturer) for m in exported()] == [(4, 9999), (5, 5317), (5, 9000)]


def test_the_export_pages_through_every_device_in_order_across_page_boundaries(database):
    identnrs = list(range(100, 0, -3))
    oms_repo.store_messages([a_message(identnr=identnr, energy=identnr) for identnr in identnrs])

    for page_size in (1, 3, 7, len(identnrs), 1000):
        messages = list(oms_repo.latest_messages(page_size=page_size))
        assert [m.device.identnr for m in messages] == sorted(identnrs)
        assert [m.records[1].value for m in messages] == [Decimal(i) for i in sorted(identnrs)]


def test_later_pages_borrow_a_connection_each_and_give_it_back(database):
    oms_repo.store_messages([a_message(identnr=identnr) for identnr in range(10)])
    messages = oms_repo.latest_messages(page_size=4)  # the first page is read now, on this connection
    db.close()  # as the request's teardown does before a streamed body is sent

    identnrs = []
    for message in messages:
        identnrs.append(message.device.identnr)
        assert db.database.is_closed()  # no connection is held between pages

    assert identnrs == list(range(10))
    assert not db.database.obj._in_use


def test_until_exports_each_devices_latest_message_before_that_moment(database):
    oms_repo.store_message(a_message(identnr=1, time="2021-10-12T00:00:00", energy=3))
    oms_repo.store_message(a_message(identnr=1, time="2021-10-10T00:00:00", energy=1))
    oms_repo.store_message(a_message(identnr=2, time="2021-10-11T00:00:00", energy=7))

    until = datetime(2021, 10, 11, tzinfo=UTC)

    assert latest_energy(until=until) == [Decimal(1)]
    assert latest_energy(until=until + timedelta(microseconds=1)) == [Decimal(1), Decimal(7)]
    assert latest_energy(since=datetime(2021, 10, 10, 12, tzinfo=UTC), until=until) == []


def test_since_leaves_out_devices_without_a_message_since_then(database):
    oms_repo.store_message(a_message(identnr=1, time="2021-10-12T00:00:00", energy=3))
    oms_repo.store_message(a_message(identnr=2, time="2021-10-11T00:00:00", energy=7))

    assert latest_energy(since=datetime(2021, 10, 12, tzinfo=UTC)) == [Decimal(3)]


def test_a_window_around_every_message_exports_what_the_latest_pointers_export(database):
    times = ["2021-10-12T00:00:00", "2021-10-10T00:00:00", "2021-10-12T00:00:00", "2021-10-11T00:00:00"]
    for identnr in (1, 2):
        for energy, time in enumerate(times):
            oms_repo.store_message(a_message(identnr=identnr, time=time, energy=energy))
    everything = {"since": datetime(2000, 1, 1, tzinfo=UTC), "until": datetime(2100, 1, 1, tzinfo=UTC)}

    assert exported(**everything) == exported()
    assert latest_energy() == [Decimal(0), Decimal(0)]


def test_devices_lists_a_page_in_device_order_with_the_total(database):
    oms_repo.store_message(a_message(identnr=3, time="2021-10-12T00:00:00"))
    oms_repo.store_message(a_message(identnr=1, time="2021-10-10T00:00:00"))
    oms_repo.store_message(a_message(identnr=2, time="2021-10-11T00:00:00"))

    page, total = oms_repo.devices(limit=2, offset=1)

    assert total == 3
    assert page == [
        oms_repo.DeviceSummary(2, 5317, 0, 4, datetime(2021, 10, 11, tzinfo=UTC)),
        oms_repo.DeviceSummary(3, 5317, 0, 4, datetime(2021, 10, 12, tzinfo=UTC)),
    ]


def in_threads(count: int, work) -> list[BaseException]:
    errors = []

    def run(index):
        try:
            with db.database.connection_context():
                work(index)
        except BaseException as error:  # noqa: BLE001 - reported to the test
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_concurrent_posts_of_one_device_keep_the_newest_message(database):
    days = [5, 9, 1, 7, 3, 8, 2, 6]

    errors = in_threads(len(days), lambda i: oms_repo.store_message(a_message(time=f"2021-10-0{days[i]}", energy=i)))

    assert errors == []
    assert latest_energy() == [Decimal(days.index(9))]
    assert oms_repo.counts()["messages"] == len(days)


def test_concurrent_posts_of_the_same_new_message_store_it_once(database):
    errors = in_threads(8, lambda _: oms_repo.store_message(a_message()))

    assert errors == []
    assert oms_repo.counts() == {"devices": 1, "messages": 1, "records": 4}
