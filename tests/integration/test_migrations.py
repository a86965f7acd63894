"""Versioned migrations evolve an existing database without losing data."""

import peewee
import pytest
from playhouse.migrate import migrate as run_operations

from domain.usage import Reading
from repository import migrations
from repository import readings as readings_repo


def test_migrating_twice_applies_nothing_the_second_time(database):
    assert migrations.pending() == []
    assert migrations.migrate() == []


def test_every_migration_is_recorded_by_name(database):
    recorded = {row.name for row in migrations.AppliedMigration.select()}
    assert recorded == {name for name, _ in migrations.all_migrations()}


def test_a_new_migration_changes_the_schema_of_a_database_that_holds_data(database, monkeypatch):
    readings_repo.store("m", [Reading(0, 1.0), Reading(60, 2.0)], 3600)

    def add_meter_note(migrator, db):
        run_operations(migrator.add_column("meter_samples", "note", peewee.TextField(null=True)))

    class NewArea:
        MIGRATIONS = [("test_0001_reading_note", add_meter_note)]

    monkeypatch.setattr(migrations, "AREAS", [*migrations.AREAS, NewArea])
    assert migrations.pending() == ["test_0001_reading_note"]
    assert migrations.migrate() == ["test_0001_reading_note"]

    columns = {column.name for column in database.get_columns("meter_samples")}
    assert "note" in columns
    assert readings_repo.samples_between("m") == [Reading(0, 1.0), Reading(60, 2.0)]


def test_duplicate_migration_names_are_refused(monkeypatch):
    class Twice:
        MIGRATIONS = [("same", lambda m, d: None), ("same", lambda m, d: None)]

    monkeypatch.setattr(migrations, "AREAS", [Twice])
    with pytest.raises(RuntimeError, match="duplicate"):
        migrations.all_migrations()


def test_the_seeded_plans_and_accounts_are_present_after_migrating(database):
    from repository import accounts

    assert [plan.plan_id for plan in accounts.price_plans()] == ["price-plan-0", "price-plan-1", "price-plan-2"]
    assert accounts.plan_id_for_meter("smart-meter-3") == "price-plan-2"
    assert accounts.plan_id_for_meter("unknown") is None
    assert database is not None


def test_integer_meter_keys_move_every_sample_of_a_database_made_before_them(config, monkeypatch):
    from repository import db

    before = list(migrations.AREAS)
    first_only = type("JoiUpToOne", (), {"MIGRATIONS": migrations.joi.MIGRATIONS[:1]})
    monkeypatch.setattr(migrations, "AREAS", [first_only, *before[1:]])
    db.open_database(config.database_url)
    db.connect()
    try:
        migrations.migrate()
        p = db.database.param
        rows = [("a", 0, 1.0), ("a", 60, 2.0), ("b", 30, 5.0)]
        for row in rows:
            db.database.execute_sql(
                f'INSERT INTO meter_readings (meter_id, "time", reading) VALUES ({p}, {p}, {p})', row
            )
        monkeypatch.setattr(migrations, "AREAS", before)
        assert migrations.migrate()[:2] == ["joi_0002_integer_meter_keys", "joi_0003_rollups_by_kind_with_quarters"]
        assert readings_repo.samples_between("a") == [Reading(0, 1.0), Reading(60, 2.0)]
        assert readings_repo.samples_between("b") == [Reading(30, 5.0)]
        assert "meter_readings" not in db.database.get_tables()
        readings_repo.store("c", [Reading(0, 1.0)], 3600)  # a new meter gets a key of its own
        assert readings_repo.samples_between("c") == [Reading(0, 1.0)]
        assert readings_repo.samples_between("a") == [Reading(0, 1.0), Reading(60, 2.0)]
    finally:
        db.close_all()


