"""MQTT topics and payloads for what arrives, and Home Assistant discovery for each value (pure).

Topics (under an optional prefix): DSMR readings as DSMR-reader publishes them (`dsmr/reading/<field>`,
`dsmr/json`), also per meter as one JSON (`dsmr/meter/<meter>/json`, what discovery points at, so that
several meters never mix), today's consumption (`dsmr/day-consumption/<field>`), JOI power
(`joi/<meter>/power`), OMS values (`oms/<device>/<dimension>`) and Modbus samples
(`silesia/<host>/<measurement>`). Every message is retained: each topic holds a latest value.

Discovery: one retained `homeassistant/sensor/<unique id>/config` per value, naming its device, unit,
device_class and state_class (energy and volume counters are `total_increasing`, which Home Assistant's
Energy dashboard needs).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import orjson

MANUFACTURER = "JOI Energy"
_UNSAFE_LEVEL = re.compile(r"[/+#\x00-\x1f\x7f]")
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class MqttMessage:
    topic: str
    payload: str
    retain: bool = True


@dataclass(frozen=True)
class Device:
    identifier: str
    name: str
    model: str


@dataclass(frozen=True)
class Sensor:
    unique_id: str
    name: str
    state_topic: str
    device: Device
    unit: str | None = None
    device_class: str | None = None
    state_class: str | None = None
    value_template: str | None = None


@dataclass(frozen=True)
class Publication:
    """What one stored reading, message or sample publishes, and the sensors its topics feed."""

    messages: list[MqttMessage]
    sensors: list[Sensor] = field(default_factory=list)


def topic(prefix: str, *levels: str) -> str:
    return "/".join([prefix, *levels] if prefix else levels)


def topic_level(text: str) -> str:
    """One topic level: no separator, wildcard or control character (each becomes `_`)."""
    return _UNSAFE_LEVEL.sub("_", text) or "_"


def entity_id(*parts: str) -> str:
    """A Home Assistant unique id / discovery object id: letters, digits, `_` and `-` only."""
    return _UNSAFE_ID.sub("_", "_".join(parts))


def slug(text: str) -> str:
    """`Energy (kWh)` -> `energy_kwh`, `Volume (m^3)` -> `volume_m3`."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower().replace("^", "").replace("³", "3")).strip("_") or "value"


def number_text(value: Decimal | float | int) -> str:
    if isinstance(value, Decimal):
        text = f"{value.normalize():f}"
        return "0" if text in ("-0", "0") else text
    return repr(value) if isinstance(value, float) else str(value)


