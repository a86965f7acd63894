"""DSMR P1 telegrams: one pass over the lines of a telegram into a frozen `Telegram`.

A telegram is a `/` header line, an empty line, OBIS lines `A-B:C.D.E(value*unit)(...)` and an end line
`!` followed, from DSMR v4 on, by the CRC-16/ARC of every byte from `/` through `!` as 4 hex digits.
Supported variants: DSMR v2.2 and v3 (no CRC, gas as `0-n:24.3.0` plus a value line), v4.x and v5.0,
Belgian Fluvius (version on 0-0:96.1.4, gas on 0-n:24.2.3) and Luxembourg Smarty (totals 1-0:1.8.0/2.8.0,
meter name on 0-0:42.0.0). Lines with OBIS codes we do not keep are checked for syntax and skipped.

`parse_telegram` raises only `TelegramError` subclasses, whatever string it is given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Context, Decimal, InvalidOperation
from zoneinfo import ZoneInfo

import fastcrc

from domain.errors import InvalidInput

__all__ = [
    "MBusReading",
    "Telegram",
    "TelegramCRCError",
    "TelegramError",
    "TelegramParseError",
    "crc16_arc",
    "parse_telegram",
]


class TelegramError(InvalidInput):
    """The text is not a telegram we can accept."""

    def __init__(self, detail: str):
        super().__init__(detail, field="telegram")


class TelegramCRCError(TelegramError):
    """The CRC after `!` does not match the telegram's bytes."""

    def __init__(self, computed: int, stated: str):
        super().__init__(f"CRC mismatch: computed {computed:04X}, telegram states {stated}")
        self.computed = computed
        self.stated = stated


class TelegramParseError(TelegramError):
    """The telegram's structure or one of its lines is malformed; the message names the line."""

    def __init__(self, detail: str, *, line_number: int | None = None, line: str | None = None):
        if line_number is not None:
            detail = f"line {line_number} {_shorten(line or '')!r}: {detail}"
        super().__init__(detail)
        self.line_number = line_number
        self.line = line


@dataclass(frozen=True, slots=True, kw_only=True)
class MBusReading:
    """One M-Bus channel (gas, water, heat...) as the electricity meter relays it."""

    channel: int
    device_type: int | None = None
    equipment_id: str | None = None
    timestamp: datetime | None = None
    value: Decimal | None = None
    unit: str | None = None


GAS_DEVICE_TYPE = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class Telegram:
    """What one telegram states. Energy in kWh, power in kW, voltage in V, current in A; times in UTC.

    `electricity_delivered_*` is energy delivered to the customer (1-0:1.8.x), `electricity_returned_*`
    energy fed back (1-0:2.8.x); in Belgium tariff 1 is the day tariff, in the Netherlands the low one.
    A meter with totals only (Luxembourg, 1-0:1.8.0/2.8.0) has its total as tariff 1 and 0 as tariff 2,
    so `_1 + _2` is its total too; the totals are the stated 1-0:x.8.0 or else the sum of the tariffs.
    """

    header: str
    version: str | None = None
    timestamp: datetime | None = None
    equipment_id: str | None = None
    electricity_delivered_1: Decimal | None = None
    electricity_delivered_2: Decimal | None = None
    electricity_returned_1: Decimal | None = None
    electricity_returned_2: Decimal | None = None
    electricity_delivered_total: Decimal | None = None
    electricity_returned_total: Decimal | None = None
    electricity_currently_delivered: Decimal | None = None
    electricity_currently_returned: Decimal | None = None
    tariff: int | None = None
    phase_currently_delivered_l1: Decimal | None = None
    phase_currently_delivered_l2: Decimal | None = None
    phase_currently_delivered_l3: Decimal | None = None
    phase_currently_returned_l1: Decimal | None = None
    phase_currently_returned_l2: Decimal | None = None
    phase_currently_returned_l3: Decimal | None = None
    phase_voltage_l1: Decimal | None = None
    phase_voltage_l2: Decimal | None = None
    phase_voltage_l3: Decimal | None = None
    phase_current_l1: Decimal | None = None
    phase_current_l2: Decimal | None = None
    phase_current_l3: Decimal | None = None
    mbus: tuple[MBusReading, ...] = ()
    crc_ok: bool | None = None

    @property
    def gas_channel(self) -> MBusReading | None:
        """The gas meter: the lowest gas channel with a reading, or the only channel when its type is unknown."""
        gas_channels = [reading for reading in self.mbus if reading.device_type == GAS_DEVICE_TYPE]
        if gas_channels:
            with_value = [reading for reading in gas_channels if reading.value is not None]
            return (with_value or gas_channels)[0]
        if len(self.mbus) == 1 and self.mbus[0].device_type is None:
            return self.mbus[0]
        return None

    @property
    def gas_timestamp(self) -> datetime | None:
        gas = self.gas_channel
        return gas.timestamp if gas else None

    @property
    def gas_delivered(self) -> Decimal | None:
        gas = self.gas_channel
        return gas.value if gas else None