def test_a_single_key_dsmr_database_becomes_installations_keeping_every_reading(config, monkeypatch):
    """Before installations one key read every meter: the logger's meter (newest telegram) becomes
    installation `default` with that key, a meter posted by hand gets an installation of its own."""
    from domain.dsmr import hash_api_key
    from repository import db
    from repository import dsmr as dsmr_repo

    before = list(migrations.AREAS)
    dsmr_up_to_two = type("DsmrUpToTwo", (), {"MIGRATIONS": migrations.dsmr.MIGRATIONS[:2]})
    monkeypatch.setattr(migrations, "AREAS", [dsmr_up_to_two if area is migrations.dsmr else area for area in before])
    db.open_database(config.database_url)
    db.connect()
    try:
        migrations.migrate()
        p = db.database.param
        columns = (
            "meter, timestamp, electricity_delivered_1, electricity_returned_1, electricity_delivered_2,"
            " electricity_returned_2, electricity_currently_delivered, electricity_currently_returned"
        )
        legacy = [
            ("E0044404018311117", 1714557600, 1500, 0, 1400, 0, 1, 0),
            ("E0044404018311117", 1714561200, 1501, 0, 1400, 0, 1, 0),
            ("E0044404018311117", 1714564800, 1000, 0, 1400, 0, 1, 0),  # a drop: flagged as a reset
            ("default", 1492207200, 2000, 0, 3000, 0, 1.5, 0),  # the README's v2 example
        ]
        for row in legacy:
            db.database.execute_sql(f"INSERT INTO dsmr_readings ({columns}) VALUES ({', '.join([p] * 8)})", row)
        db.database.execute_sql(
            "INSERT INTO dsmr_meters (meter, timestamp, latest_telegram, accepted_telegrams, duplicate_telegrams,"
            f" reading_count) VALUES ({p}, {p}, {p}, 3, 0, 3), ('default', NULL, NULL, 0, 0, 1)",
            ("E0044404018311117", 1714564800, "/telegram"),
        )
        db.database.execute_sql(
            "INSERT INTO dsmr_energy_supplier_prices (start, description, electricity_delivered_1_price,"
            " electricity_delivered_2_price, electricity_returned_1_price, electricity_returned_2_price,"
            " gas_price, fixed_daily_cost) VALUES ('2024-01-01', 'fixed', 0.2, 0.2, 0, 0, 1, 0.5)"
        )
        db.database.execute_sql("UPDATE dsmr_counters SET value = 4 WHERE name = 'rejected_telegrams'")
        db.database.execute_sql(
            f"INSERT INTO settings (key, value) VALUES ('dsmr_api_key_hash', {p})", (hash_api_key("old-key"),)
        )
        monkeypatch.setattr(migrations, "AREAS", before)
        assert migrations.migrate() == ["dsmr_0003_installations", "dsmr_0004_gaps", "dsmr_0005_gas_capture_index"]

        logger = dsmr_repo.installation_by_key_hash(hash_api_key("old-key"))
        assert (logger.name, logger.meter, logger.equipment_id) == ("default", "E0044404018311117", "E0044404018311117")
        assert dsmr_repo.installation_named("default-2") == dsmr_repo.installation_of_meter("default")
        assert dsmr_repo.installation_named("default-2").meter == "default"
        statistics = dsmr_repo.meter_statistics(logger.meter)
        assert (statistics.rejected_telegrams, statistics.resets) == (4, 1)
        assert len(dsmr_repo.energy_prices("E0044404018311117")) == len(dsmr_repo.energy_prices("default")) == 1
        assert dsmr_repo.ReadingRow.select().count() == 4
    finally:
        db.close_all()


def test_rollups_get_a_meter_kind_keeping_every_row_and_are_rebuilt_with_quarters_at_start(config, monkeypatch):
    from app import prepare_database
    from repository import db

    before = list(migrations.AREAS)
    up_to_two = type("JoiUpToTwo", (), {"MIGRATIONS": migrations.joi.MIGRATIONS[:2]})
    monkeypatch.setattr(migrations, "AREAS", [up_to_two])
    db.open_database(config.database_url)
    db.connect()
    try:
        migrations.migrate()
        p = db.database.param
        db.database.execute_sql(f"INSERT INTO meters (meter_id) VALUES ({p})", ("sampled",))
        db.database.execute_sql(
            'INSERT INTO meter_samples (meter_key, "time", reading) VALUES (1, 0, 2.0), (1, 3600, 2.0)'
        )
        for meter_id, kwh in (("sampled", 7.0), ("registers-only", 3.0)):
            db.database.execute_sql(
                f"INSERT INTO energy_hours (meter_id, hour_start, kwh) VALUES ({p}, 0, {p})", (meter_id, kwh)
            )
        db.database.execute_sql(f"INSERT INTO settings (key, value) VALUES ('rollup_max_gap_seconds', {p})", ("3600",))
        monkeypatch.setattr(migrations, "AREAS", before)
        assert migrations.migrate()[0] == "joi_0003_rollups_by_kind_with_quarters"
        assert readings_repo.hourly_energy("registers-only", readings_repo.P1) == {0: (3.0, 0.0, 0.0, 0.0)}
        assert readings_repo.hourly_energy("sampled", readings_repo.JOI)[0].kwh == 7.0
        assert "energy_hours" not in db.database.get_tables()
    finally:
        db.close_all()
    prepare_database(config)  # the cleared rule rebuilds the JOI rollups from the samples, with quarters
    db.connect()
    try:
        assert readings_repo.hourly_energy("sampled", readings_repo.JOI) == {0: (2.0, 0.5, 1.0, 1.5)}
    finally:
        db.close_all()


def test_hour_pages_come_to_a_sqlite_database_made_before_them_and_its_samples_are_paged_later(config, monkeypatch):
    from repository import db, sample_pages

    before = list(migrations.AREAS)
    up_to_three = type("JoiUpToThree", (), {"MIGRATIONS": migrations.joi.MIGRATIONS[:3]})
    monkeypatch.setattr(migrations, "AREAS", [up_to_three])
    db.open_database(config.database_url)
    db.connect()
    try:
        migrations.migrate()
        readings_repo.store("m", [Reading(t, 1.5) for t in range(0, 7200, 60)], 3600)
        monkeypatch.setattr(migrations, "AREAS", before)
        assert "joi_0004_hour_pages" in migrations.migrate()
        tables = set(db.database.get_tables())
        if not db.is_sqlite():
            assert "sample_pages" not in tables  # PostgreSQL reads rows
            return
        assert {"sample_pages", "sample_page_marks"} <= tables
        from_rows = readings_repo.sample_pairs("m", 0, 7199)
        assert sample_pages.page_sealed_hours(7200 + sample_pages.PAGE_DELAY_SECONDS) == 120
        assert readings_repo.sample_pairs("m", 0, 7199) == from_rows == [(t, 1.5) for t in range(0, 7200, 60)]
    finally:
        db.close_all()
