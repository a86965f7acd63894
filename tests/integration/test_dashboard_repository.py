"""The repository queries behind the dashboard pages, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

from domain.oms import OmsDevice, OmsMessage, OmsRecord
from domain.usage import Reading
from repository import oms as oms_repo
from repository import readings as readings_repo


def test_power_buckets_average_each_bucket_and_leave_empty_ones_out(database):
    readings_repo.store("m", [Reading(0, 1.0), Reading(60, 3.0), Reading(600, 5.0), Reading(3000, 7.0)], 3600)
    assert readings_repo.power_buckets("m", 0, 3600, 600) == [
        (0, 2.0, 1.0, 3.0),
        (600, 5.0, 5.0, 5.0),
        (3000, 7.0, 7.0, 7.0),
    ]


def test_power_buckets_count_from_the_window_start_and_keep_inside_it(database):
    readings_repo.store("m", [Reading(t, float(t)) for t in range(0, 1200, 60)], 3600)
    assert [row[0] for row in readings_repo.power_buckets("m", 300, 900, 300)] == [300, 600, 900]
    assert readings_repo.power_buckets("unknown", 0, 10, 1) == []


def test_hourly_kwh_between_answers_the_rollups_of_the_hours_in_the_window(database):
    readings_repo.store("m", [Reading(0, 1.0), Reading(3600, 1.0), Reading(7200, 1.0)], 3600)
    hours = readings_repo.hourly_kwh_between("m", 3600, 7200)
    assert list(hours) == [3600]
    assert hours[3600].kwh == 1.0


def _message(identnr: int, manufacturer: int, day: int, energy: int) -> OmsMessage:
    moment = datetime(2026, 11, day, tzinfo=UTC)
    records = (
        OmsRecord("Time Point (time & date)", moment, storagenr=0, tariff=0, subunit=0),
        OmsRecord("Energy (kWh)", energy, storagenr=0, tariff=0, subunit=0),
    )
    return OmsMessage(OmsDevice(identnr, manufacturer, 4, 0, 0, 1), records, moment)


def test_devices_with_latest_search_by_id_prefix_and_manufacturer_and_page(database):
    for message in [_message(83251076, 5317, 30, 2), _message(83251076, 5317, 29, 1), _message(12345, 5317, 30, 3),
                    _message(83259999, 0x4024, 30, 4)]:  # fmt: skip
        oms_repo.store_message(message)
    messages, total = oms_repo.devices_with_latest(identnr_prefix="8325")
    assert total == 2
    assert [(m.device.identnr, m.records[1].value) for m in messages] == [(83251076, 2), (83259999, 4)]
    assert oms_repo.devices_with_latest(identnr_prefix="8325", manufacturer=5317)[1] == 1
    page, total = oms_repo.devices_with_latest(limit=1, offset=1)
    assert (total, [m.device.identnr for m in page]) == (3, [83251076])


def test_the_dsmr_day_span_is_none_before_any_statistic(database):
    from repository import dsmr as dsmr_repo

    assert dsmr_repo.statistics_days_span("nothing") is None
    assert dsmr_repo.day_statistics_between("nothing", date(2026, 1, 1), date(2026, 12, 31)) == []
