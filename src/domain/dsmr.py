"""DSMR-reader API rules that need no database (DSMR-reader's API; one installation per key).

What is here: the API key (hashing, constant-time comparison), readings from form/JSON fields or from a
parsed telegram with DSMR-reader's per-field messages, which meter a reading belongs to, DSMR-reader's
lenient list parameters (ordering, offset, limit) plus our keyset cursors, and day totals priced with
`domain.statistics`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from functools import cache, cached_property, lru_cache

from domain.errors import Conflict, InvalidInput
from domain.statistics import (
    PRICE_FIELDS,
    Consumption,
    DayStatistic,
    EnergyPrices,
    HourStatistic,
    MeterPosition,
    day_bounds,
    local_hours,
    priced_day,
)
from domain.telegram import Telegram

ZERO = Decimal(0)
SECOND = timedelta(seconds=1)
EARLIEST_READING = datetime(2000, 1, 1, tzinfo=UTC)
METER_ID_MAX_LENGTH = 128
_METER_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}", re.ASCII)
_NOT_IN_METER_ID = re.compile(r"[^A-Za-z0-9._:-]", re.ASCII)
MAX_TELEGRAM_LENGTH = 65_536
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 1000
_MAX_SQL_INTEGER = 2**63 - 1

REQUIRED = "This field is required."
NOT_NULL = "This field may not be null."
INVALID_NUMBER = "A valid number is required."
INVALID_DATETIME = (
    "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss][+HH:MM|-HH:MM|Z]."
)
INVALID_DATE = "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."
NULL_CHARACTERS = "Null characters are not allowed."


class FieldErrors(InvalidInput):
    """Invalid input, told per field as DSMR-reader (Django REST framework) does: {field: [messages]}."""

    def __init__(self, errors: Mapping[str, Sequence[str]]):
        self.errors = {name: list(messages) for name, messages in errors.items()}
        first_field, messages = next(iter(self.errors.items()))
        super().__init__(f"{first_field}: {messages[0]}", field=first_field)


class _Collected:
    """Gathers every field's problems so one answer names them all."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def raise_if_any(self) -> None:
        if self.errors:
            raise FieldErrors(self.errors)


# --- the API key ---------------------------------------------------------------------------------------------


def generate_api_key() -> str:
    return secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """Keys are long random strings, so one SHA-256 is enough: there is nothing to guess by brute force."""
    return "sha256$" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def presented_key(x_authkey: str | None, authorization: str | None) -> str | None:
    """The key a caller sent: `X-AUTHKEY: <key>` or `Authorization: Token <key>`."""
    if x_authkey:
        return x_authkey.strip()
    if authorization:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "token" and credentials.strip():
            return credentials.strip()
    return None


def key_matches(presented: str | None, configured_key: str | None) -> bool:
    """Whether the caller sent the configured key (DSMR_API_KEY); digests of equal length, constant time."""
    if not presented or not configured_key:
        return False
    return hmac.compare_digest(hash_api_key(presented).encode(), _configured_key_digest(configured_key))


@lru_cache(maxsize=4)
def _configured_key_digest(configured_key: str) -> bytes:
    return hash_api_key(configured_key).encode()


# --- installations -------------------------------------------------------------------------------------------

# The installation DSMR_API_KEY belongs to, and that a database made before installations was moved into.
DEFAULT_INSTALLATION = "default"


@dataclass(frozen=True)
class Installation:
    """One electricity meter with its gas meter, reached with one API key: what is posted with the key is
    stored under `meter`, what is read with it is that meter's data only."""

    name: str
    meter: str
    equipment_id: str | None = None  # the electricity meter's id (0-0:96.1.1), learnt from its first telegram

    @property
    def joi_meter_id(self) -> str:
        """The id the JOI price plans know the meter by (compare-all, recommend)."""
        return self.equipment_id or self.meter

    def is_called(self, meter: str) -> bool:
        return meter in (self.name, self.meter, self.equipment_id)


def check_installation_name(value: str) -> str:
    if not _METER_ID.fullmatch(value or ""):
        raise InvalidInput(
            f"an installation name is 1 to {METER_ID_MAX_LENGTH} letters, digits or '.', '_', ':', '-'; got {value!r}",
            field="installation",
        )
    return value