# --- CRC-16/ARC ------------------------------------------------------------------------------------------


def crc16_arc(data: bytes) -> int:
    """CRC-16/ARC (reflected polynomial 0xA001, initial value 0, no final XOR) of `data`.

    fastcrc's compiled loop: the table-driven Python loop took 40-100 us of a v1 telegram under load (its
    65,536-entry table missed the CPU caches), a tenth of the event loop's time."""
    return fastcrc.crc16.arc(data)


def _crc_of(checked_text: str) -> tuple[int, int | None]:
    """CRC of the telegram as sent, and an alternative when the bytes sent are ambiguous.

    Telegrams are ASCII. Text with other characters was decoded by the sender, as UTF-8 (the DSMR-reader
    client script) or Latin-1 (byte for byte); the CRC is checked against both encodings.
    """
    if checked_text.isascii():
        return crc16_arc(checked_text.encode("ascii")), None
    as_utf8 = crc16_arc(checked_text.encode("utf-8", "surrogatepass"))
    try:
        return as_utf8, crc16_arc(checked_text.encode("latin-1"))
    except UnicodeEncodeError:
        return as_utf8, None


# --- values ------------------------------------------------------------------------------------------------


class _BadValue(Exception):
    """A value inside a line is malformed; the line loop adds the line and its number."""


# Registers are at most 10 characters; longer numbers are refused before they reach storage.
_MAX_NUMBER_LENGTH = 24
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_NUMBER_CHARACTERS = "0123456789.-"
# Our own context, so a caller's decimal context (lower precision, InvalidOperation not trapped) cannot round
# a register or turn a malformed one into NaN.
_EXACT = Context(prec=64, traps=[InvalidOperation])
_UTC_OFFSET_BY_SEASON = {"S": "+0200", "W": "+0100", "": ""}
_LOCAL_TIME_ZONE = ZoneInfo("Europe/Amsterdam")
# Meters without a device on a channel (and Fluvius meters for empty months) send this impossible date.
_NO_DATE_PLACEHOLDER = "632525252525"


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _decimal(raw: str) -> Decimal | None:
    """`00123.456*kWh` -> Decimal('123.456'); the unit is dropped (P1 fixes it per OBIS code)."""
    number, star, unit = raw.partition("*")
    # Decimal syntax also allows exponents, spaces, underscores, "NaN" and non-ASCII digits: only digits, "."
    # and "-" may pass here; their malformed orders ("1.2.3", "--1") are left for the context to refuse.
    if (
        number.strip(_NUMBER_CHARACTERS)
        or not number
        or len(number) > _MAX_NUMBER_LENGTH
        or (star and not (unit.isalnum() and unit.isascii()))
    ):
        if not raw:
            return None
        raise _BadValue(_number_problem(number, unit))
    try:
        return _EXACT.create_decimal(number)
    except InvalidOperation:
        raise _BadValue(_number_problem(number, unit)) from None


def _number_problem(number: str, unit: str) -> str:
    if unit and not (unit.isalnum() and unit.isascii()):
        return f"unit {_shorten(unit)!r} is not a unit"
    if len(number) > _MAX_NUMBER_LENGTH:
        return f"{_shorten(number)!r} is not a number of at most {_MAX_NUMBER_LENGTH} characters"
    return f"{_shorten(number)!r} is not a number"


def _number_and_unit(raw: str) -> tuple[Decimal | None, str | None]:
    return _decimal(raw), raw.partition("*")[2] or None


