"""OMS collector/exporter domain: validate posted OMS messages, fingerprint them, flatten them to CSV rows.

An OMS message carries one device and a list of records. `storagenr 0` records hold the current values and
the message time (`Time Point (time & date)`); `storagenr 1` records hold the billing due date
(`Time Point (date)`) and the values at that date. Higher storage numbers (older history) are validated and
kept in the message but have no column in the export.
"""

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from domain.errors import InvalidInput

MESSAGE_TIME_DIMENSION = "Time Point (time & date)"
DUE_DATE_DIMENSION = "Time Point (date)"
TIME_POINT_PREFIX = "Time Point"
CURRENT_STORAGE = 0
DUE_DATE_STORAGE = 1

CSV_HEADER = [
    "Device ID",
    "Device manufacturer",
    "Device type",
    "Device version",
    "Message date time",
    "Measurement dimension",
    "Value new measurement",
    "Value measurement in due date",
    "Due date",
]
MESSAGE_TIME_FORMAT = "%Y.%m.%d %H:%M:%S.%f"
DUE_DATE_FORMAT = "%Y.%m.%d"
_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_DEVICE_FIELDS = ("identnr", "manufacturer", "type", "version", "status", "accessnr")
_RECORD_INT_FIELDS = ("storagenr", "tariff", "subunit")

OmsValue = Decimal | int | datetime
CsvCell = str | int | Decimal


@dataclass(frozen=True)
class OmsDevice:
    identnr: int
    manufacturer: int
    type: int
    version: int
    status: int
    accessnr: int


@dataclass(frozen=True)
class OmsRecord:
    dimension: str
    value: OmsValue
    storagenr: int
    tariff: int
    subunit: int

    @property
    def key(self) -> tuple[str, int, int, int]:
        return (self.dimension, self.storagenr, self.tariff, self.subunit)

    @property
    def is_time_point(self) -> bool:
        return self.dimension.startswith(TIME_POINT_PREFIX)


@dataclass(frozen=True)
class OmsMessage:
    device: OmsDevice
    records: tuple[OmsRecord, ...]
    message_time: datetime | None


@dataclass(frozen=True)
class ExportRow:
    device_id: int
    manufacturer: int
    device_type: int
    device_version: int
    message_time: datetime | None
    dimension: str
    value_new: Decimal | int | None
    value_due: Decimal | int | None
    due_date: datetime | None


# --- parsing and validation -------------------------------------------------------------------------------


def message_from_json(payload: dict) -> OmsMessage:
    """Build a message from a schema-valid request body, checking what the schema cannot.

    Time Point values become aware datetimes that keep their written offset (naive means UTC); other values
    become Decimals. Records repeated with the same value are kept once; repeated with a different value they
    are rejected, as is a message without a storagenr-0 `Time Point (time & date)` record.
    """
    device = _device_from_json(payload.get("device"))
    records = _records_from_json(payload.get("data"))
    return OmsMessage(device=device, records=records, message_time=_message_time(records))


def _device_from_json(device: object) -> OmsDevice:
    if not isinstance(device, dict):
        raise InvalidInput("device: must be an object", field="device")
    values = {name: _require_int(device.get(name), f"device.{name}") for name in _DEVICE_FIELDS}
    return OmsDevice(**values)


def _records_from_json(data: object) -> tuple[OmsRecord, ...]:
    if not isinstance(data, list) or not data:
        raise InvalidInput("data: must be a non-empty array of records", field="data")
    first_seen: dict[tuple[str, int, int, int], tuple[int, OmsRecord]] = {}
    for index, item in enumerate(data):
        record = _record_from_json(item, f"data[{index}]")
        if record.key not in first_seen:
            first_seen[record.key] = (index, record)
        elif first_seen[record.key][1].value != record.value:
            earlier_index = first_seen[record.key][0]
            raise InvalidInput(
                f"data[{index}].value: {item['value']!r} contradicts data[{earlier_index}] "
                "(same dimension, storagenr, tariff and subunit, different value)",
                field=f"data[{index}].value",
            )
    return tuple(record for _, record in first_seen.values())


def _record_from_json(item: object, where: str) -> OmsRecord:
    if not isinstance(item, dict):
        raise InvalidInput(f"{where}: must be an object", field=where)
    dimension = item.get("dimension")
    if not isinstance(dimension, str) or not dimension.strip():
        raise InvalidInput(f"{where}.dimension: must be a non-empty string", field=f"{where}.dimension")
    numbers = {name: _require_int(item.get(name), f"{where}.{name}") for name in _RECORD_INT_FIELDS}
    if dimension.startswith(TIME_POINT_PREFIX):
        value = _parse_datetime(item.get("value"), f"{where}.value", dimension)
    else:
        value = _parse_number(item.get("value"), f"{where}.value", dimension)
    return OmsRecord(dimension=dimension, value=value, **numbers)


