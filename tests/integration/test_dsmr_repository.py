"""The DSMR repository on a real database (SQLite always, PostgreSQL when configured): readings stored once,
statistics kept equal to a recomputation from every reading whatever the arrival order, paging by key."""

import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from zoneinfo import ZoneInfo

import peewee
import pytest

from domain.dsmr import DsmrReading, Installation, PageRequest, TelegramFacts, TimeWindow, day_from_hours
from domain.errors import Conflict, InvalidInput, NotFound
from domain.statistics import EnergyPrices, day_statistics, hour_statistics
from repository import db
from repository import dsmr as repo
from repository import readings as readings_repo
from repository.migrations.dsmr import count_readings

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
D = Decimal
# 31 March 2024 springs forward (a 23-hour day), 27 October 2024 falls back (25 hours).
SPRING = datetime(2024, 3, 30, 20, 0, tzinfo=UTC)


def reading(meter: str, moment: datetime, index: int, *, gas: bool = True) -> DsmrReading:
    """Registers that rise unevenly with `index`, and a v4-style hourly gas capture."""
    return DsmrReading(
        meter=meter,
        timestamp=moment,
        electricity_delivered_1=D("1000.000") + D(index * 37 % 11) / 100 + D(index) / 10,
        electricity_returned_1=D("0.000"),
        electricity_delivered_2=D("2000.000") + D(index) * D("0.125"),
        electricity_returned_2=D("10.000") + D(index // 3) * D("0.010"),
        electricity_currently_delivered=D("0.500"),
        electricity_currently_returned=D("0.000"),
        extra_device_timestamp=moment.replace(minute=0, second=0) if gas else None,
        extra_device_delivered=D("500.000") + D(int(moment.timestamp()) // 3600 % 1000) / 100 if gas else None,
    )


def at(meter: str) -> Installation:
    return Installation(name=meter, meter=meter)


def store(item: DsmrReading, tz=AMSTERDAM, *args, **kwargs):
    """Store the reading for the installation its meter names."""
    return repo.store_reading(at(item.meter), item, tz, *args, **kwargs)


def series(meter: str, start: datetime, count: int, every: timedelta) -> list[DsmrReading]:
    return [reading(meter, start + index * every, index) for index in range(count)]


def stored_hours(meter: str) -> dict:
    count, items = repo.hour_statistics_page(meter, TimeWindow(), PageRequest(limit=1000))
    assert count == len(items)
    return {item.value.hour_start: item.value for item in items}


def stored_days(meter: str) -> dict:
    count, items = repo.day_statistics_page(meter, None, None, PageRequest(limit=1000))
    return {item.value.day: item.value for item in items}


PRICES = EnergyPrices(
    start=date(2024, 1, 1),
    end=None,
    description="test",
    electricity_delivered_1_price=D("0.2"),
    electricity_delivered_2_price=D("0.3"),
    electricity_returned_2_price=D("0.1"),
    gas_price=D("0.9"),
    fixed_daily_cost=D("0.25"),
)


def test_statistics_equal_a_recomputation_from_every_reading_whatever_the_arrival_order(database):
    readings = series("m1", SPRING, 90, timedelta(minutes=25))  # 37.5 hours across the 23-hour day
    repo.add_energy_prices(at("m1"), PRICES, AMSTERDAM)
    shuffled = readings[:]
    random.Random(7).shuffle(shuffled)
    for item in shuffled:
        store(item, AMSTERDAM)

    positions = [item.position for item in readings]
    days = sorted({item.timestamp.astimezone(AMSTERDAM).date() for item in readings})
    expected_hours = {stat.hour_start: stat for stat in hour_statistics(positions, AMSTERDAM, days=days)}
    expected_days = {stat.day: stat for stat in day_statistics(positions, AMSTERDAM, [PRICES], days=days)}
    assert stored_hours("m1") == expected_hours
    assert stored_days("m1") == expected_days
    assert date(2024, 3, 31) in expected_days
    assert len([hour for hour in expected_hours if hour.astimezone(AMSTERDAM).date() == date(2024, 3, 31)]) == 23


def test_a_reading_repeated_for_the_same_meter_and_instant_is_stored_once(database):
    first = reading("m1", SPRING, 1)
    assert store(first, AMSTERDAM).created
    again = store(first, AMSTERDAM)
    assert not again.created and again.reading.value.same_values(first)
    assert repo.ReadingRow.select().count() == 1
    other_meter = store(reading("m2", SPRING, 1), AMSTERDAM)
    assert other_meter.created and repo.ReadingRow.select().count() == 2


def test_adding_a_contract_reprices_the_days_it_covers_only(database):
    for item in series("m1", datetime(2024, 5, 1, 12, tzinfo=UTC), 60, timedelta(hours=1)):
        store(item, AMSTERDAM)
    assert all(stat.total_cost == 0 for stat in stored_days("m1").values())
    may_2 = EnergyPrices(start=date(2024, 5, 2), end=date(2024, 5, 2), description="one day", gas_price=D("1"))
    repo.add_energy_prices(at("m1"), may_2, AMSTERDAM)
    days = stored_days("m1")
    assert days[date(2024, 5, 2)].gas_cost == days[date(2024, 5, 2)].gas.quantize(D("0.01"))
    assert days[date(2024, 5, 2)].gas_cost > 0
    assert days[date(2024, 5, 1)].total_cost == days[date(2024, 5, 3)].total_cost == 0
    hours_of_may_2 = [stat for hour, stat in stored_hours("m1").items() if hour.astimezone(AMSTERDAM).day == 2]
    assert stored_days("m1")[date(2024, 5, 2)] == day_from_hours(date(2024, 5, 2), hours_of_may_2, AMSTERDAM, [may_2])


def test_a_dsmr_meters_hourly_delivered_energy_feeds_the_price_plan_rollups(database):
    readings = series("E001", datetime(2024, 5, 1, 12, tzinfo=UTC), 5, timedelta(hours=1))
    for item in readings:
        store(item, AMSTERDAM)
    rollups = {
        row.hour_start: row.kwh
        for row in readings_repo.EnergyHour.select().where(readings_repo.EnergyHour.meter_id == "E001")
    }
    hours = stored_hours("E001")
    assert rollups == pytest.approx(
        {int(hour.timestamp()): float(stat.electricity1 + stat.electricity2) for hour, stat in hours.items()}
    )
    first = int(readings[0].timestamp.timestamp())
    assert readings_repo.period("E001") == (first, first + 4 * 3600)


def test_hourly_energy_of_a_group_follows_the_equipment_id_a_telegram_in_it_claimed(database):
    repo.set_key("inst", "sha256$inst", replace=False)
    installation = repo.installation_named("inst")  # it knows no equipment id yet
    first, second, third = series(installation.meter, datetime(2024, 5, 1, 12, tzinfo=UTC), 3, timedelta(hours=1))
    repo.store_reading(installation, first, AMSTERDAM)

    def one_group():  # nested grouped writes share the outer one's flush, as a group commit's writes do
        repo.store_reading(installation, second, AMSTERDAM)
        repo.store_reading(installation, third, AMSTERDAM, telegram_meter="E0099")

    db.grouped_write(one_group)
    kept = readings_repo.EnergyHour.select(readings_repo.EnergyHour.meter_id).distinct()
    assert {row.meter_id for row in kept} == {"E0099"}


def test_rebuilding_the_kw_rollups_keeps_the_dsmr_meters_hours(database):
    for item in series("E001", datetime(2024, 5, 1, 12, tzinfo=UTC), 3, timedelta(hours=1)):
        store(item, AMSTERDAM)
    before = readings_repo.EnergyHour.select().count()
    readings_repo.rebuild_rollups(3600)
    assert readings_repo.EnergyHour.select().count() == before == 2


def test_a_failure_while_refreshing_statistics_stores_nothing(database, monkeypatch):
    def explode(*args, **kwargs):
        raise peewee.OperationalError("disk full")

    store(reading("m1", SPRING, 1), AMSTERDAM)
    monkeypatch.setattr(repo, "day_totals", explode)
    with pytest.raises(peewee.OperationalError):
        store(reading("m1", SPRING + timedelta(minutes=10), 2), AMSTERDAM)
    assert repo.ReadingRow.select().count() == 1
    assert repo.HourRow.select().count() == 0
    assert repo.MeterRow.get().reading_count == 1


def page_through(meter, page_size, descending=False, *, by_cursor):
    """Every row, page by page, following cursors (as the `next` links do) or offsets."""
    seen, page = [], PageRequest(limit=page_size, descending=descending)
    while True:
        count, items = repo.readings_page(meter, TimeWindow(), page)
        if not items:
            return count, seen
        seen += [item.id for item in items]
        if by_cursor:
            page = PageRequest(limit=page_size, descending=descending, after=repo.reading_key(items[-1]))
        else:
            page = PageRequest(offset=page.offset + page_size, limit=page_size, descending=descending)


@pytest.mark.parametrize("meter", ["m1", "m2"])
@pytest.mark.parametrize("descending", [False, True])
def test_cursor_pages_hold_the_same_rows_as_offset_pages(database, meter, descending):
    for name in ("m1", "m2"):
        for item in series(name, SPRING, 23, timedelta(minutes=7)):
            store(item, AMSTERDAM)
    count, by_offset = page_through(meter, 5, descending, by_cursor=False)
    assert page_through(meter, 5, descending, by_cursor=True) == (count, by_offset)
    assert count == len(by_offset) == 23
    assert len(set(by_offset)) == len(by_offset)


def test_a_page_before_a_cursor_is_the_previous_page_in_order(database):
    for item in series("m1", SPRING, 30, timedelta(minutes=5)):
        store(item, AMSTERDAM)
    _, third = repo.readings_page("m1", TimeWindow(), PageRequest(offset=20, limit=10))
    _, second = repo.readings_page("m1", TimeWindow(), PageRequest(offset=10, limit=10))
    _, before_third = repo.readings_page("m1", TimeWindow(), PageRequest(limit=10, before=repo.reading_key(third[0])))
    assert [item.id for item in before_third] == [item.id for item in second]


def query_plan(sql: str, params) -> str:
    if db.is_sqlite():
        return " ".join(str(row) for row in db.database.execute_sql(f"EXPLAIN QUERY PLAN {sql}", params).fetchall())
    # A tiny table would be scanned and sorted anyway; forbid both to see what the indexes offer.
    db.database.execute_sql("SET enable_seqscan = off; SET enable_sort = off; SET enable_bitmapscan = off")
    return " ".join(row[0] for row in db.database.execute_sql(f"EXPLAIN {sql}", params).fetchall())


def test_a_cursor_page_is_an_index_seek_not_a_scan(database):
    for item in series("m1", SPRING, 10, timedelta(minutes=5)):
        store(item, AMSTERDAM)
    query = repo.ReadingRow.select().where(repo.ReadingRow.meter == "m1")
    key = [repo.ReadingRow.timestamp]
    sql, params = repo.page_query(query, key, PageRequest(limit=25, after=(1711828800,)))[0].sql()
    plan = query_plan(sql, params)
    assert "meter_timestamp" in plan, plan
    assert "SCAN dsmr_readings " not in plan + " " and "Seq Scan" not in plan, plan


def test_meter_statistics_describe_the_newest_telegram_and_count_every_one(database):
    def facts(moment, version):
        return TelegramFacts(moment, version, 2, {"power_failure_count": 4}, f"/telegram {version}")

    newer, older = reading("E1", SPRING + timedelta(hours=1), 2), reading("E1", SPRING, 1)
    store(newer, AMSTERDAM, facts(newer.timestamp, "50"))
    store(older, AMSTERDAM, facts(older.timestamp, "42"))  # late: counted, not described
    store(older, AMSTERDAM, facts(older.timestamp, "42"))  # duplicate
    repo.count_rejected_telegram(at("E1"))
    statistics = repo.meter_statistics("E1")
    assert (statistics.meter, statistics.dsmr_version, statistics.timestamp) == ("E1", "50", newer.timestamp)
    assert statistics.counters["power_failure_count"] == 4
    assert (statistics.accepted_telegrams, statistics.duplicate_telegrams, statistics.rejected_telegrams) == (2, 1, 1)
    assert statistics.latest_telegram == "/telegram 50"
    assert repo.meter_statistics("nobody").id is None


def test_a_key_belongs_to_one_installation_and_is_kept_unless_replaced(database):
    home, created = repo.set_key("home", "sha256$aa", replace=False)
    assert created and home == Installation("home", "home")
    with pytest.raises(Conflict, match="has a key already"):
        repo.set_key("home", "sha256$bb", replace=False)
    assert repo.installation_by_key_hash("sha256$aa") == home
    repo.set_key("home", "sha256$bb", replace=True)
    assert repo.installation_by_key_hash("sha256$aa") is None
    assert repo.installation_by_key_hash("sha256$bb") == home
    repo.set_key("cabin", "sha256$cc", replace=False)
    assert [summary.installation.name for summary in repo.installations()] == ["cabin", "home"]
    repo.revoke_key("home")
    assert repo.installation_by_key_hash("sha256$bb") is None
    assert repo.installation_named("home") == home  # the data stays


def test_today_kept_at_ingest_equals_today_computed_from_every_reading(database):
    from domain.statistics import consumption_today

    day = date(2024, 3, 31)
    readings = series("m1", datetime(2024, 3, 30, 23, 10, tzinfo=UTC), 50, timedelta(minutes=13))
    repo.add_energy_prices(at("m1"), PRICES, AMSTERDAM)
    for item in readings:
        store(item, AMSTERDAM)
    every = [item.position for item in readings]
    assert repo.today("m1", day, AMSTERDAM) == consumption_today(every, AMSTERDAM, [PRICES], day)


def touched_hours(monkeypatch) -> list[int]:
    """How many hours each store changes (what the ingest work grows with)."""
    touched = []
    original = repo._apply
    monkeypatch.setattr(
        repo, "_apply", lambda owner, changes, tz: touched.append(len(changes.hours)) or original(owner, changes, tz)
    )
    return touched


def test_a_gas_meter_that_stops_reporting_does_not_widen_the_hours_refreshed(database, monkeypatch):
    start = datetime(2024, 5, 1, 0, 0, tzinfo=UTC)
    stale = [
        replace(reading("m1", start + index * timedelta(minutes=30), index), extra_device_timestamp=start)
        for index in range(96)  # two days, every telegram repeating the capture of the first
    ]
    touched = touched_hours(monkeypatch)
    for item in stale:
        store(item, AMSTERDAM)
    assert max(touched[1:]) == 1
    positions = [item.position for item in stale]
    assert stored_hours("m1") == {stat.hour_start: stat for stat in hour_statistics(positions, AMSTERDAM)}


def test_a_telegram_every_ten_seconds_changes_only_the_hours_it_touches_and_matches_a_recomputation(
    database, monkeypatch
):
    start = datetime(2024, 5, 1, 21, 50, tzinfo=UTC)
    telegrams = [
        replace(
            reading("m1", start + index * timedelta(seconds=10), index),
            extra_device_timestamp=None,
            extra_device_delivered=None,
        )
        for index in range(480)  # across local midnight
    ]
    touched = touched_hours(monkeypatch)
    for item in telegrams:
        store(item, AMSTERDAM)
    assert max(touched) <= 2  # an interval across an hour edge; never the day
    expected = repo.expected_statistics("m1", AMSTERDAM, 3600)
    assert repo.stored_statistics("m1") == expected
    assert len(expected.days) == 2


def test_a_load_with_outages_resets_and_late_telegrams_equals_a_full_recomputation(database):
    rng = random.Random(11)
    moment, registers, gas = datetime(2024, 10, 26, 20, tzinfo=UTC), [D(1000)] * 4, D(50)
    readings = []
    for _ in range(400):
        moment += timedelta(seconds=rng.choice([10, 60, 300, 900, 3600, 3601, 20000]))
        registers = [value + D(rng.randrange(0, 500)) / 1000 for value in registers]
        if rng.random() < 0.02:
            registers[rng.randrange(4)] = D(1)
        if rng.random() < 0.3:
            gas += D(rng.randrange(0, 100)) / 1000
        readings.append(
            DsmrReading(
                meter="m1",
                timestamp=moment,
                electricity_delivered_1=registers[0],
                electricity_returned_1=registers[2],
                electricity_delivered_2=registers[1],
                electricity_returned_2=registers[3],
                electricity_currently_delivered=D(1),
                electricity_currently_returned=D(0),
                extra_device_timestamp=moment.replace(second=0) - timedelta(minutes=moment.minute % 5),
                extra_device_delivered=gas,
            )
        )
    late = readings[:]
    rng.shuffle(late)
    repo.add_energy_prices(at("m1"), PRICES, AMSTERDAM)
    for item in readings[:200] + late:  # in order, then everything again and the rest late
        store(item, AMSTERDAM)
    expected = repo.expected_statistics("m1", AMSTERDAM, 3600)
    assert repo.stored_statistics("m1") == expected
    assert expected.gaps and repo.ReadingRow.select().where(repo.ReadingRow.reset == True).exists()  # noqa: E712


def test_concurrent_writers_keep_the_statistics_equal_to_a_recomputation(database, config):
    readings = series("m1", SPRING, 60, timedelta(minutes=10)) + series("m2", SPRING, 60, timedelta(minutes=10))
    random.Random(3).shuffle(readings)

    def store_share(share):
        db.connect()
        try:
            for item in share:
                store(item, AMSTERDAM)
        finally:
            db.close()

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(store_share, [readings[index::6] for index in range(6)]))

    for meter in ("m1", "m2"):
        positions = [item.position for item in readings if item.meter == meter]
        days = sorted({item.timestamp.astimezone(AMSTERDAM).date() for item in readings})
        expected = {stat.hour_start: stat for stat in hour_statistics(positions, AMSTERDAM, days=days)}
        assert stored_hours(meter) == expected
        assert repo.stored_statistics(meter) == repo.expected_statistics(meter, AMSTERDAM, 3600)


def test_telegrams_that_share_a_group_commit_count_and_book_as_if_stored_one_by_one(database):
    """Outages (gaps opened and closed by later telegrams), repeats and late telegrams from 8 threads at
    once: on SQLite they share group commits, whose statistics and counters are applied together."""
    moments = [SPRING + timedelta(minutes=10 * index) for index in range(40)]
    moments += [moments[-1] + timedelta(hours=5) + timedelta(minutes=10 * index) for index in range(40)]
    readings = [reading("E1", moment, index) for index, moment in enumerate(moments)]
    sent = readings + readings[::7]  # every seventh again: duplicates
    random.Random(5).shuffle(sent)

    def facts(item):
        return TelegramFacts(item.timestamp, "50", 2, {"power_failure_count": 1}, f"/telegram {item.timestamp}")

    def store_share(share):
        db.connect()
        try:
            for item in share:
                store(item, AMSTERDAM, facts(item))
        finally:
            db.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(store_share, [sent[index::8] for index in range(8)]))

    expected = repo.expected_statistics("E1", AMSTERDAM, 3600)
    assert repo.stored_statistics("E1") == expected
    assert expected.gaps
    statistics = repo.meter_statistics("E1")
    assert (statistics.accepted_telegrams, statistics.duplicate_telegrams) == (len(readings), len(readings[::7]))
    assert statistics.timestamp == moments[-1]
    assert statistics.latest_telegram == f"/telegram {moments[-1]}"
    assert repo.ReadingRow.select().count() == len(readings)