def _integer(raw: str) -> int | None:
    if not raw:
        return None
    if not (raw.isdigit() and raw.isascii() and len(raw) <= 9):
        raise _BadValue(f"{_shorten(raw)!r} is not a whole number")
    return int(raw)


def _word(raw: str) -> str | None:
    if not raw:
        return None
    if not (raw.isalnum() and raw.isascii()):
        raise _BadValue(f"{_shorten(raw)!r} is not a version")
    return raw


def _identifier(raw: str) -> str | None:
    """Equipment identifiers are ASCII written as hex (`4B38...` -> `K8...`); anything else stays as sent."""
    if not raw or raw.strip("*") == "":
        return None  # absent, or masked by the sender
    if "(" in raw or ")" in raw:
        raise _BadValue("an equipment identifier is a single value")
    if len(raw) % 2 == 0 and _HEX_DIGITS.issuperset(raw):
        decoded = bytes.fromhex(raw)
        if decoded.isascii():
            text = decoded.decode("ascii")
            if text.isprintable():
                return text
    return raw


def _timestamp(raw: str) -> datetime | None:
    """`YYMMDDhhmmssS|W` (S = summer time, UTC+2; W = winter time, UTC+1) or, without the flag,
    Europe/Amsterdam local time (DSMR v2.2/v3). Returns UTC."""
    digits, flag = raw[:12], raw[12:]
    offset = _UTC_OFFSET_BY_SEASON.get(flag)
    if not (offset is not None and len(digits) == 12 and digits.isdigit() and digits.isascii()):
        raise _BadValue(f"{_shorten(raw)!r} is not a timestamp YYMMDDhhmmss followed by S or W")
    if digits == _NO_DATE_PLACEHOLDER:
        return None
    try:
        # fromisoformat() is the fastest checked way to a datetime; the digits were checked above.
        moment = datetime.fromisoformat(f"20{digits[:6]}T{digits[6:]}{offset}")
    except ValueError:
        raise _BadValue(f"{raw!r} is not a valid date and time") from None
    if offset:
        return moment.astimezone(UTC)
    return moment.replace(tzinfo=_LOCAL_TIME_ZONE).astimezone(UTC)


def _mbus_reading(raw: str) -> tuple[datetime | None, Decimal | None, str | None]:
    """`(YYMMDDhhmmssX)(00123.456*m3)` -> capture time, value, unit."""
    groups = raw.split(")(")
    if len(groups) != 2:
        raise _BadValue("an M-Bus reading is (timestamp)(value*unit)")
    return (_timestamp(groups[0]), *_number_and_unit(groups[1]))


def _legacy_gas_header(raw: str) -> tuple[datetime | None, str | None]:
    """DSMR v2.2/v3 `(timestamp)(00)(60)(1)(0-1:24.2.1)(m3)`: capture time and unit; the value follows."""
    groups = raw.split(")(")
    if len(groups) < 2:
        raise _BadValue("a gas reading is (timestamp)(...)(unit) followed by a (value) line")
    unit = groups[-1]
    return _timestamp(groups[0]), unit if unit.isalnum() and unit.isascii() else None


def _ignored(raw: str) -> None:
    return None


# --- OBIS dispatch -----------------------------------------------------------------------------------------

_IGNORED = "_ignored"
_LOGICAL_DEVICE_NAME = "_logical_device_name"