def _require_int(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"{field}: {value!r} is not an integer >= 0", field=field)
    return value


def _parse_datetime(value: object, field: str, dimension: str) -> datetime:
    problem = f"{field}: {value!r} is not a datetime for dimension {dimension!r}"
    if not isinstance(value, str):
        raise InvalidInput(problem, field=field)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(problem, field=field) from None
    parsed = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    try:
        _as_utc(parsed)  # 0001-01-01T00:00+01:00 has no UTC instant; fingerprint and ordering need one
    except OverflowError:
        raise InvalidInput(f"{field}: {value!r} is out of the representable date range", field=field) from None
    return parsed


def _parse_number(value: object, field: str, dimension: str) -> Decimal:
    # A numeric string is refused on purpose: the device sends numbers, a string means a mix-up upstream.
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise InvalidInput(f"{field}: {value!r} is not a number for dimension {dimension!r}", field=field)
    number = Decimal(str(value))
    if not number.is_finite():
        raise InvalidInput(f"{field}: {value!r} is not a finite number", field=field)
    return number


def _message_time(records: tuple[OmsRecord, ...]) -> datetime:
    candidates = [r for r in records if r.dimension == MESSAGE_TIME_DIMENSION and r.storagenr == CURRENT_STORAGE]
    if not candidates:
        raise InvalidInput(
            f"data: no {MESSAGE_TIME_DIMENSION!r} record with storagenr 0; "
            "the export needs the message time to pick each device's newest message",
            field="data",
        )
    base = [r for r in candidates if (r.tariff, r.subunit) == (0, 0)]
    return _as_utc((base or candidates)[0].value)


def _as_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# --- identity and ordering --------------------------------------------------------------------------------


def manufacturer_code(number: int) -> str:
    """The three FLAG letters packed in an OMS manufacturer number (5317 -> "EFE"); the number if invalid."""
    return _flag_letters(number) or str(number)


def manufacturer_number(code: str) -> int | None:
    """The number three FLAG letters pack into ("EFE" -> 5317); None for anything but three letters A-Z."""
    if len(code) != 3 or not all("A" <= letter <= "Z" for letter in code.upper()):
        return None
    first, second, third = (ord(letter) - 64 for letter in code.upper())
    return (first << 10) | (second << 5) | third


def _flag_letters(number: int) -> str | None:
    if not 0 <= number <= 0x7FFF:
        return None
    letter_numbers = ((number >> 10) & 31, (number >> 5) & 31, number & 31)
    if not all(1 <= n <= 26 for n in letter_numbers):
        return None
    return "".join(chr(n + 64) for n in letter_numbers)


