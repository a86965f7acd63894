"""The readings repository on a real database (SQLite always, PostgreSQL when configured)."""

import peewee
import pytest

from domain.usage import HourRollup, Reading, energy_by_hour, usage
from repository import readings as readings_repo

GAP = 3600


def store_failing_after_its_writes(meter_id, readings, monkeypatch):
    """store() whose transaction fails after every write was made, before it commits; on PostgreSQL, where a
    new meter's store is one statement, that statement's last insert fails (an hour without its kWh)."""
    original_write, original_hours = readings_repo.grouped_write, readings_repo._hour_arrays

    def explode_before_commit(fn):
        def writes_then_fails():
            fn()
            raise peewee.OperationalError("disk full")

        return original_write(writes_then_fails)

    def one_hour_without_kwh(energy):
        hours, *columns = original_hours(energy)
        return [hours[:-1] + ",0}" if hours != "{}" else "{0}", *columns]

    with monkeypatch.context() as patch:
        patch.setattr(readings_repo, "grouped_write", explode_before_commit)
        patch.setattr(readings_repo, "_hour_arrays", one_hour_without_kwh)
        with pytest.raises(peewee.DatabaseError):
            readings_repo.store(meter_id, readings, GAP)


def test_store_is_atomic_a_failing_batch_leaves_nothing(database, monkeypatch):
    store_failing_after_its_writes("m", [Reading(t, 1.0) for t in range(0, 1000, 10)], monkeypatch)
    assert readings_repo.period("m") is None
    assert readings_repo.EnergyHour.select().count() == 0


def test_a_failing_store_to_a_known_meter_leaves_what_it_had_and_the_next_store_works(database, monkeypatch):
    readings_repo.store("m", [Reading(t, 1.0) for t in range(0, 3600, 60)], GAP)
    rollups = readings_repo.hourly_energy("m", readings_repo.JOI)
    store_failing_after_its_writes("m", [Reading(t, 9.0) for t in range(0, 7200, 30)], monkeypatch)
    assert readings_repo.samples_between("m") == [Reading(t, 1.0) for t in range(0, 3600, 60)]
    assert readings_repo.hourly_energy("m", readings_repo.JOI) == rollups
    readings_repo.store("m", [Reading(3600, 1.0)], GAP)
    assert readings_repo.rollup_differences("m", GAP) == []