def test_a_failing_flush_of_a_group_stores_none_of_its_readings(database, monkeypatch):
    def broken(*_args):
        raise peewee.OperationalError("disk I/O error")

    monkeypatch.setattr(repo, "_apply", broken)
    with pytest.raises(peewee.OperationalError):
        store(reading("E1", SPRING, 1))
    monkeypatch.undo()
    assert repo.ReadingRow.select().count() == 0
    store(reading("E1", SPRING, 1))  # nothing of the failed write is left to be flushed with the next
    assert repo.stored_statistics("E1") == repo.expected_statistics("E1", AMSTERDAM, 3600)
    assert repo.meter_statistics("E1").accepted_telegrams == 0


def test_unfiltered_lists_count_from_the_kept_reading_counts_which_match_the_rows(database):
    for item in series("m1", SPRING, 7, timedelta(minutes=10)) + series("m2", SPRING, 4, timedelta(minutes=10)):
        store(item, AMSTERDAM)
    store(reading("m1", SPRING, 0), AMSTERDAM)  # a duplicate is not counted
    assert [repo.readings_page(meter, TimeWindow(), PageRequest())[0] for meter in ("m1", "m2")] == [7, 4]
    repo.MeterRow.update(reading_count=0).execute()
    count_readings(db.database)  # what the migration runs on a database that has readings
    assert repo.readings_page("m1", TimeWindow(), PageRequest())[0] == 7
    windowed = TimeWindow(start=SPRING + timedelta(minutes=15), end=None)
    assert repo.readings_page("m1", windowed, PageRequest())[0] == 5