_CONVERTER_BY_CODE = {
    "1-3:0.2.8": ("version", _word),
    "0-0:96.1.4": ("version", _word),
    "0-0:1.0.0": ("timestamp", _timestamp),
    "0-0:96.1.1": ("equipment_id", _identifier),
    "0-0:42.0.0": (_LOGICAL_DEVICE_NAME, _identifier),
    "1-0:1.8.1": ("electricity_delivered_1", _decimal),
    "1-0:1.8.2": ("electricity_delivered_2", _decimal),
    "1-0:2.8.1": ("electricity_returned_1", _decimal),
    "1-0:2.8.2": ("electricity_returned_2", _decimal),
    "1-0:1.8.0": ("electricity_delivered_total", _decimal),
    "1-0:2.8.0": ("electricity_returned_total", _decimal),
    "1-0:1.7.0": ("electricity_currently_delivered", _decimal),
    "1-0:2.7.0": ("electricity_currently_returned", _decimal),
    "0-0:96.14.0": ("tariff", _integer),
    "1-0:21.7.0": ("phase_currently_delivered_l1", _decimal),
    "1-0:41.7.0": ("phase_currently_delivered_l2", _decimal),
    "1-0:61.7.0": ("phase_currently_delivered_l3", _decimal),
    "1-0:22.7.0": ("phase_currently_returned_l1", _decimal),
    "1-0:42.7.0": ("phase_currently_returned_l2", _decimal),
    "1-0:62.7.0": ("phase_currently_returned_l3", _decimal),
    "1-0:32.7.0": ("phase_voltage_l1", _decimal),
    "1-0:52.7.0": ("phase_voltage_l2", _decimal),
    "1-0:72.7.0": ("phase_voltage_l3", _decimal),
    "1-0:31.7.0": ("phase_current_l1", _decimal),
    "1-0:51.7.0": ("phase_current_l2", _decimal),
    "1-0:71.7.0": ("phase_current_l3", _decimal),
}
# Frequent lines we do not keep: power failures, voltage sags/swells, messages, limits, Belgian peaks,
# reactive energy. Listed so they skip the OBIS syntax check.
_IGNORED_CODES = (
    "0-0:96.7.21",
    "0-0:96.7.9",
    "1-0:99.97.0",
    "1-0:32.32.0",
    "1-0:52.32.0",
    "1-0:72.32.0",
    "1-0:32.36.0",
    "1-0:52.36.0",
    "1-0:72.36.0",
    "0-0:96.13.0",
    "0-0:96.13.1",
    "0-0:96.13.2",
    "0-0:96.13.3",
    "0-0:96.13.4",
    "0-0:96.13.5",
    "0-0:17.0.0",
    "0-0:96.3.10",
    "1-0:31.4.0",
    "1-0:51.4.0",
    "1-0:71.4.0",
    "1-1:31.4.0",
    "1-0:1.4.0",
    "1-0:1.6.0",
    "0-0:98.1.0",
    "1-0:3.8.0",
    "1-0:4.8.0",
    "1-0:3.7.0",
    "1-0:4.7.0",
    "1-0:9.7.0",
    "1-0:10.7.0",
    "1-0:23.7.0",
    "1-0:24.7.0",
    "1-0:43.7.0",
    "1-0:44.7.0",
    "1-0:63.7.0",
    "1-0:64.7.0",
)
_CONVERTER_BY_CODE.update({code: (_IGNORED, _ignored) for code in _IGNORED_CODES})

_MBUS_DEVICE_TYPE = "device_type"
_MBUS_EQUIPMENT_ID = "equipment_id"
_MBUS_READING = "reading"
_MBUS_LEGACY_GAS = "legacy_gas"
_MBUS_LEGACY_VALUE = "legacy_value"
_LEGACY_GAS_CHANNEL_BY_CODE: dict[str, int] = {}
for _channel in range(1, 256):
    _CONVERTER_BY_CODE.update(
        {
            f"0-{_channel}:24.1.0": ((_channel, _MBUS_DEVICE_TYPE), _integer),
            f"0-{_channel}:96.1.0": ((_channel, _MBUS_EQUIPMENT_ID), _identifier),
            f"0-{_channel}:96.1.1": ((_channel, _MBUS_EQUIPMENT_ID), _identifier),
            f"0-{_channel}:24.2.1": ((_channel, _MBUS_READING), _mbus_reading),
            f"0-{_channel}:24.2.3": ((_channel, _MBUS_READING), _mbus_reading),
            f"0-{_channel}:24.3.0": ((_channel, _MBUS_LEGACY_GAS), _legacy_gas_header),
            f"0-{_channel}:24.4.0": (_IGNORED, _ignored),
            f"0-{_channel}:96.3.10": (_IGNORED, _ignored),
        }
    )
    _LEGACY_GAS_CHANNEL_BY_CODE[f"0-{_channel}:24.3.0"] = _channel

_is_obis_code = re.compile(r"\d{1,3}-\d{1,3}:\d{1,3}\.\d{1,3}\.\d{1,3}", re.ASCII).fullmatch