def new_installation_key(name: str, *, environment_key_set: bool) -> tuple[str, str]:
    """A new key for the installation and its hash (only the hash is stored; the key is shown once).

    The default installation's key is DSMR_API_KEY while that is set: a stored key beside it would be a
    second key nobody expects, so it is refused (CLI `make dsmr-key` and the admin API alike)."""
    check_installation_name(name)
    if name == DEFAULT_INSTALLATION and environment_key_set:
        raise Conflict(
            f"DSMR_API_KEY is set: it is installation {DEFAULT_INSTALLATION!r}'s key. Unset it to make a key "
            "here, or make a key for another installation."
        )
    key = generate_api_key()
    return key, hash_api_key(key)


def check_telegram_meter(installation: Installation, telegram_meter: str | None) -> None:
    """A telegram whose equipment id is not the installation's meter is refused: a logger set up with the
    wrong key (or two meters behind one key) must not mix two meters' registers."""
    if telegram_meter and installation.equipment_id and telegram_meter != installation.equipment_id:
        raise InvalidInput(
            f"the telegram is from meter {telegram_meter}, but this key's installation ({installation.name}) "
            f"is meter {installation.equipment_id}; send it with that meter's own key. Nothing was stored.",
            field="telegram",
        )


def check_named_meter(installation: Installation, meter: str | None) -> None:
    """v2's optional `meter` field must name the key's own installation or meter."""
    if meter and not installation.is_called(meter):
        raise FieldErrors(
            {
                "meter": [
                    f"This key belongs to installation {installation.name} "
                    f"(meter {installation.joi_meter_id}); leave the field out or name that one."
                ]
            }
        )


# --- readings ------------------------------------------------------------------------------------------------

_REGISTERS = ("electricity_delivered_1", "electricity_returned_1", "electricity_delivered_2", "electricity_returned_2")
_POWERS = ("electricity_currently_delivered", "electricity_currently_returned")
_PHASES = tuple(f"phase_currently_{way}_l{phase}" for way in ("delivered", "returned") for phase in (1, 2, 3))
REQUIRED_READING_FIELDS = ("timestamp", *_REGISTERS, *_POWERS)


@dataclass(frozen=True)
class DsmrReading:
    """One meter reading as DSMR-reader stores it; instants in UTC, whole seconds."""

    meter: str | None
    timestamp: datetime
    electricity_delivered_1: Decimal
    electricity_returned_1: Decimal
    electricity_delivered_2: Decimal
    electricity_returned_2: Decimal
    electricity_currently_delivered: Decimal
    electricity_currently_returned: Decimal
    phase_currently_delivered_l1: Decimal | None = None
    phase_currently_delivered_l2: Decimal | None = None
    phase_currently_delivered_l3: Decimal | None = None
    phase_currently_returned_l1: Decimal | None = None
    phase_currently_returned_l2: Decimal | None = None
    phase_currently_returned_l3: Decimal | None = None
    extra_device_timestamp: datetime | None = None
    extra_device_delivered: Decimal | None = None

    @cached_property  # a store asks for it several times (reset checks, the booking)
    def position(self) -> MeterPosition:
        return MeterPosition(
            timestamp=self.timestamp,
            electricity_delivered_1=self.electricity_delivered_1,
            electricity_delivered_2=self.electricity_delivered_2,
            electricity_returned_1=self.electricity_returned_1,
            electricity_returned_2=self.electricity_returned_2,
            gas_timestamp=self.extra_device_timestamp,
            gas_delivered=self.extra_device_delivered,
        )

    def same_values(self, other: DsmrReading) -> bool:
        """Equal readings of one meter and instant (2000 equals 2000.000)."""
        return all(getattr(self, field.name) == getattr(other, field.name) for field in fields(self))


def _decimal(value: object, *, whole_digits: int = 9, places: int = 3) -> Decimal:
    """DSMR-reader's decimal field: a number (JSON) or its text (form), at most `places` decimals."""
    if isinstance(value, Decimal):
        number = value  # a telegram's values, parsed already: no round trip through text
    elif isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(INVALID_NUMBER)
    else:
        try:
            number = Decimal(value.strip() if isinstance(value, str) else str(value))
        except InvalidOperation:
            raise ValueError(INVALID_NUMBER) from None
    if not number.is_finite():
        raise ValueError(INVALID_NUMBER)
    limit, quantum = _decimal_bounds(whole_digits, places)
    if abs(number) >= limit:
        raise ValueError(f"Ensure that there are no more than {whole_digits} digits before the decimal point.")
    if number != number.quantize(quantum, rounding=ROUND_DOWN):
        raise ValueError(f"Ensure that there are no more than {places} decimal places.")
    return number