def with_resets(readings: list[DsmrReading], every: int) -> list[DsmrReading]:
    """Every `every`-th reading and those after it count from a lower position (a meter swap)."""
    changed = []
    drop = D(0)
    for index, item in enumerate(readings):
        if index and index % every == 0:
            drop += D("600.000")
        changed.append(replace(item, electricity_delivered_1=item.electricity_delivered_1 + 5000 - drop))
    return changed


def test_resets_book_nothing_for_their_interval_and_match_a_recomputation_in_any_arrival_order(database):
    readings = with_resets(series("m1", SPRING, 90, timedelta(minutes=25)), every=17)
    shuffled = readings[:]
    random.Random(11).shuffle(shuffled)
    for item in shuffled:
        store(item, AMSTERDAM)
    positions = [item.position for item in readings]
    days = sorted({item.timestamp.astimezone(AMSTERDAM).date() for item in readings})
    assert stored_hours("m1") == {stat.hour_start: stat for stat in hour_statistics(positions, AMSTERDAM, days=days)}
    # Each hour books only the rises of its intervals: never a negative, never the drop of a reset.
    increments = [b.electricity_delivered_1 - a.electricity_delivered_1 for a, b in pairwise(readings)]
    assert sum(stat.electricity1 for stat in stored_hours("m1").values()) == sum(d for d in increments if d >= 0)
    statistics = repo.meter_statistics("m1")
    assert statistics.resets == 5 and statistics.latest_reset == readings[85].timestamp