# --- the parser --------------------------------------------------------------------------------------------


def parse_telegram(text: str, *, verify_crc: bool = True) -> Telegram:
    """Parse one P1 telegram. Leading noise before `/` and whitespace after the CRC are tolerated.

    With `verify_crc` a stated CRC must match (TelegramCRCError) and v4/v5 telegrams must state one
    (TelegramParseError); without it the CRC is still checked and reported in `crc_ok`.
    """
    if not isinstance(text, str):
        raise TelegramParseError(f"a telegram is text, not {type(text).__name__}")
    start = _header_start(text)
    end = text.find("\n!", start)
    if end < 0:
        raise TelegramParseError("the telegram has no end line starting with '!'")
    end += 1
    stated_crc = _stated_crc(text[end + 1 :])
    crc_ok = None
    if stated_crc is not None:
        computed, alternative = _crc_of(text[start : end + 1])
        expected = int(stated_crc, 16)
        crc_ok = expected in (computed, alternative)
        if verify_crc and not crc_ok:
            raise TelegramCRCError(computed, stated_crc)

    lines = text[start:end].replace("\r\n", "\n").split("\n")
    header = lines[0][1:].strip()
    if not header:
        raise TelegramParseError("the header line '/' has no meter identification")
    first_line_number = text.count("\n", 0, start) + 1
    found = _read_lines(lines, first_line_number)
    if verify_crc and stated_crc is None and found.get("version") is not None:
        raise TelegramParseError(
            f"the CRC is missing: a DSMR v4/v5 telegram (version {found['version']}) ends with '!' and 4 hex digits"
        )
    return _build_telegram(header, found, lines, first_line_number, crc_ok)


def _header_start(text: str) -> int:
    """Index of the `/` that opens the telegram: preferably at a line start, else the first one."""
    if text.startswith("/"):
        return 0
    at_line_start = text.find("\n/")
    if at_line_start >= 0:
        return at_line_start + 1
    anywhere = text.find("/")
    if anywhere < 0:
        raise TelegramParseError("the telegram has no header line starting with '/'")
    return anywhere


def _stated_crc(trailer: str) -> str | None:
    crc = trailer.strip()
    if not crc:
        return None
    if len(crc) != 4 or not _HEX_DIGITS.issuperset(crc):
        raise TelegramParseError(f"after '!' comes a CRC of 4 hex digits, not {_shorten(crc)!r}")
    return crc.upper()


def _read_lines(lines: list[str], first_line_number: int) -> dict:
    """The single pass: each line's OBIS code picks its converter; the values land in one dict."""
    found: dict = {}
    converter_by_code = _CONVERTER_BY_CODE
    index = 0
    try:
        for index in range(1, len(lines)):
            line = lines[index]
            if not line:
                continue
            paren = line.find("(")
            if paren > 0 and line[-1] == ")":
                entry = converter_by_code.get(line[:paren])
                if entry is not None:
                    key, convert = entry
                    found[key] = convert(line[paren + 1 : -1])
                elif not _is_obis_code(line[:paren]):
                    raise _BadValue("not an OBIS line A-B:C.D.E(value)")
            elif paren == 0 and line[-1] == ")":
                _read_legacy_gas_value(lines, index, found)
            elif paren > 0 and _is_obis_code(line[:paren]):
                raise _BadValue("the value is not closed with ')'")
            else:
                raise _BadValue("not an OBIS line A-B:C.D.E(value)")
    except _BadValue as problem:
        raise TelegramParseError(str(problem), line_number=first_line_number + index, line=lines[index]) from None
    return found


def _read_legacy_gas_value(lines: list[str], index: int, found: dict) -> None:
    """DSMR v2.2/v3 put the gas value on its own line `(00123.456)` right after `0-n:24.3.0(...)`."""
    previous = lines[index - 1]
    channel = _LEGACY_GAS_CHANNEL_BY_CODE.get(previous[: previous.find("(")])
    if channel is None:
        raise _BadValue("a value line must follow a 0-n:24.3.0 gas line")
    found[(channel, _MBUS_LEGACY_VALUE)] = _number_and_unit(lines[index][1:-1])