def message_fingerprint(message: OmsMessage) -> str:
    """SHA-256 hex of what makes a message the same message: device identity, message time and records.

    Status and access number are left out (they describe the transmission, not the reading); records are
    compared as a set, by instant for datetimes and by numeric value for numbers (29690 == 29690.0).
    """
    device = message.device
    canonical = {
        "device": [device.identnr, device.manufacturer, device.type, device.version],
        "message_time": _canonical_value(message.message_time) if message.message_time else None,
        "records": sorted({(*record.key, _canonical_value(record.value)) for record in message.records}),
    }
    encoded = json.dumps(canonical, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(encoded).hexdigest()


def _canonical_value(value: OmsValue) -> str:
    if isinstance(value, datetime):
        return _as_utc(value).isoformat()
    return _plain_number_text(Decimal(value))


def is_newer(candidate_time: datetime, current_time: datetime | None) -> bool:
    """Whether a message at candidate_time should replace the one stored at current_time.

    Strictly newer only: on a tie the first stored message stays, so a late or repeated post never
    replaces what is already exported. Nothing stored (None) means any candidate wins. Naive means UTC.
    """
    return current_time is None or _as_utc(candidate_time) > _as_utc(current_time)


# --- flattening -------------------------------------------------------------------------------------------


def export_rows(device: OmsDevice, message: OmsMessage) -> list[ExportRow]:
    """Flatten one message to export rows: one per measured (non Time Point) dimension, in order of first use.

    Records with tariff 0 and subunit 0 form the plain row for their dimension. Records with another tariff
    or subunit get a row of their own whose dimension is suffixed (`Energy (kWh) [tariff 1]`,
    `Volume (m3) [subunit 2]`, `... [tariff 1] [subunit 2]`), so no value is dropped and a message without
    them flattens exactly as before. A row's due date is the storagenr-1 `Time Point (date)` with the same
    tariff and subunit, else the plain one. value_new comes from storagenr 0 and value_due from storagenr 1;
    either is None when that storage has no such record. Storage numbers above 1 are not exported.
    """
    values: dict[tuple[str, int, int], dict[int, OmsValue]] = {}
    due_dates: dict[tuple[int, int], datetime] = {}
    for record in message.records:
        if record.storagenr not in (CURRENT_STORAGE, DUE_DATE_STORAGE):
            continue
        if record.dimension == DUE_DATE_DIMENSION and record.storagenr == DUE_DATE_STORAGE:
            due_dates.setdefault((record.tariff, record.subunit), record.value)
        if not record.is_time_point:
            row_key = (record.dimension, record.tariff, record.subunit)
            values.setdefault(row_key, {}).setdefault(record.storagenr, record.value)
    return [
        ExportRow(
            device_id=device.identnr,
            manufacturer=device.manufacturer,
            device_type=device.type,
            device_version=device.version,
            message_time=message.message_time,
            dimension=_row_dimension(dimension, tariff, subunit),
            value_new=by_storage.get(CURRENT_STORAGE),
            value_due=by_storage.get(DUE_DATE_STORAGE),
            due_date=due_dates.get((tariff, subunit), due_dates.get((0, 0))),
        )
        for (dimension, tariff, subunit), by_storage in values.items()
    ]


def _row_dimension(dimension: str, tariff: int, subunit: int) -> str:
    suffixes = ([f"[tariff {tariff}]"] if tariff else []) + ([f"[subunit {subunit}]"] if subunit else [])
    return " ".join([dimension, *suffixes])


# --- CSV --------------------------------------------------------------------------------------------------


def csv_cells(row: ExportRow, *, manufacturer_as_flag: bool = False) -> list[CsvCell]:
    """The nine CSV cells of a row: numbers stay numbers, None is empty, formula-like text is neutralised."""
    manufacturer = row.manufacturer
    if manufacturer_as_flag:
        manufacturer = _flag_letters(row.manufacturer) or row.manufacturer  # an invalid code stays a number
    cells: list[CsvCell] = [
        row.device_id,
        manufacturer,
        row.device_type,
        row.device_version,
        _as_utc(row.message_time).strftime(MESSAGE_TIME_FORMAT) if row.message_time else "",
        row.dimension,
        _number_cell(row.value_new),
        _number_cell(row.value_due),
        # The due date is a calendar date as the device wrote it, so its own offset is kept (no UTC shift).
        row.due_date.strftime(DUE_DATE_FORMAT) if row.due_date else "",
    ]
    return [_neutralise_formula(cell) if isinstance(cell, str) else cell for cell in cells]


def iter_csv_lines(rows: Iterable[ExportRow], *, manufacturer_as_flag: bool = False) -> Iterator[bytes]:
    """Stream the export as UTF-8 bytes, one chunk per line (header first), never holding the whole file."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def encoded_line(cells: list) -> bytes:
        buffer.seek(0)
        buffer.truncate(0)
        writer.writerow(cells)
        return buffer.getvalue().encode("utf-8")

    yield encoded_line(CSV_HEADER)
    for row in rows:
        yield encoded_line(csv_cells(row, manufacturer_as_flag=manufacturer_as_flag))


def _number_cell(value: OmsValue | None) -> CsvCell:
    if value is None:
        return ""
    if isinstance(value, datetime):  # only reachable for a hand-built record; shown, never computed with
        return _neutralise_formula(value.isoformat())
    number = Decimal(value)
    if number == number.to_integral_value():
        return int(number)
    return _PlainDecimal(_plain_number_text(number))


def _plain_number_text(number: Decimal) -> str:
    if number == 0:
        return "0"  # also turns -0 and 0E+3 into a plain 0
    return format(number.normalize(), "f")


class _PlainDecimal(Decimal):
    """A Decimal whose str() never uses scientific notation (str(Decimal("0.0000001")) is "1E-7")."""

    def __str__(self) -> str:
        return format(self, "f")


def _neutralise_formula(text: str) -> str:
    # A leading quote makes spreadsheets show the text instead of running it as a formula (CSV injection).
    return "'" + text if text.startswith(_FORMULA_TRIGGERS) else text