def test_deleting_readings_in_a_window_recomputes_what_they_decided(database):
    readings = with_resets(series("m1", SPRING, 90, timedelta(minutes=25)), every=40)
    for item in readings:
        store(item, AMSTERDAM)
    repo.add_energy_prices(at("m1"), PRICES, AMSTERDAM)
    repo.InstallationRow.insert(name="m1", meter="m1", created_at=0).execute()
    window = TimeWindow(readings[30].timestamp, readings[45].timestamp)
    assert repo.delete_readings("m1", window, AMSTERDAM) == 16
    kept = readings[:30] + readings[46:]
    positions = [item.position for item in kept]
    days = sorted({item.timestamp.astimezone(AMSTERDAM).date() for item in readings})
    assert stored_hours("m1") == {stat.hour_start: stat for stat in hour_statistics(positions, AMSTERDAM, days=days)}
    assert stored_days("m1") == {stat.day: stat for stat in day_statistics(positions, AMSTERDAM, [PRICES], days=days)}
    # The reset at reading 40 went with its window; reading 46 now follows reading 29, from above it: a reset.
    assert repo.meter_statistics("m1").resets == 2
    rollups = {
        row.hour_start: row.kwh
        for row in readings_repo.EnergyHour.select().where(readings_repo.EnergyHour.meter_id == "m1")
    }
    assert rollups == pytest.approx(
        {
            int(hour.timestamp()): float(stat.electricity1 + stat.electricity2)
            for hour, stat in stored_hours("m1").items()
        }
    )
    assert repo.readings_page("m1", TimeWindow(), PageRequest())[0] == 74


