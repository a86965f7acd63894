"""SilesiaSolar: meter models, their Modbus registers, and the sites (locations, hosts) users monitor.

The integer codes are the original system's:
- meter `type`: 1 = import only, 2 = bidirectional (import and export);
- measurement `type`: 1 = instantaneous (power, voltage, current), 2 = cumulative counter (energy);
- register `type` (its data type): 1 = 16-bit integer (one register), 2 = 32-bit integer and 3 = IEEE-754
  float32 (two registers each), big-endian, high word first unless `word_order` is `little`; the decoded
  value is multiplied by `scale`;
- register `function_code`: 3 = read holding registers, 4 = read input registers.

Every rule here raises InvalidInput naming the field at fault; nothing here touches the database.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass, replace

from domain.errors import InvalidInput

METER_TYPES = {1: "import only", 2: "bidirectional"}
MEASUREMENT_TYPES = {1: "instantaneous", 2: "cumulative"}
DATA_TYPE_INT16, DATA_TYPE_INT32, DATA_TYPE_FLOAT32 = 1, 2, 3
# How many 16-bit Modbus registers each data type occupies.
REGISTER_WORDS = {DATA_TYPE_INT16: 1, DATA_TYPE_INT32: 2, DATA_TYPE_FLOAT32: 2}
FUNCTION_CODES = {3: "read holding registers", 4: "read input registers"}
WORD_ORDERS = ("big", "little")
MAX_ADDRESS = 65_535
MAX_SLAVE_ADDRESS = 247  # Modbus unit ids 248-255 are reserved
MAX_SCALE = 1e12

NAME_MAX_LENGTH = 64
UNIT_MAX_LENGTH = 16
DESCRIPTION_MAX_LENGTH = 500
STREET_MAX_LENGTH = 200
NUMBER_MAX_LENGTH = 20
CITY_MAX_LENGTH = 100

_MEASUREMENT_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_METER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")
# Letters, digits, spaces and hyphens: 11-420 (PL), SW1A 1AA (UK), 1012 AB (NL), 12345-6789 (US).
_ZIP_CODE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9 -]{0,8}[A-Za-z0-9])?")
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# --- what the poller needs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisterSpec:
    """How to read one measurement from a meter: one register of the host's meter model."""

    measurement: str
    measurement_type: int
    address: int
    data_type: int
    function_code: int
    word_order: str
    scale: float
    unit: str


@dataclass(frozen=True)
class PollTarget:
    """One Modbus host with the registers of the measurements assigned to it."""

    host_id: int
    ip: str
    port: int
    slave_address: int
    registers: tuple[RegisterSpec, ...]


# --- the management objects ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Meter:
    id: int
    name: str
    type: int


@dataclass(frozen=True)
class Measurement:
    name: str
    type: int


@dataclass(frozen=True)
class Register:
    id: int
    meter: int
    measurement: str
    address: int
    unit: str
    data_type: int
    function_code: int
    word_order: str = "big"
    scale: float = 1.0


@dataclass(frozen=True)
class Location:
    id: int
    user: int
    street: str
    number: str
    city: str
    zip_code: str
    coord_x: float | None = None
    coord_y: float | None = None


@dataclass(frozen=True)
class Host:
    id: int
    user: int
    location: int
    meter: int
    ip: str
    port: int
    slave_address: int
    description: str = ""


@dataclass(frozen=True)
class Assignment:
    id: int
    host: int
    measurement: str


# --- validation ---------------------------------------------------------------------------------------------


def text(value: str, field: str, max_length: int, *, allow_empty: bool = False) -> str:
    """Text without control characters (not even a trailing newline), trimmed of spaces, within its length."""
    if _CONTROL.search(value):
        raise InvalidInput(f"{field} must not contain control characters", field=field)
    value = value.strip(" ")
    if not value and not allow_empty:
        raise InvalidInput(f"{field} must not be empty", field=field)
    if len(value) > max_length:
        raise InvalidInput(f"{field} must be at most {max_length} characters", field=field)
    return value


def measurement_name(name: str, field: str = "measurement") -> str:
    if not _MEASUREMENT_NAME.fullmatch(name):
        raise InvalidInput(
            f"{field} must be 1 to {NAME_MAX_LENGTH} lowercase letters, digits or _, starting with a letter "
            "(e.g. active_power)",
            field=field,
        )
    return name