@cache
def _decimal_bounds(whole_digits: int, places: int) -> tuple[Decimal, Decimal]:
    """(10 ** whole_digits, 10 ** -places), made once per field kind rather than for every value."""
    return Decimal(10) ** whole_digits, Decimal(1).scaleb(-places)


def _meter_value(value: object) -> Decimal:
    number = _decimal(value)
    if number < 0:
        raise ValueError("Ensure this value is greater than or equal to 0.")
    return number


def parse_instant(value: object, tz: tzinfo) -> datetime:
    """ISO 8601 date and time (`T` or a space; seconds optional; offset or Z optional) as a UTC instant.

    A time without an offset is local time in `tz`. Fractions of a second are dropped: meters count seconds.
    """
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise ValueError(INVALID_DATETIME)
    try:
        moment = datetime.fromisoformat(value.strip())
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=tz)
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(INVALID_DATETIME) from None
    return moment.replace(microsecond=0)


def parse_day(value: object) -> date:
    if not isinstance(value, str):
        raise ValueError(INVALID_DATE)
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(INVALID_DATE) from None


def _check_reading_time(moment: datetime, now: datetime, max_future_skew: int) -> None:
    if moment < EARLIEST_READING:
        raise ValueError("Ensure the moment is not before 2000-01-01.")
    if moment > now + timedelta(seconds=max_future_skew):
        raise ValueError(f"Ensure the moment is not more than {max_future_skew} seconds in the future.")


def check_meter_id(value: object, name: str = "meter") -> str:
    if not isinstance(value, str):
        raise FieldErrors({name: ["Not a valid string."]})
    if not _METER_ID.fullmatch(value):
        raise FieldErrors(
            {name: [f"Use 1 to {METER_ID_MAX_LENGTH} letters, digits or the characters '.', '_', ':', '-'."]}
        )
    return value


def reading_from_fields(data: Mapping[str, object], tz: tzinfo, *, now: datetime, max_future_skew: int) -> DsmrReading:
    """A reading from the fields of POST /api/v2/datalogger/dsmrreading, or FieldErrors naming each bad one."""
    problems = _Collected()
    values: dict[str, object] = {}
    for name in REQUIRED_READING_FIELDS:
        if name not in data:
            problems.add(name, REQUIRED)
        elif data[name] is None:
            problems.add(name, NOT_NULL)
    for name in (*_REGISTERS, *_POWERS, *_PHASES, "extra_device_delivered"):
        raw = data.get(name)
        if raw is None or (raw == "" and name not in _REGISTERS + _POWERS):
            continue
        try:
            values[name] = _meter_value(raw)
        except ValueError as error:
            problems.add(name, str(error))
    for name in ("timestamp", "extra_device_timestamp"):
        raw = data.get(name)
        if raw is None or (raw == "" and name == "extra_device_timestamp"):
            continue
        try:
            values[name] = parse_instant(raw, tz)
            _check_reading_time(values[name], now, max_future_skew)
        except ValueError as error:
            problems.add(name, str(error))
    meter = data.get("meter")
    if meter not in (None, ""):
        try:
            values["meter"] = check_meter_id(meter)
        except FieldErrors as error:
            problems.errors.update(error.errors)
    if ("extra_device_timestamp" in values) != ("extra_device_delivered" in values) and not problems.errors:
        missing = "extra_device_timestamp" if "extra_device_delivered" in values else "extra_device_delivered"
        problems.add(missing, "Give the gas meter's timestamp and value together, or neither.")
    problems.raise_if_any()
    return DsmrReading(meter=values.pop("meter", None), **values)


def reading_from_telegram(telegram: Telegram, *, received_at: datetime, max_future_skew: int) -> DsmrReading:
    """What a telegram says, as a reading. DSMR v2.2/v3 telegrams carry no time: they are stamped on arrival."""
    timestamp = telegram.timestamp or received_at.astimezone(UTC).replace(microsecond=0)
    missing = [name for name in (*_REGISTERS, *_POWERS) if getattr(telegram, name) is None]
    if missing:
        raise InvalidInput(f"the telegram lacks {', '.join(missing)}", field="telegram")
    values: dict[str, object] = {}
    try:
        _check_reading_time(timestamp, received_at, max_future_skew)
        for name in (*_REGISTERS, *_POWERS, *_PHASES):
            raw = getattr(telegram, name)
            values[name] = None if raw is None else _meter_value(raw)
        gas_value = telegram.gas_delivered
        gas_time = telegram.gas_timestamp
        if gas_value is not None and gas_time is not None:
            values["extra_device_delivered"] = _meter_value(gas_value)
            values["extra_device_timestamp"] = gas_time
    except ValueError as error:
        raise InvalidInput(f"the telegram's values are out of range: {error}", field="telegram") from None
    return DsmrReading(meter=meter_from_equipment_id(telegram.equipment_id), timestamp=timestamp, **values)


def meter_from_equipment_id(equipment_id: str | None) -> str | None:
    """The meter id of a telegram: its equipment id, with characters a meter id cannot hold replaced by '_'."""
    if not equipment_id or not equipment_id.strip():
        return None
    return _NOT_IN_METER_ID.sub("_", equipment_id.strip())[:METER_ID_MAX_LENGTH]


def check_telegram_text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("Invalid data: the form field 'telegram' is required", field="telegram")
    if len(value) > MAX_TELEGRAM_LENGTH:
        raise InvalidInput(
            f"Invalid data: a telegram is at most {MAX_TELEGRAM_LENGTH} characters, got {len(value)}", field="telegram"
        )
    return value


_COUNTER_CODES = {
    "0-0:96.7.21": "power_failure_count",
    "0-0:96.7.9": "long_power_failure_count",
    "1-0:32.32.0": "voltage_sag_count_l1",
    "1-0:52.32.0": "voltage_sag_count_l2",
    "1-0:72.32.0": "voltage_sag_count_l3",
    "1-0:32.36.0": "voltage_swell_count_l1",
    "1-0:52.36.0": "voltage_swell_count_l2",
    "1-0:72.36.0": "voltage_swell_count_l3",
}
# A counter line, with the newline before it: searched for as "\n" then a code, where `^` with
# re.MULTILINE was tried at every character of the telegram (2.5 times as long).
_COUNTER_LINE = re.compile(
    r"\n(" + "|".join(map(re.escape, _COUNTER_CODES)) + r")\((\d{1,9})\)[ \t\r\f\v]*(?=\n|\Z)", re.ASCII
)
METER_COUNTERS = tuple(_COUNTER_CODES.values())


def meter_counters(telegram_text: str) -> dict[str, int]:
    """DSMR-reader's meter statistics counters (power failures, voltage sags and swells) of an accepted telegram:
    each line `<code>(<1 to 9 digits>)` with only white space after it (of a repeated line, the last).

    The parser checks these lines but does not keep them; they are read here from the same text.
    """
    return {_COUNTER_CODES[code]: int(value) for code, value in _COUNTER_LINE.findall("\n" + telegram_text)}


@dataclass(frozen=True)
class TelegramFacts:
    """What meter statistics keep of an accepted telegram (DSMR-reader's MeterStatistics)."""

    timestamp: datetime
    dsmr_version: str | None
    electricity_tariff: int | None
    counters: Mapping[str, int]
    text: str


def telegram_facts(telegram: Telegram, reading: DsmrReading, text: str) -> TelegramFacts:
    return TelegramFacts(
        timestamp=reading.timestamp,
        dsmr_version=telegram.version[:16] if telegram.version else None,
        electricity_tariff=telegram.tariff,
        counters=meter_counters(text),
        text=stored_telegram_text(text),
    )


def stored_telegram_text(text: str) -> str:
    """The telegram as kept for meter statistics: text databases accept (no NUL, no lone surrogates)."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


# --- list parameters -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageRequest:
    """Which slice of a list to answer. `after`/`before` are keyset cursors: the sort key of the last row of
    the previous page (or the first of the next one), so deep pages seek instead of skipping `offset` rows."""

    offset: int = 0
    limit: int = DEFAULT_PAGE_SIZE
    descending: bool = False
    after: tuple[int, ...] | None = None
    before: tuple[int, ...] | None = None


def _lenient_int(value: object, *, strictly_positive: bool) -> int | None:
    """DSMR-reader (Django REST framework) ignores a limit or offset it cannot read rather than failing."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit() and value.strip().isascii() and len(value.strip()) < 19:
        number = int(value.strip())
    else:
        return None
    if number < 0 or (strictly_positive and number == 0):
        return None
    return number


_CURSOR_PART = re.compile(r"-?\d{1,18}", re.ASCII)