def test_deleting_an_installation_removes_everything_it_owned(database):
    repo.set_key("home", "sha256$home", replace=False)
    home = repo.installation_named("home")
    for item in series("home", SPRING, 10, timedelta(minutes=30)):
        repo.store_reading(home, item, AMSTERDAM)
    repo.add_energy_prices(home, PRICES, AMSTERDAM)
    assert repo.delete_installation("home") == 10
    for model in (repo.ReadingRow, repo.HourRow, repo.DayRow, repo.PriceRow, repo.MeterRow, repo.InstallationRow):
        assert model.select().count() == 0
    assert readings_repo.EnergyHour.select().count() == 0
    with pytest.raises(NotFound, match="no installation is named 'home'"):
        repo.delete_installation("home")


def test_an_overlapping_contract_is_refused_naming_the_one_it_overlaps(database):
    first = repo.add_energy_prices(at("m1"), PRICES, AMSTERDAM)  # 2024-01-01, open-ended
    later = EnergyPrices(start=date(2025, 1, 1), end=None, description="later")
    with pytest.raises(Conflict, match=f"overlaps contract {first.id} 'test' \\(2024-01-01 to open-ended\\)"):
        repo.add_energy_prices(at("m1"), later, AMSTERDAM)
    before = EnergyPrices(start=date(2023, 1, 1), end=date(2023, 12, 31), description="2023")
    assert repo.add_energy_prices(at("m1"), before, AMSTERDAM).id != first.id
    assert repo.add_energy_prices(at("m2"), later, AMSTERDAM)  # another installation's contracts are its own
    assert len(repo.energy_prices("m1")) == 2