def instant_text(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat()


def discovery_message(discovery_prefix: str, sensor: Sensor) -> MqttMessage:
    config: dict[str, object] = {
        "name": sensor.name,
        "unique_id": sensor.unique_id,
        "state_topic": sensor.state_topic,
        "device": {
            "identifiers": [sensor.device.identifier],
            "name": sensor.device.name,
            "manufacturer": MANUFACTURER,
            "model": sensor.device.model,
        },
        "origin": {"name": MANUFACTURER},
    }
    for key, value in (
        ("unit_of_measurement", sensor.unit),
        ("device_class", sensor.device_class),
        ("state_class", sensor.state_class),
        ("value_template", sensor.value_template),
    ):
        if value is not None:
            config[key] = value
    return MqttMessage(f"{discovery_prefix}/sensor/{sensor.unique_id}/config", orjson.dumps(config).decode())


# --- JOI --------------------------------------------------------------------------------------------------------


def joi_power(prefix: str, meter: str, time: int, kilowatts: float) -> Publication:
    """The newest reading of a stored batch: the meter's power in kW."""
    state = topic(prefix, "joi", topic_level(meter), "power")
    device = Device(entity_id("joi", meter), f"JOI meter {meter}", "JOI Energy smart meter")
    sensor = Sensor(entity_id("joi", meter, "power"), "Power", state, device, "kW", "power", "measurement")
    return Publication([MqttMessage(state, number_text(kilowatts))], [sensor])


# --- DSMR -------------------------------------------------------------------------------------------------------

ENERGY = ("kWh", "energy", "total_increasing")
POWER = ("kW", "power", "measurement")
GAS = ("m³", "gas", "total_increasing")
TIMESTAMP = (None, "timestamp", None)

DSMR_READING_FIELDS: Mapping[str, tuple[str, tuple[str | None, str | None, str | None]]] = {
    "timestamp": ("Telegram time", TIMESTAMP),
    "electricity_delivered_1": ("Electricity delivered (tariff 1)", ENERGY),
    "electricity_returned_1": ("Electricity returned (tariff 1)", ENERGY),
    "electricity_delivered_2": ("Electricity delivered (tariff 2)", ENERGY),
    "electricity_returned_2": ("Electricity returned (tariff 2)", ENERGY),
    "electricity_currently_delivered": ("Power delivered", POWER),
    "electricity_currently_returned": ("Power returned", POWER),
    "phase_currently_delivered_l1": ("Power delivered L1", POWER),
    "phase_currently_delivered_l2": ("Power delivered L2", POWER),
    "phase_currently_delivered_l3": ("Power delivered L3", POWER),
    "phase_currently_returned_l1": ("Power returned L1", POWER),
    "phase_currently_returned_l2": ("Power returned L2", POWER),
    "phase_currently_returned_l3": ("Power returned L3", POWER),
    "extra_device_timestamp": ("Gas reading time", TIMESTAMP),
    "extra_device_delivered": ("Gas delivered", GAS),
}

DSMR_DAY_FIELDS: Mapping[str, tuple[str, tuple[str | None, str | None, str | None]]] = {
    "electricity1": ("Electricity used today (tariff 1)", ENERGY),
    "electricity2": ("Electricity used today (tariff 2)", ENERGY),
    "electricity1_returned": ("Electricity returned today (tariff 1)", ENERGY),
    "electricity2_returned": ("Electricity returned today (tariff 2)", ENERGY),
    "gas": ("Gas used today", GAS),
    "electricity1_cost": ("Electricity cost today (tariff 1)", (None, None, None)),
    "electricity2_cost": ("Electricity cost today (tariff 2)", (None, None, None)),
    "gas_cost": ("Gas cost today", (None, None, None)),
    "fixed_cost": ("Fixed cost today", (None, None, None)),
    "total_cost": ("Total cost today", (None, None, None)),
}


def _dsmr_value(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return instant_text(value)
    return number_text(value)  # type: ignore[arg-type]


def dsmr_reading(prefix: str, reading_id: int, meter: str, values: Mapping[str, object]) -> Publication:
    """A stored DSMR reading: one topic per field as DSMR-reader, the whole reading as JSON (installation
    and per meter). `values` maps the fields of DSMR_READING_FIELDS to Decimals, datetimes or None."""
    texts = {name: _dsmr_value(values.get(name)) for name in DSMR_READING_FIELDS}
    messages = [
        MqttMessage(topic(prefix, "dsmr", "reading", name), text) for name, text in texts.items() if text is not None
    ]
    document = {"id": reading_id, **{name: _json_value(values.get(name)) for name in DSMR_READING_FIELDS}}
    document["meter"] = meter
    as_json = orjson.dumps(document).decode()
    meter_topic = topic(prefix, "dsmr", "meter", topic_level(meter), "json")
    messages += [MqttMessage(topic(prefix, "dsmr", "json"), as_json), MqttMessage(meter_topic, as_json)]
    device = Device(entity_id("joi_dsmr", meter), f"DSMR meter {meter}", "DSMR P1 smart meter")
    sensors = [
        Sensor(
            entity_id("joi_dsmr", meter, name),
            label,
            meter_topic,
            device,
            *kind,
            value_template=f"{{{{ value_json.{name} }}}}",
        )
        for name, (label, kind) in DSMR_READING_FIELDS.items()
        if texts[name] is not None
    ]
    return Publication(messages, sensors)


def _json_value(value: object) -> object:
    if value is None:
        return None
    if isinstance(value, datetime):
        return instant_text(value)
    return orjson.Fragment(number_text(value))  # type: ignore[arg-type]


def dsmr_day_consumption(
    prefix: str, values: Mapping[str, Decimal | None], installation: str = "default"
) -> Publication:
    """Today's consumption of one installation (what GET /api/v2/consumption/today answers with its key).
    The `default` installation publishes on DSMR-reader's own topics; another one under
    `dsmr/installation/<name>/`, so that two households never share a topic."""
    if installation == "default":
        path, device_id = ("dsmr", "day-consumption"), "joi_dsmr_installation"
    else:
        path = ("dsmr", "installation", topic_level(installation), "day-consumption")
        device_id = entity_id("joi_dsmr_installation", installation)
    device = Device(device_id, f"DSMR installation {installation}", "DSMR-reader compatible installation")
    messages, sensors = [], []
    for name, (label, kind) in DSMR_DAY_FIELDS.items():
        value = values.get(name)
        if value is None:
            continue
        state = topic(prefix, *path, name)
        messages.append(MqttMessage(state, number_text(value)))
        sensors.append(Sensor(entity_id(device_id, "today", name), label, state, device, *kind))
    return Publication(messages, sensors)


# --- OMS --------------------------------------------------------------------------------------------------------

_UNITS = {"m^3": "m³", "m m^3": "m³", "m3": "m³", "m^3/h": "m³/h", "m m^3/h": "m³/h", "deg c": "°C", "c": "°C"}
_ENERGY_UNITS = {"wh": "Wh", "kwh": "kWh", "mwh": "MWh", "j": "J", "kj": "kJ", "mj": "MJ", "gj": "GJ"}
_GAS_DEVICE_TYPES = {3}
_WATER_DEVICE_TYPES = {6, 7, 0x15, 0x16}


def _unit_in(dimension: str) -> str | None:
    match = re.search(r"\(([^()]*)\)\s*$", dimension)
    if match is None:
        return None
    unit = match.group(1).strip()
    return _UNITS.get(unit.lower(), unit) or None


def oms_kind(dimension: str, device_type: int) -> tuple[str | None, str | None, str | None]:
    """(unit, device_class, state_class) of an OMS dimension such as `Energy (kWh)` or `Volume (m^3)`."""
    unit = _unit_in(dimension)
    lowered = dimension.lower()
    if lowered.startswith("energy") and unit and unit.lower() in _ENERGY_UNITS:
        return _ENERGY_UNITS[unit.lower()], "energy", "total_increasing"
    if lowered.startswith("volume flow"):
        return unit, "volume_flow_rate" if unit == "m³/h" else None, "measurement"
    if lowered.startswith("volume") and unit == "m³":
        device_class = "gas" if device_type in _GAS_DEVICE_TYPES else "water"
        return (
            unit,
            device_class if device_type in _GAS_DEVICE_TYPES | _WATER_DEVICE_TYPES else "volume",
            ("total_increasing"),
        )
    if lowered.startswith("power") and unit in ("W", "kW"):
        return unit, "power", "measurement"
    if "temperature" in lowered and unit in ("°C", "K"):
        return unit, "temperature" if unit == "°C" else None, "measurement"
    return unit, None, None


@dataclass(frozen=True)
class OmsValue:
    dimension: str
    tariff: int
    subunit: int
    value: Decimal | int


def oms_values(prefix: str, device_id: int, device_type: int, values: Iterable[OmsValue]) -> Publication:
    """A device's current values (storage 0) from its newest message."""
    model = f"wireless M-Bus type {device_type}"
    device = Device(entity_id("joi_oms", str(device_id)), f"OMS device {device_id}", model)
    messages, sensors = [], []
    for item in values:
        name = slug(item.dimension)
        if item.tariff:
            name += f"_tariff_{item.tariff}"
        if item.subunit:
            name += f"_subunit_{item.subunit}"
        state = topic(prefix, "oms", str(device_id), name)
        messages.append(MqttMessage(state, number_text(item.value)))
        label = item.dimension + (f" tariff {item.tariff}" if item.tariff else "")
        label += f" subunit {item.subunit}" if item.subunit else ""
        kind = oms_kind(item.dimension, device_type)
        sensors.append(Sensor(entity_id("joi_oms", str(device_id), name), label, state, device, *kind))
    return Publication(messages, sensors)


# --- Modbus (SilesiaSolar) --------------------------------------------------------------------------------------

_MODBUS_KINDS = {
    "wh": ("Wh", "energy", "total_increasing"),
    "kwh": ("kWh", "energy", "total_increasing"),
    "mwh": ("MWh", "energy", "total_increasing"),
    "w": ("W", "power", "measurement"),
    "kw": ("kW", "power", "measurement"),
    "v": ("V", "voltage", "measurement"),
    "a": ("A", "current", "measurement"),
    "hz": ("Hz", "frequency", "measurement"),
    "var": ("var", "reactive_power", "measurement"),
    "kvar": ("kvar", "reactive_power", "measurement"),
    "va": ("VA", "apparent_power", "measurement"),
    "kva": ("kVA", "apparent_power", "measurement"),
    "kvarh": ("kvarh", None, "total_increasing"),
    "°c": ("°C", "temperature", "measurement"),
}


def modbus_kind(measurement: str, unit: str | None) -> tuple[str | None, str | None, str | None]:
    if unit and unit.strip().lower() in _MODBUS_KINDS:
        return _MODBUS_KINDS[unit.strip().lower()]
    if "power_factor" in slug(measurement) or "cos_phi" in slug(measurement):
        return (unit or None), "power_factor", "measurement"
    return (unit or None), None, "measurement"


def modbus_sample(
    prefix: str, host: str, measurement: str, value: float | Decimal | int, unit: str | None
) -> Publication:
    name = slug(measurement)
    state = topic(prefix, "silesia", topic_level(host), name)
    device = Device(entity_id("joi_silesia", host), f"Modbus meter {host}", "Modbus energy meter")
    sensor = Sensor(entity_id("joi_silesia", host, name), measurement, state, device, *modbus_kind(measurement, unit))
    return Publication([MqttMessage(state, number_text(value))], [sensor])