def _cursor(value: object, name: str, key_length: int) -> tuple[int, ...] | None:
    if value in (None, ""):
        return None
    parts = value.split("_") if isinstance(value, str) else []
    if len(parts) != key_length or not all(_CURSOR_PART.fullmatch(part) for part in parts):
        raise FieldErrors({name: ["Invalid cursor."]})
    return tuple(int(part) for part in parts)


def page_request(
    *,
    ordering: object,
    field: str,
    offset: object,
    limit: object,
    after: object = None,
    before: object = None,
    key_length: int = 1,
) -> PageRequest:
    """DSMR-reader's `ordering` (`field` or `-field`; anything else keeps the default, ascending), `offset` and
    `limit` (unreadable values fall back to 0 and 25; limit is capped at MAX_PAGE_SIZE), and our cursors."""
    descending = False
    if isinstance(ordering, str):
        for term in ordering.split(","):
            if term.strip() in (field, f"-{field}"):
                descending = term.strip().startswith("-")
                break
    size = _lenient_int(limit, strictly_positive=True)
    page = PageRequest(
        offset=_lenient_int(offset, strictly_positive=False) or 0,
        limit=min(size, MAX_PAGE_SIZE) if size else DEFAULT_PAGE_SIZE,
        descending=descending,
        after=_cursor(after, "after", key_length),
        before=_cursor(before, "before", key_length),
    )
    if page.after is not None and page.before is not None:
        raise FieldErrors({"after": ["Give either after or before, not both."]})
    return page


def cursor_text(key: Sequence[int]) -> str:
    return "_".join(str(part) for part in key)


def page_link_params(
    params: Mapping[str, str],
    page: PageRequest,
    count: int,
    first_key: Sequence[int] | None,
    last_key: Sequence[int] | None,
) -> tuple[dict[str, str] | None, dict[str, str] | None]:
    """Query parameters of the next and previous pages, as Django REST framework's limit/offset pagination
    writes them, plus a cursor so that following the links seeks by key instead of counting rows."""
    base = {name: value for name, value in params.items() if name not in ("after", "before", "offset", "limit")}
    following = None
    if page.offset + page.limit < count and last_key is not None:
        following = {**base, "limit": str(page.limit), "offset": str(page.offset + page.limit)}
        following["after"] = cursor_text(last_key)
    preceding = None
    if page.offset > 0:
        preceding = {**base, "limit": str(page.limit)}
        if page.offset - page.limit > 0:
            preceding["offset"] = str(page.offset - page.limit)
            if first_key is not None:
                preceding["before"] = cursor_text(first_key)
    return following, preceding


@dataclass(frozen=True)
class TimeWindow:
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # inclusive


def deletion_window(start: str | None, end: str | None, every: bool, tz: tzinfo) -> TimeWindow:
    """The window of readings an operator deletes (both ends inclusive; an open end reaches the first or
    last reading). One end at least, or `every` for all of them: a forgotten bound must not delete
    everything; a window with `every` is contradictory and refused too."""
    if every and (start or end):
        raise InvalidInput(
            "give a window (from and/or to; --from/--to in the CLI) or all=true (--all), not both", field="all"
        )
    if not (start or end or every):
        raise InvalidInput(
            "give from and/or to (--from/--to in the CLI), or all=true (--all) for every reading", field="from"
        )
    return TimeWindow(operator_instant(start, tz, "from"), operator_instant(end, tz, "to"))


def operator_instant(text: str | None, tz: tzinfo, field: str = "from") -> datetime | None:
    """Epoch seconds or ISO 8601; an ISO time without an offset is read in `tz`."""
    if text is None or text == "":
        return None
    if text.strip().lstrip("-").isdigit():
        try:
            return datetime.fromtimestamp(int(text), UTC)
        except (OverflowError, OSError, ValueError):
            raise InvalidInput(f"{text!r} is out of range", field=field) from None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{text!r} is neither epoch seconds nor an ISO 8601 time", field=field) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=tz)).astimezone(UTC)


def instant_window(gte: object, lte: object, tz: tzinfo, names: tuple[str, str]) -> TimeWindow:
    """`…__gte` and `…__lte` filters (local time unless an offset is given); unreadable ones are named."""
    problems = _Collected()
    bounds = []
    for name, value in zip(names, (gte, lte), strict=True):
        try:
            bounds.append(None if value in (None, "") else parse_instant(value, tz))
        except ValueError:
            problems.add(name, "Enter a valid date/time.")
            bounds.append(None)
    problems.raise_if_any()
    return TimeWindow(*bounds)