def meter_name(name: str) -> str:
    if not _METER_NAME.fullmatch(name):
        raise InvalidInput(
            f"name must be 1 to {NAME_MAX_LENGTH} letters, digits or . _ + - characters, starting with a letter "
            "or digit (e.g. sdm630)",
            field="name",
        )
    return name


def meter_name_key(name: str) -> str:
    """Meter model names are unique regardless of case: `SDM630` is `sdm630`."""
    return name.casefold()


def code(value: int, field: str, allowed: dict[int, str]) -> int:
    if value not in allowed:
        choices = ", ".join(f"{number} ({meaning})" for number, meaning in allowed.items())
        raise InvalidInput(f"{field} must be one of {choices}, not {value}", field=field)
    return value


def in_range(value: int, field: str, low: int, high: int) -> int:
    if not low <= value <= high:
        raise InvalidInput(f"{field} must be between {low} and {high}, not {value}", field=field)
    return value


def host_address(ip: str) -> str:
    """An IPv4 or IPv6 address (written in its canonical form) or a DNS host name (lowercased), so that
    one device cannot be registered twice under two spellings."""
    candidate = ip.strip(" ")
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        pass
    name = candidate[:-1] if candidate.endswith(".") else candidate
    labels = name.split(".")
    if (
        0 < len(name) <= 253
        and all(_HOST_LABEL.fullmatch(label) for label in labels)
        and not labels[-1].isdigit()  # 300.1.2.3 is a broken IPv4 address, not a host name
    ):
        return name.lower()
    raise InvalidInput(f"ip must be an IPv4 or IPv6 address or a host name, not {ip!r}", field="ip")


def zip_code(value: str) -> str:
    value = value.strip(" ")
    if not _ZIP_CODE.fullmatch(value):
        raise InvalidInput(
            "zip_code must be 1 to 10 letters, digits, spaces or hyphens, e.g. 11-420 or SW1A 1AA", field="zip_code"
        )
    return value


def coordinate(value: float | None, field: str) -> float | None:
    """coord_x is the longitude (-180 to 180), coord_y the latitude (-90 to 90), in decimal degrees."""
    if value is None:
        return None
    limit = 180 if field == "coord_x" else 90
    if not math.isfinite(value) or not -limit <= value <= limit:
        raise InvalidInput(f"{field} must be between -{limit} and {limit} degrees, not {value}", field=field)
    return float(value)


def register_layout(address: int, data_type: int, function_code: int, word_order: str, scale: float) -> None:
    """A register is readable as described: a known type and function code, all its words within 0-65535,
    a word order and a finite, non-zero scale."""
    code(data_type, "type", {1: "16-bit integer", 2: "32-bit integer", 3: "float32"})
    code(function_code, "function_code", FUNCTION_CODES)
    in_range(address, "address", 0, MAX_ADDRESS)
    last = address + REGISTER_WORDS[data_type] - 1
    if last > MAX_ADDRESS:
        raise InvalidInput(
            f"address {address} with type {data_type} ({REGISTER_WORDS[data_type]} registers) would end at "
            f"{last}, beyond the last Modbus address {MAX_ADDRESS}",
            field="address",
        )
    if word_order not in WORD_ORDERS:
        raise InvalidInput(f"word_order must be big or little, not {word_order!r}", field="word_order")
    if not math.isfinite(scale) or scale == 0 or not 1 / MAX_SCALE <= abs(scale) <= MAX_SCALE:
        raise InvalidInput(
            f"scale must be a finite multiplier between 1e-12 and 1e12 in size, not {scale}", field="scale"
        )


def missing_registers(wanted: list[str], available: set[str]) -> list[str]:
    """The wanted measurements that the meter model has no register for, in the order asked."""
    return [name for name in dict.fromkeys(wanted) if name not in available]


# --- request bodies into checked values --------------------------------------------------------------------

_LOCATION_TEXT = {"street": STREET_MAX_LENGTH, "number": NUMBER_MAX_LENGTH, "city": CITY_MAX_LENGTH}