def test_rollups_equal_the_energy_of_the_raw_samples_after_out_of_order_writes(database):
    samples = [Reading(t, 1 + (t // 60) % 5) for t in range(0, 6 * 3600, 60)]
    readings_repo.store("m", samples[::2], GAP)
    readings_repo.store("m", samples[1::2][::-1], GAP)
    readings_repo.store("m", [Reading(7 * 3600, 3.0)], GAP)  # closes the last hour
    stored = readings_repo.samples_between("m")
    expected = energy_by_hour(stored, GAP, 0, 8 * 3600)
    rollups = {row.hour_start: row.kwh for row in readings_repo.EnergyHour.select()}
    assert rollups.keys() == expected.keys()
    for hour, kwh in expected.items():
        assert rollups[hour] == pytest.approx(kwh)
    assert sum(rollups.values()) == pytest.approx(usage(stored, GAP).kwh)


def test_weekday_energy_matches_the_raw_integral_for_any_window(database):
    samples = [Reading(t, 1.0 + (t % 7)) for t in range(0, 3 * 86_400, 300)]
    readings_repo.store("m", samples, GAP)
    for start, end in [(0, 3 * 86_400), (1234, 200_000), (5000, 5100), (86_000, 90_000)]:
        energy = readings_repo.weekday_energy("m", ["UTC", "Asia/Tokyo"], start, end, GAP)
        expected = sum(energy_by_hour(samples, GAP, start, end).values())
        assert sum(energy["UTC"].values()) == pytest.approx(expected)
        assert sum(energy["Asia/Tokyo"].values()) == pytest.approx(expected)


def test_weekday_energy_books_hours_to_the_local_weekday(database):
    # 1970-01-04 was a Sunday. 23:00-24:00 UTC that Sunday is Monday 08:00 in Tokyo.
    sunday_23h = 3 * 86_400 + 23 * 3600
    readings_repo.store("m", [Reading(sunday_23h, 1.0), Reading(sunday_23h + 3600, 1.0)], GAP)
    energy = readings_repo.weekday_energy("m", ["UTC", "Asia/Tokyo"], sunday_23h, sunday_23h + 3600, GAP)
    assert energy["UTC"] == {6: pytest.approx(1.0)}
    assert energy["Asia/Tokyo"] == {0: pytest.approx(1.0)}


def test_rebuilding_rollups_with_another_gap_rule_changes_the_energy(database):
    readings_repo.store("m", [Reading(0, 1.0), Reading(7200, 1.0)], GAP)
    assert readings_repo.EnergyHour.select().count() == 0
    readings_repo.rebuild_rollups(7200)
    assert readings_repo.rollups_match(7200)
    assert sum(row.kwh for row in readings_repo.EnergyHour.select()) == pytest.approx(2.0)


def test_a_batch_larger_than_one_insert_chunk_is_stored_whole(database):
    readings_repo.store("m", [Reading(t, 0.5) for t in range(0, 2500 * 60, 60)], GAP)
    assert len(readings_repo.samples_between("m")) == 2500


def test_every_reading_reads_back_as_exactly_the_float_that_was_stored(database):
    import random

    rng = random.Random(16)
    edges = [0.0, 0.1, 1 / 3, 5e-324, 2.2250738585072014e-308, 1e-300, 1.5e-7, 1e16, 123456789.12345679, 1e300]
    values = edges + [rng.random() * 10 ** rng.randint(-12, 12) for _ in range(500)] + [3, 7]  # ints too
    # Two hours apart: no interval joins them, so no rollup has to hold a sum of extremes.
    readings_repo.store("exact", [Reading(index * 2 * GAP, value) for index, value in enumerate(values)], GAP)
    stored = [reading.reading for reading in readings_repo.samples_between("exact")]
    assert stored == values and all(type(value) is float for value in stored)


def test_concurrent_stores_for_one_meter_keep_every_sample_and_exact_rollups(database):
    from concurrent.futures import ThreadPoolExecutor

    from repository import db

    samples = [Reading(t, 1.0 + (t // 60) % 4) for t in range(0, 4 * 3600, 60)]
    batches = [samples[offset::8] for offset in range(8)]

    def store_batch(batch):
        db.connect()
        try:
            readings_repo.store("m", batch, GAP)
        finally:
            db.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(store_batch, batches))

    stored = readings_repo.samples_between("m")
    assert stored == samples
    rollups = {row.hour_start: row.kwh for row in readings_repo.EnergyHour.select()}
    expected = energy_by_hour(stored, GAP, 0, 5 * 3600)
    assert rollups.keys() == expected.keys()
    for hour, kwh in expected.items():
        assert rollups[hour] == pytest.approx(kwh)


def test_a_full_connection_pool_makes_a_caller_wait_then_counts_as_unavailable(database, monkeypatch):
    import threading

    from repository import db

    monkeypatch.setattr(database.obj, "_max_connections", 1)
    monkeypatch.setattr(database.obj, "_wait_timeout", 0.2)
    db.connect()  # this thread holds the only connection
    failure = []

    def borrow():
        try:
            db.connect()
        except db.UNAVAILABLE_ERRORS as error:
            failure.append(error)

    other = threading.Thread(target=borrow)
    other.start()
    other.join()
    assert failure and isinstance(failure[0], db.UNAVAILABLE_ERRORS)


def test_a_joi_meter_and_a_p1_meter_of_one_id_keep_their_rollups_apart(database):
    p1_hours = {hour: HourRollup(9.0, 1.0, 2.0, 3.0) for hour in (0, 3600, 100 * 3600)}
    readings_repo.replace_hourly_energy("shared-id", p1_hours)
    readings_repo.store("shared-id", [Reading(0, 1.0), Reading(3600, 1.0)], GAP)
    readings_repo.rebuild_rollups(GAP)
    assert readings_repo.hourly_energy("shared-id", readings_repo.P1) == p1_hours  # untouched by the kW store
    joi = readings_repo.hourly_energy("shared-id", readings_repo.JOI)
    assert joi == {0: pytest.approx(HourRollup(1.0, 0.25, 0.5, 0.75))}
    # Priced by its kW samples (an id that is both is a JOI meter to the plans).
    assert readings_repo.weekday_energy("shared-id", ["UTC"], 0, 3600, GAP) == {"UTC": {3: pytest.approx(1.0)}}


def test_a_meter_keeps_its_key_and_its_samples_across_stores(database):
    readings_repo.store("m", [Reading(0, 1.0)], GAP)
    readings_repo.store("other", [Reading(0, 5.0)], GAP)
    readings_repo.store("m", [Reading(60, 2.0)], GAP)
    assert readings_repo.samples_between("m") == [Reading(0, 1.0), Reading(60, 2.0)]
    assert readings_repo.samples_between("other") == [Reading(0, 5.0)]
    assert readings_repo.Meter.select().count() == 2


@pytest.mark.parametrize("seed", range(40))
def test_rollups_after_any_sequence_of_stores_equal_a_recomputation_from_every_sample(database, seed):
    import random

    rng = random.Random(seed)
    meter = f"random-{seed}"
    for _ in range(rng.randint(1, 8)):
        # Half the batches start on an hour boundary, and steps of whole hours keep them there.
        start = rng.randrange(0, 20) * 3600 if rng.random() < 0.5 else rng.randrange(0, 20 * 3600)
        steps = [rng.choice([1, 60, 600, 1800, 3599, 3600, 3601, 7200]) for _ in range(rng.randint(1, 40))]
        times = [start]
        for step in steps[1:]:
            times.append(times[-1] + step)
        batch = [Reading(t, round(rng.uniform(0, 9), 3)) for t in times]
        rng.shuffle(batch)
        readings_repo.store(meter, batch, GAP)

    stored = readings_repo.samples_between(meter)
    first, last = stored[0].time, stored[-1].time
    expected = energy_by_hour(stored, GAP, first - first % 3600, last - last % 3600 + 3600)
    rollups = {
        row.hour_start: row.kwh
        for row in readings_repo.EnergyHour.select().where(readings_repo.EnergyHour.meter_id == meter)
    }
    assert rollups.keys() == expected.keys()
    for hour, kwh in expected.items():
        assert rollups[hour] == pytest.approx(kwh, rel=1e-9, abs=1e-9)


def _random_batch(rng, start):
    times = [start]
    for _ in range(rng.randint(0, 60)):
        times.append(times[-1] + rng.choice([1, 30, 60, 300, 899, 900, 901, 1800, 3599, 3600, 3601, 7200]))
    return [Reading(t, round(rng.uniform(0, 9), 3)) for t in times]


def _next_batch(rng, batches):
    """A store as meters and their clients make them: appended after the last one, sent again (a retry,
    sometimes with corrected values), overlapping the last one's end, inside an earlier one, or anywhere."""
    kind = rng.choice(["append", "again", "corrected", "overlap", "inside", "anywhere"]) if batches else "anywhere"
    if kind == "anywhere":
        return _random_batch(rng, rng.randrange(0, 40 * 3600))
    last = batches[-1]
    if kind == "append":
        return _random_batch(rng, last[-1].time + rng.choice([1, 60, 900, 3600, 3601, 9000]))
    if kind == "again":
        return list(last)
    if kind == "corrected":
        return [Reading(r.time, round(rng.uniform(0, 9), 3)) if rng.random() < 0.3 else r for r in last]
    if kind == "overlap":
        return _random_batch(rng, last[len(last) // 2].time + rng.choice([0, 1, 17]))
    return _random_batch(rng, last[0].time + 1)[: max(1, len(last) // 3)]


@pytest.mark.parametrize("max_gap", [300, 3600, 5400])
@pytest.mark.parametrize("seed", range(25))
def test_rollups_and_their_quarters_after_retried_appended_and_overlapping_stores_equal_a_recomputation(
    database, seed, max_gap
):
    import random

    from domain.usage import energy_rollups

    rng = random.Random(seed * 7 + max_gap)
    meter = f"mixed-{seed}-{max_gap}"
    batches = []
    for _ in range(rng.randint(2, 10)):
        batches.append(_next_batch(rng, batches))
        readings_repo.store(meter, batches[-1], max_gap)

    stored = readings_repo.samples_between(meter)
    expected = energy_rollups(stored, max_gap, stored[0].time - stored[0].time % 3600, stored[-1].time + 3600)
    rollups = readings_repo.hourly_energy(meter, readings_repo.JOI)
    assert rollups.keys() == expected.keys()
    for hour, rollup in expected.items():
        assert rollups[hour] == pytest.approx(rollup, rel=1e-9, abs=1e-9), hour


def test_a_meter_key_is_looked_up_once_and_a_rolled_back_one_is_never_remembered(database, monkeypatch):
    store_failing_after_its_writes("m", [Reading(0, 1.0), Reading(60, 1.0)], monkeypatch)
    readings_repo.store("other", [Reading(0, 1.0)], GAP)  # takes the key the rolled-back "m" had
    readings_repo.store("m", [Reading(0, 2.0), Reading(60, 2.0)], GAP)

    lookups = []
    lookup = readings_repo._meter_key
    monkeypatch.setattr(readings_repo, "_meter_key", lambda meter_id: lookups.append(meter_id) or lookup(meter_id))
    readings_repo.store("m", [Reading(120, 2.0)], GAP)
    readings_repo.store("m", [Reading(180, 2.0)], GAP)
    assert lookups.count("m") <= 1
    assert readings_repo.samples_between("m") == [Reading(t, 2.0) for t in (0, 60, 120, 180)]
    assert readings_repo.samples_between("other") == [Reading(0, 1.0)]


def direct_weekday_energy(samples, zone, start, end, max_gap):
    """kWh per local weekday straight from the samples: each interval cut at the window and at local midnights."""
    from datetime import datetime, time, timedelta

    by_weekday = {}
    for (t1, r1), (t2, r2) in zip(samples, samples[1:], strict=False):
        if t2 - t1 > max_gap:
            continue
        low, high = max(t1, start), min(t2, end)
        while low < high:
            local = datetime.fromtimestamp(low, zone)
            midnight = datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=zone).timestamp()
            piece_end = min(high, int(midnight))
            p1 = r1 + (r2 - r1) * (low - t1) / (t2 - t1)
            p2 = r1 + (r2 - r1) * (piece_end - t1) / (t2 - t1)
            by_weekday[local.weekday()] = (
                by_weekday.get(local.weekday(), 0.0) + (p1 + p2) / 2 * (piece_end - low) / 3600
            )
            low = piece_end
    return by_weekday


@pytest.mark.parametrize("zone_name", ["Asia/Kolkata", "Australia/Adelaide", "Asia/Kathmandu", "Europe/London"])
def test_weekday_sums_are_exact_at_local_midnight_in_every_quarter_hour_zone(database, zone_name):
    import random
    from zoneinfo import ZoneInfo

    rng = random.Random(zone_name)
    moment, samples = 1_711_000_000 + rng.randrange(3600), []  # around Adelaide's and London's DST changes
    while len(samples) < 1500:
        samples.append((moment, rng.uniform(0, 5)))
        moment += rng.choice([60, 300, 900, 1700, 3600, 5000])
    readings_repo.store("zoned", [Reading(*sample) for sample in samples], GAP)
    start, end = samples[3][0] + 17, samples[-4][0] - 5
    got = readings_repo.weekday_energy("zoned", [zone_name], start, end, GAP)[zone_name]
    want = direct_weekday_energy(samples, ZoneInfo(zone_name), start, end, GAP)
    assert got == pytest.approx(want, rel=1e-9, abs=1e-9)