def _build_telegram(
    header: str, found: dict, lines: list[str], first_line_number: int, crc_ok: bool | None
) -> Telegram:
    get = found.get
    delivered_1, delivered_2, delivered_total = _tariffs_and_total(
        get("electricity_delivered_1"), get("electricity_delivered_2"), get("electricity_delivered_total")
    )
    returned_1, returned_2, returned_total = _tariffs_and_total(
        get("electricity_returned_1"), get("electricity_returned_2"), get("electricity_returned_total")
    )
    equipment_id = get("equipment_id")
    return Telegram(
        header=header,
        version=get("version"),
        timestamp=get("timestamp"),
        equipment_id=equipment_id if equipment_id is not None else get(_LOGICAL_DEVICE_NAME),
        electricity_delivered_1=delivered_1,
        electricity_delivered_2=delivered_2,
        electricity_returned_1=returned_1,
        electricity_returned_2=returned_2,
        electricity_delivered_total=delivered_total,
        electricity_returned_total=returned_total,
        electricity_currently_delivered=get("electricity_currently_delivered"),
        electricity_currently_returned=get("electricity_currently_returned"),
        tariff=get("tariff"),
        phase_currently_delivered_l1=get("phase_currently_delivered_l1"),
        phase_currently_delivered_l2=get("phase_currently_delivered_l2"),
        phase_currently_delivered_l3=get("phase_currently_delivered_l3"),
        phase_currently_returned_l1=get("phase_currently_returned_l1"),
        phase_currently_returned_l2=get("phase_currently_returned_l2"),
        phase_currently_returned_l3=get("phase_currently_returned_l3"),
        phase_voltage_l1=get("phase_voltage_l1"),
        phase_voltage_l2=get("phase_voltage_l2"),
        phase_voltage_l3=get("phase_voltage_l3"),
        phase_current_l1=get("phase_current_l1"),
        phase_current_l2=get("phase_current_l2"),
        phase_current_l3=get("phase_current_l3"),
        mbus=_mbus_channels(found, lines, first_line_number),
        crc_ok=crc_ok,
    )


_ZERO = Decimal(0)


def _tariffs_and_total(
    tariff_1: Decimal | None, tariff_2: Decimal | None, total: Decimal | None
) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
    """A meter with a total only books it all on tariff 1; tariffs without a total add up to one."""
    if tariff_1 is None and tariff_2 is None and total is not None:
        return total, _ZERO, total
    if total is None and tariff_1 is not None and tariff_2 is not None:
        return tariff_1, tariff_2, _EXACT.add(tariff_1, tariff_2)
    return tariff_1, tariff_2, total


def _mbus_channels(found: dict, lines: list[str], first_line_number: int) -> tuple[MBusReading, ...]:
    by_channel: dict[int, dict[str, object]] = {}
    for key, value in found.items():
        if key.__class__ is tuple:
            channel, attribute = key
            by_channel.setdefault(channel, {})[attribute] = value
    return tuple(
        _mbus_reading_of(channel, by_channel[channel], lines, first_line_number) for channel in sorted(by_channel)
    )


def _mbus_reading_of(channel: int, attributes: dict, lines: list[str], first_line_number: int) -> MBusReading:
    timestamp = value = unit = None
    if _MBUS_READING in attributes:
        timestamp, value, unit = attributes[_MBUS_READING]
    elif _MBUS_LEGACY_GAS in attributes:
        if _MBUS_LEGACY_VALUE not in attributes:
            _raise_missing_legacy_value(channel, lines, first_line_number)
        timestamp, unit = attributes[_MBUS_LEGACY_GAS]
        value, value_unit = attributes[_MBUS_LEGACY_VALUE]
        unit = value_unit or unit
    return MBusReading(
        channel=channel,
        device_type=attributes.get(_MBUS_DEVICE_TYPE),
        equipment_id=attributes.get(_MBUS_EQUIPMENT_ID),
        timestamp=timestamp,
        value=value,
        unit=unit,
    )


def _raise_missing_legacy_value(channel: int, lines: list[str], first_line_number: int) -> None:
    code = f"0-{channel}:24.3.0("
    index = next(index for index, line in enumerate(lines) if line.startswith(code))
    raise TelegramParseError(
        "the gas reading must be followed by its value line (00123.456)",
        line_number=first_line_number + index,
        line=lines[index],
    )