def test_the_meter_a_telegram_names_is_checked_again_inside_the_store(database):
    """Two loggers behind one new key: the check before the store saw no meter yet; the store sees the first."""
    repo.set_key("home", "sha256$home", replace=False)
    stale = repo.installation_named("home")  # what a second request read before the first one committed
    store_first = reading("home", SPRING, 1)
    repo.store_reading(stale, store_first, AMSTERDAM, telegram_meter="E1")
    with pytest.raises(InvalidInput, match="from meter E2"):
        repo.store_reading(stale, reading("home", SPRING + timedelta(minutes=5), 2), AMSTERDAM, telegram_meter="E2")
    assert repo.ReadingRow.select().count() == 1


def run_as_one_group(*writes) -> list:
    """The writes as one SQLite group commit (each in its savepoint, one COMMIT): what each raised, or None."""
    batch = [db._GroupedWrite(write) for write in writes]
    if db._group.execute_items(batch):
        db._group.sync_items(batch)
    return [item.error for item in batch]


def test_a_claim_that_a_group_rolls_back_leaves_the_meter_to_the_next_telegram_of_the_group(database):
    """The first telegram of the group names E1, then is refused (another reading at its instant): its claim
    is rolled back with it, so the next telegram of the same transaction may name E2."""
    if not db.is_sqlite():
        pytest.skip("group commits are SQLite's")
    repo.set_key("home", "sha256$home", replace=False)
    home = repo.installation_named("home")
    repo.store_reading(home, reading("home", SPRING, 1), AMSTERDAM)  # posted through v2: no meter named yet

    def telegram(moment, index, meter):
        return lambda: repo.store_reading(home, reading("home", moment, index), AMSTERDAM, telegram_meter=meter)

    later = SPRING + timedelta(minutes=5)
    errors = run_as_one_group(telegram(SPRING, 2, "E1"), telegram(later, 3, "E2"), telegram(later, 3, "E2"))
    assert [type(error) for error in errors] == [Conflict, type(None), type(None)]  # the third: a duplicate
    assert repo.installation_named("home").equipment_id == "E2"
    errors = run_as_one_group(*(telegram(SPRING + timedelta(minutes=n), n, "E1") for n in (10, 15)))
    assert [type(error) for error in errors] == [InvalidInput, InvalidInput]  # E2's installation, read once
    assert repo.ReadingRow.select().count() == 2


def test_the_latest_telegram_carrying_a_gas_capture_is_an_index_seek_whatever_the_history(database):
    for item in series("m1", SPRING, 10, timedelta(minutes=5)):
        store(item, AMSTERDAM)
    plan = query_plan(repo.carrier_sql(), ("m1", 1711828800, 1))
    assert "extra_device_timestamp_timestamp" in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan
