import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from domain import mqtt


def test_a_joi_meter_publishes_its_power_with_a_power_sensor():
    publication = mqtt.joi_power("", "smart-meter-0", 1606636800, 0.0503)
    assert [(m.topic, m.payload, m.retain) for m in publication.messages] == [
        ("joi/smart-meter-0/power", "0.0503", True)
    ]
    (sensor,) = publication.sensors
    config = json.loads(mqtt.discovery_message("homeassistant", sensor).payload)
    assert config["state_topic"] == "joi/smart-meter-0/power"
    assert (config["device_class"], config["state_class"], config["unit_of_measurement"]) == (
        "power",
        "measurement",
        "kW",
    )
    assert config["device"]["identifiers"] == ["joi_smart-meter-0"]


def test_the_topic_prefix_goes_first_and_discovery_stays_under_its_own_prefix():
    publication = mqtt.joi_power("site-1/energy", "m1", 1, 1.0)
    assert publication.messages[0].topic == "site-1/energy/joi/m1/power"
    message = mqtt.discovery_message("homeassistant", publication.sensors[0])
    assert message.topic == "homeassistant/sensor/joi_m1_power/config" and message.retain


def test_ids_that_would_break_a_topic_or_an_entity_id_are_made_safe():
    publication = mqtt.modbus_sample("", "host/1+#", "Total import (kWh)", 5, "kWh")
    assert publication.messages[0].topic == "silesia/host_1__/total_import_kwh"
    assert publication.sensors[0].unique_id == "joi_silesia_host_1___total_import_kwh"


def _reading_values(**overrides):
    values = {
        "timestamp": datetime(2024, 1, 1, 12, 0, tzinfo=UTC),
        "electricity_delivered_1": Decimal("1234.500"),
        "electricity_returned_1": Decimal("0.000"),
        "electricity_delivered_2": Decimal("2000.125"),
        "electricity_returned_2": Decimal("1.000"),
        "electricity_currently_delivered": Decimal("0.716"),
        "electricity_currently_returned": Decimal("0"),
        "extra_device_timestamp": datetime(2024, 1, 1, 11, 0, tzinfo=UTC),
        "extra_device_delivered": Decimal("456.789"),
    }
    return {**values, **overrides}


def test_a_dsmr_reading_publishes_each_field_and_one_json_as_dsmr_reader():
    publication = mqtt.dsmr_reading("", 7, "E0044", _reading_values())
    by_topic = {message.topic: message.payload for message in publication.messages}
    assert by_topic["dsmr/reading/electricity_delivered_1"] == "1234.5"
    assert by_topic["dsmr/reading/electricity_currently_delivered"] == "0.716"
    assert by_topic["dsmr/reading/timestamp"] == "2024-01-01T12:00:00+00:00"
    assert "dsmr/reading/phase_currently_delivered_l1" not in by_topic  # the meter did not send it
    document = json.loads(by_topic["dsmr/json"])
    assert document["id"] == 7 and document["meter"] == "E0044"
    assert document["electricity_delivered_2"] == 2000.125 and document["phase_currently_delivered_l1"] is None
    assert by_topic["dsmr/meter/E0044/json"] == by_topic["dsmr/json"]


def test_dsmr_energy_counters_are_total_increasing_for_the_energy_dashboard():
    sensors = {sensor.unique_id: sensor for sensor in mqtt.dsmr_reading("", 1, "E0044", _reading_values()).sensors}
    delivered = sensors["joi_dsmr_E0044_electricity_delivered_1"]
    assert (delivered.unit, delivered.device_class, delivered.state_class) == ("kWh", "energy", "total_increasing")
    assert delivered.state_topic == "dsmr/meter/E0044/json"
    assert delivered.value_template == "{{ value_json.electricity_delivered_1 }}"
    gas = sensors["joi_dsmr_E0044_extra_device_delivered"]
    assert (gas.unit, gas.device_class, gas.state_class) == ("m³", "gas", "total_increasing")
    power = sensors["joi_dsmr_E0044_electricity_currently_delivered"]
    assert (power.unit, power.device_class, power.state_class) == ("kW", "power", "measurement")


def test_day_consumption_goes_to_one_topic_per_field():
    publication = mqtt.dsmr_day_consumption(
        "", {"electricity1": Decimal("1.250"), "gas": None, "total_cost": Decimal("0.41")}
    )
    assert {(m.topic, m.payload) for m in publication.messages} == {
        ("dsmr/day-consumption/electricity1", "1.25"),
        ("dsmr/day-consumption/total_cost", "0.41"),
    }


def test_another_installations_day_consumption_never_shares_the_default_topics():
    publication = mqtt.dsmr_day_consumption("", {"electricity1": Decimal("2.000")}, "neighbour")
    assert [(m.topic, m.payload) for m in publication.messages] == [
        ("dsmr/installation/neighbour/day-consumption/electricity1", "2")
    ]
    assert publication.sensors[0].unique_id != mqtt.dsmr_day_consumption("", {"electricity1": 1}).sensors[0].unique_id


def test_oms_values_get_one_topic_per_dimension_tariff_and_subunit():
    values = [
        mqtt.OmsValue("Energy (kWh)", 0, 0, 29690),
        mqtt.OmsValue("Energy (kWh)", 1, 0, 100),
        mqtt.OmsValue("Volume (m^3)", 0, 1, Decimal("12.5")),
    ]
    publication = mqtt.oms_values("", 83251076, 7, values)
    assert [(m.topic, m.payload) for m in publication.messages] == [
        ("oms/83251076/energy_kwh", "29690"),
        ("oms/83251076/energy_kwh_tariff_1", "100"),
        ("oms/83251076/volume_m3_subunit_1", "12.5"),
    ]
    energy, _, volume = publication.sensors
    assert (energy.unit, energy.device_class, energy.state_class) == ("kWh", "energy", "total_increasing")
    assert (volume.unit, volume.device_class, volume.state_class) == ("m³", "water", "total_increasing")


@pytest.mark.parametrize(
    ("dimension", "device_type", "kind"),
    [
        ("Energy (Wh)", 2, ("Wh", "energy", "total_increasing")),
        ("Volume (m^3)", 3, ("m³", "gas", "total_increasing")),
        ("Power (W)", 4, ("W", "power", "measurement")),
        ("Flow temperature (deg C)", 4, ("°C", "temperature", "measurement")),
        ("On time (days)", 4, ("days", None, None)),
    ],
)
def test_oms_dimensions_map_to_home_assistant_kinds(dimension, device_type, kind):
    assert mqtt.oms_kind(dimension, device_type) == kind


@pytest.mark.parametrize(
    ("measurement", "unit", "kind"),
    [
        ("total_import", "kWh", ("kWh", "energy", "total_increasing")),
        ("power", "W", ("W", "power", "measurement")),
        ("voltage_l1", "V", ("V", "voltage", "measurement")),
        ("power_factor", None, (None, "power_factor", "measurement")),
    ],
)
def test_modbus_units_map_to_home_assistant_kinds(measurement, unit, kind):
    assert mqtt.modbus_kind(measurement, unit) == kind