def location_changes(body: dict) -> dict:
    """The location fields present in `body`, checked: street, number, city, zip_code, coord_x, coord_y
    (a null coordinate clears it)."""
    changes = {}
    for field, max_length in _LOCATION_TEXT.items():
        if field in body:
            changes[field] = text(body[field], field, max_length)
    if "zip_code" in body:
        changes["zip_code"] = zip_code(body["zip_code"])
    for field in ("coord_x", "coord_y"):
        if field in body:
            changes[field] = coordinate(body[field], field)
    return changes


def new_location(user: int, body: dict) -> Location:
    for field in ("street", "number", "city", "zip_code"):
        if field not in body:
            raise InvalidInput(f"{field} is required", field=field)
    return Location(id=0, user=user, **location_changes(body))


def host_changes(body: dict) -> dict:
    """The host fields present in `body`, checked (ip normalised)."""
    changes = {}
    if "ip" in body:
        changes["ip"] = host_address(body["ip"])
    if "port" in body:
        changes["port"] = in_range(body["port"], "port", 1, 65_535)
    if "slave_address" in body:
        changes["slave_address"] = in_range(body["slave_address"], "slave_address", 0, MAX_SLAVE_ADDRESS)
    if "description" in body:
        changes["description"] = text(body["description"], "description", DESCRIPTION_MAX_LENGTH, allow_empty=True)
    for field in ("user", "location", "meter"):
        if field in body:
            changes[field] = in_range(body[field], field, 1, 2**31 - 1)
    return changes


def new_host(body: dict) -> Host:
    for field in ("ip", "port", "slave_address", "user", "location", "meter"):
        if field not in body:
            raise InvalidInput(f"{field} is required", field=field)
    return Host(id=0, **host_changes(body))


def new_meter(body: dict) -> Meter:
    return Meter(id=0, name=meter_name(body["name"]), type=code(body["type"], "type", METER_TYPES))


def meter_changes(body: dict) -> dict:
    changes = {}
    if "name" in body:
        changes["name"] = meter_name(body["name"])
    if "type" in body:
        changes["type"] = code(body["type"], "type", METER_TYPES)
    return changes


def new_measurement(body: dict) -> Measurement:
    return Measurement(measurement_name(body["measurement"]), code(body["type"], "type", MEASUREMENT_TYPES))


def measurement_changes(body: dict) -> dict:
    changes = {}
    if "measurement" in body:
        changes["name"] = measurement_name(body["measurement"])
    if "type" in body:
        changes["type"] = code(body["type"], "type", MEASUREMENT_TYPES)
    return changes


def _register_fields(body: dict) -> dict:
    fields = {}
    renamed = {"type": "data_type"}
    for key in ("meter", "measurement", "address", "unit", "type", "function_code", "word_order", "scale"):
        if key in body:
            fields[renamed.get(key, key)] = body[key]
    if "measurement" in fields:
        measurement_name(fields["measurement"])
    if "unit" in fields:
        fields["unit"] = text(fields["unit"], "unit", UNIT_MAX_LENGTH, allow_empty=True)
    if "meter" in fields:
        in_range(fields["meter"], "meter", 1, 2**31 - 1)
    if "scale" in fields:
        fields["scale"] = float(fields["scale"])
    return fields


def checked_register(register: Register) -> Register:
    register_layout(register.address, register.data_type, register.function_code, register.word_order, register.scale)
    return register


def new_register(body: dict) -> Register:
    for field in ("address", "measurement", "type", "function_code", "meter"):
        if field not in body:
            raise InvalidInput(f"{field} is required", field=field)
    return checked_register(Register(id=0, **{"unit": "", **_register_fields(body)}))


def merge_register(current: Register, body: dict) -> Register:
    """The register with the changes in `body`, checked as a whole (an address that suits the old type
    may not suit the new one)."""
    return checked_register(replace(current, **_register_fields(body)))


def merge_host(current: Host, changes: dict) -> Host:
    return replace(current, **changes)


def measurement_names(body: dict) -> list[str]:
    """The `measurements` of an assignment body: names, each once, in the order given."""
    names = body["measurements"]
    for name in names:
        measurement_name(name, field="measurements")
    return list(dict.fromkeys(names))