def day_window(gte: object, lte: object) -> tuple[date | None, date | None]:
    problems = _Collected()
    bounds = []
    for name, value in (("day__gte", gte), ("day__lte", lte)):
        try:
            bounds.append(None if value in (None, "") else parse_day(value))
        except ValueError:
            problems.add(name, "Enter a valid date.")
            bounds.append(None)
    problems.raise_if_any()
    return bounds[0], bounds[1]


def meter_filter(value: object) -> str | None:
    """The optional `meter` filter of every GET (None = the key's installation, its only meter)."""
    if value in (None, ""):
        return None
    return check_meter_id(value)


# --- keeping statistics current ------------------------------------------------------------------------------


def local_hour_spans(day: date, tz: tzinfo) -> list[tuple[datetime, datetime]]:
    starts = local_hours(day, tz)
    return list(zip(starts, [*starts[1:], day_bounds(day, tz)[1]], strict=True))


def day_of_hour(hour_start: datetime, tz: tzinfo) -> date:
    return hour_start.astimezone(tz).date()


_USE_FIELDS = ("electricity1", "electricity2", "electricity1_returned", "electricity2_returned")


def day_totals(
    day: date,
    used: Mapping[str, Decimal],
    gas: Decimal | None,
    tz: tzinfo,
    contracts: Iterable[EnergyPrices],
) -> DayStatistic:
    """A day statistic priced by `domain.statistics` from the day's totals (electricity1, electricity2,
    electricity1_returned, electricity2_returned and gas): the prices and rounding of `day_statistics`."""
    return priced_day(day, Consumption(*(used[name] for name in _USE_FIELDS), gas=gas), contracts)


def day_from_hours(
    day: date, hours: Sequence[HourStatistic], tz: tzinfo, contracts: Iterable[EnergyPrices]
) -> DayStatistic | None:
    """The day statistic as `day_statistics` defines it, the sum of the day's hours, priced; None without hours."""
    if not hours:
        return None
    used = {name: sum((getattr(hour, name) for hour in hours), ZERO) for name in _USE_FIELDS}
    gas_hours = [hour.gas for hour in hours if hour.gas is not None]
    return day_totals(day, used, sum(gas_hours, ZERO) if gas_hours else None, tz, contracts)


def repriced(statistic: DayStatistic, tz: tzinfo, contracts: Iterable[EnergyPrices]) -> DayStatistic:
    """The same day's use priced with `contracts` (after a contract was added)."""
    used = {name: getattr(statistic, name) for name in _USE_FIELDS}
    return day_totals(statistic.day, used, statistic.gas, tz, contracts)


# --- energy supplier prices ----------------------------------------------------------------------------------

DESCRIPTION_MAX_LENGTH = 255


def prices_from_fields(data: Mapping[str, object]) -> EnergyPrices:
    """A contract from POST /api/v2/consumption/energy-supplier-prices (DSMR-reader's field names)."""
    problems = _Collected()
    values: dict[str, object] = {}
    for name in ("start", "end"):
        raw = data.get(name)
        if raw in (None, ""):
            if name == "start":
                problems.add(name, REQUIRED if name not in data else NOT_NULL)
            continue
        try:
            values[name] = parse_day(raw)
        except ValueError as error:
            problems.add(name, str(error))
    description = data.get("description")
    if "description" not in data:
        problems.add("description", REQUIRED)
    elif description is None:
        problems.add("description", NOT_NULL)
    elif description == "":
        problems.add("description", "This field may not be blank.")
    elif not isinstance(description, str):
        problems.add("description", "Not a valid string.")
    elif "\x00" in description:
        problems.add("description", NULL_CHARACTERS)
    elif len(description) > DESCRIPTION_MAX_LENGTH:
        problems.add("description", f"Ensure this field has no more than {DESCRIPTION_MAX_LENGTH} characters.")
    elif not _encodable(description):
        problems.add("description", "Not valid text.")
    else:
        values["description"] = description
    for name in PRICE_FIELDS:
        raw = data.get(name)
        if raw in (None, ""):
            continue
        try:
            values[name] = _decimal(raw, whole_digits=5, places=6)
        except ValueError as error:
            problems.add(name, str(error))
    if "start" in values and values.get("end") is not None and values["end"] < values["start"]:
        problems.add("end", "Ensure the end is not before the start.")
    problems.raise_if_any()
    return EnergyPrices(end=values.pop("end", None), **values)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
