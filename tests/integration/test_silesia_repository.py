"""SilesiaSolar storage on SQLite and PostgreSQL: the seeded Eastron models, what the poller reads, owners."""

import pytest

from domain.accounts import new_user
from domain.errors import Conflict, InvalidInput
from domain.silesia import Host, Location, PollTarget, Register, RegisterSpec
from repository import silesia, users
from repository.migrations import silesia as silesia_migrations


def a_user(name: str) -> int:
    return users.create_user(new_user(name, f"{name}@example.com", "strong-password"), 0).id


def meter_id(name: str) -> int:
    return next(meter.id for meter in silesia.meters()[0] if meter.name == name)


def registers_by_name(meter: str) -> dict[str, Register]:
    return {register.measurement: register for register in silesia.registers(meter_id=meter_id(meter))[0]}


@pytest.fixture
def site(database):
    owner = a_user("alice")
    location = silesia.create_location(Location(0, owner, "SunnyStreet", "62", "SilliconCity", "11-420"))
    host = silesia.create_host(Host(0, owner, location.id, meter_id("sdm630"), "192.168.1.20", 502, 7, "roof"))
    return owner, location, host


def test_the_eastron_models_are_seeded_with_the_manufacturers_input_register_map(database):
    assert {(meter.name, meter.type) for meter in silesia.meters()[0]} >= {("sdm630", 2), ("sdm120", 2)}
    sdm630 = registers_by_name("sdm630")
    expected = {
        "voltage_ac": (0, "V"),
        "current": (6, "A"),
        "active_power": (52, "W"),
        "power_factor": (62, ""),
        "frequency": (70, "Hz"),
        "active_energy_consumed": (72, "kWh"),
        "active_energy_produced": (74, "kWh"),
        "voltage_ac_l2": (2, "V"),
        "current_l3": (10, "A"),
        "active_power_l1": (12, "W"),
        "active_energy_total": (342, "kWh"),
        "active_energy_consumed_l3": (350, "kWh"),
    }
    assert {name: (sdm630[name].address, sdm630[name].unit) for name in expected} == expected
    assert {(r.function_code, r.data_type, r.word_order, r.scale) for r in sdm630.values()} == {(4, 3, "big", 1.0)}
    sdm120 = registers_by_name("sdm120")
    assert (sdm120["active_power"].address, sdm120["voltage_ac"].address, sdm120["frequency"].address) == (12, 0, 70)
    assert "active_power_l1" not in sdm120
    measurement_types = {m.name: m.type for m in silesia.measurements()[0]}
    assert measurement_types["voltage_dc"] == 1 and measurement_types["active_energy_produced"] == 2


def test_loading_the_seed_models_again_changes_nothing(database):
    before = (silesia.meters(), silesia.measurements(), silesia.registers())
    silesia_migrations._eastron_models(None, database.obj)
    assert (silesia.meters(), silesia.measurements(), silesia.registers()) == before


def test_polling_targets_join_each_hosts_assignments_to_its_meter_models_registers(site):
    owner, location, host = site
    silesia.assign(host.id, owner, ["active_energy_consumed", "active_power"])
    idle = silesia.create_host(Host(0, owner, location.id, meter_id("sdm120"), "meter.local", 502, 1))
    assert silesia.polling_targets() == [
        PollTarget(
            host.id,
            "192.168.1.20",
            502,
            7,
            (
                RegisterSpec("active_power", 1, 52, 3, 4, "big", 1.0, "W"),
                RegisterSpec("active_energy_consumed", 2, 72, 3, 4, "big", 1.0, "kWh"),
            ),
        ),
        PollTarget(idle.id, "meter.local", 502, 1, ()),
    ]


def test_polling_targets_follow_a_change_of_the_hosts_meter_model(site):
    owner, _, host = site
    silesia.assign(host.id, owner, ["active_power"])
    silesia.update_host(host.id, {"meter": meter_id("sdm120")})
    (target,) = silesia.polling_targets()
    assert [(spec.measurement, spec.address) for spec in target.registers] == [("active_power", 12)]


def test_a_register_change_reaches_the_poller(site):
    owner, _, host = site
    silesia.assign(host.id, owner, ["active_power"])
    power = registers_by_name("sdm630")["active_power"]
    silesia.update_register(power.id, {"word_order": "little", "scale": 0.001, "type": 2})
    (spec,) = silesia.polling_targets()[0].registers
    assert (spec.word_order, spec.scale, spec.data_type) == ("little", 0.001, 2)


def test_host_owner_names_the_user_or_none(site):
    owner, _, host = site
    assert silesia.host_owner(host.id) == owner
    assert silesia.host_owner(host.id + 1000) is None


def test_assign_refuses_everything_when_one_measurement_has_no_register(site):
    owner, _, host = site
    with pytest.raises(InvalidInput, match="voltage_dc"):
        silesia.assign(host.id, owner, ["active_power", "voltage_dc"])
    assert silesia.assignments(host.id) == []


def test_another_users_host_is_not_found_for_assignment(site):
    _, _, host = site
    stranger = a_user("bob")
    with pytest.raises(Exception, match="no host"):
        silesia.assign(host.id, stranger, ["active_power"])


def test_deleting_a_meter_model_that_hosts_use_is_a_conflict(site):
    with pytest.raises(Conflict):
        silesia.delete_meter(meter_id("sdm630"))
    assert meter_id("sdm630")


def test_users_tables_hold_case_insensitive_unique_names(database):
    a_user("JohnDoe")
    with pytest.raises(InvalidInput) as raised:
        users.create_user(new_user("johndoe", "other@example.com", "strong-password"), 0)
    assert raised.value.field == "username"
