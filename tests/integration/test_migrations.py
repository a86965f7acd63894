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
        assert migrations.migrate() == ["joi_0002_integer_meter_keys"]
        assert readings_repo.samples_between("a") == [Reading(0, 1.0), Reading(60, 2.0)]
        assert readings_repo.samples_between("b") == [Reading(30, 5.0)]
        assert "meter_readings" not in db.database.get_tables()
        readings_repo.store("c", [Reading(0, 1.0)], 3600)  # a new meter gets a key of its own
        assert readings_repo.samples_between("c") == [Reading(0, 1.0)]
        assert readings_repo.samples_between("a") == [Reading(0, 1.0), Reading(60, 2.0)]
    finally:
        db.close_all()
