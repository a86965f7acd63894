import copy
import csv
import io
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidInput
from domain.oms import (
    CSV_HEADER,
    ExportRow,
    OmsDevice,
    OmsMessage,
    OmsRecord,
    csv_cells,
    export_rows,
    is_newer,
    iter_csv_lines,
    manufacturer_code,
    message_fingerprint,
    message_from_json,
)

SEED_PAYLOAD = {
    "data": [
        {
            "value": "2020-06-26T06:49:00.000000",
            "tariff": 0,
            "subunit": 0,
            "dimension": "Time Point (time & date)",
            "storagenr": 0,
        },
        {"value": 29690, "tariff": 0, "subunit": 0, "dimension": "Energy (kWh)", "storagenr": 0},
        {
            "value": "2019-09-30T00:00:00.000000",
            "tariff": 0,
            "subunit": 0,
            "dimension": "Time Point (date)",
            "storagenr": 1,
        },
        {"value": 16274, "tariff": 0, "subunit": 0, "dimension": "Energy (kWh)", "storagenr": 1},
    ],
    "device": {
        "type": 4,
        "status": 0,
        "identnr": 83251076,
        "version": 0,
        "accessnr": 156,
        "manufacturer": 5317,
    },
}


def seed_payload_with(*extra_records: dict) -> dict:
    payload = copy.deepcopy(SEED_PAYLOAD)
    payload["data"].extend(extra_records)
    return payload


def record(dimension: str, value, storagenr: int = 0, tariff: int = 0, subunit: int = 0) -> dict:
    return {
        "value": value,
        "tariff": tariff,
        "subunit": subunit,
        "dimension": dimension,
        "storagenr": storagenr,
    }


def rows_of(payload: dict) -> list[ExportRow]:
    message = message_from_json(payload)
    return export_rows(message.device, message)


def csv_text(rows, **options) -> str:
    return b"".join(iter_csv_lines(rows, **options)).decode("utf-8")


def parsed_csv(rows, **options) -> list[list[str]]:
    return list(csv.reader(io.StringIO(csv_text(rows, **options), newline="")))


def a_row(**changes) -> ExportRow:
    fields = {
        "device_id": 80337,
        "manufacturer": 5317,
        "device_type": 4,
        "device_version": 0,
        "message_time": datetime(2021, 10, 12, tzinfo=UTC),
        "dimension": "Energy (kWh)",
        "value_new": Decimal("29600"),
        "value_due": Decimal("16274"),
        "due_date": datetime(2021, 10, 30, tzinfo=UTC),
    }
    return ExportRow(**(fields | changes))


# --- parsing ---------------------------------------------------------------------------------------------


def test_the_seed_message_parses_into_device_records_and_utc_message_time():
    message = message_from_json(SEED_PAYLOAD)

    assert message.device == OmsDevice(identnr=83251076, manufacturer=5317, type=4, version=0, status=0, accessnr=156)
    assert message.message_time == datetime(2020, 6, 26, 6, 49, tzinfo=UTC)
    assert message.records[1] == OmsRecord("Energy (kWh)", Decimal("29690"), storagenr=0, tariff=0, subunit=0)
    assert message.records[2].value == datetime(2019, 9, 30, tzinfo=UTC)


def test_a_message_time_with_an_offset_is_converted_to_utc():
    payload = copy.deepcopy(SEED_PAYLOAD)
    payload["data"][0]["value"] = "2020-06-26T08:49:00+02:00"

    assert message_from_json(payload).message_time == datetime(2020, 6, 26, 6, 49, tzinfo=UTC)


def test_a_message_time_with_z_is_utc():
    payload = copy.deepcopy(SEED_PAYLOAD)
    payload["data"][0]["value"] = "2020-06-26T06:49:00Z"

    assert message_from_json(payload).message_time == datetime(2020, 6, 26, 6, 49, tzinfo=UTC)


def test_float_values_become_exact_decimals():
    message = message_from_json(seed_payload_with(record("Volume (m3)", 12.1)))

    assert message.records[-1].value == Decimal("12.1")


def test_a_time_point_value_that_is_not_a_datetime_is_rejected_naming_the_record_and_field():
    payload = seed_payload_with(record("Time Point (date)", "abc", storagenr=2))

    with pytest.raises(InvalidInput) as error:
        message_from_json(payload)

    assert error.value.field == "data[4].value"
    assert error.value.detail == "data[4].value: 'abc' is not a datetime for dimension 'Time Point (date)'"


def test_a_numeric_time_point_value_is_rejected():
    with pytest.raises(InvalidInput, match=r"data\[4\]\.value: 5 is not a datetime"):
        message_from_json(seed_payload_with(record("Time Point (date)", 5, storagenr=2)))


def test_a_measurement_given_as_a_numeric_string_is_rejected():
    with pytest.raises(InvalidInput) as error:
        message_from_json(seed_payload_with(record("Volume (m3)", "12.5")))

    assert error.value.field == "data[4].value"
    assert "is not a number for dimension 'Volume (m3)'" in error.value.detail


@pytest.mark.parametrize("not_finite", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinity_are_rejected(not_finite):
    with pytest.raises(InvalidInput, match="not a finite number") as error:
        message_from_json(seed_payload_with(record("Volume (m3)", not_finite)))

    assert error.value.field == "data[4].value"


def test_a_boolean_measurement_is_rejected():
    with pytest.raises(InvalidInput, match="not a number"):
        message_from_json(seed_payload_with(record("Volume (m3)", True)))


def test_a_repeated_record_with_a_different_value_is_rejected():
    with pytest.raises(InvalidInput) as error:
        message_from_json(seed_payload_with(record("Energy (kWh)", 1, storagenr=0)))

    assert error.value.field == "data[4].value"
    assert "contradicts data[1]" in error.value.detail


def test_a_repeated_record_with_the_same_value_is_kept_once():
    message = message_from_json(seed_payload_with(record("Energy (kWh)", 29690.0, storagenr=0)))

    assert len(message.records) == 4


def test_a_message_without_a_current_time_and_date_is_rejected_saying_why():
    payload = copy.deepcopy(SEED_PAYLOAD)
    payload["data"][0]["storagenr"] = 1

    with pytest.raises(InvalidInput, match="export needs the message time") as error:
        message_from_json(payload)

    assert error.value.field == "data"


def test_an_empty_dimension_is_rejected_naming_the_field():
    with pytest.raises(InvalidInput) as error:
        message_from_json(seed_payload_with(record(" ", 1)))

    assert error.value.field == "data[4].dimension"


def test_a_missing_device_field_is_rejected_naming_it():
    payload = copy.deepcopy(SEED_PAYLOAD)
    del payload["device"]["identnr"]

    with pytest.raises(InvalidInput) as error:
        message_from_json(payload)

    assert error.value.field == "device.identnr"


# --- manufacturer, fingerprint, ordering -----------------------------------------------------------------


def test_manufacturer_5317_is_efe():
    assert manufacturer_code(5317) == "EFE"


@pytest.mark.parametrize("invalid", [0, 27, 0x8000, -1])
def test_a_manufacturer_number_without_valid_letters_stays_a_number(invalid):
    assert manufacturer_code(invalid) == str(invalid)


def test_the_same_message_posted_twice_has_the_same_fingerprint():
    assert message_fingerprint(message_from_json(SEED_PAYLOAD)) == message_fingerprint(
        message_from_json(copy.deepcopy(SEED_PAYLOAD))
    )


def test_the_fingerprint_ignores_record_order_number_spelling_and_transmission_fields():
    reordered = copy.deepcopy(SEED_PAYLOAD)
    reordered["data"].reverse()
    reordered["data"][2]["value"] = 29690.0
    reordered["device"]["accessnr"] = 157
    reordered["data"][3]["value"] = "2020-06-26T08:49:00+02:00"

    assert message_fingerprint(message_from_json(reordered)) == message_fingerprint(message_from_json(SEED_PAYLOAD))


def test_a_different_value_or_device_changes_the_fingerprint():
    seed = message_fingerprint(message_from_json(SEED_PAYLOAD))
    other_value = copy.deepcopy(SEED_PAYLOAD)
    other_value["data"][1]["value"] = 29691
    other_device = copy.deepcopy(SEED_PAYLOAD)
    other_device["device"]["identnr"] = 1

    assert message_fingerprint(message_from_json(other_value)) != seed
    assert message_fingerprint(message_from_json(other_device)) != seed


def test_a_late_arriving_older_message_never_replaces_a_newer_one():
    newer = datetime(2021, 10, 12, tzinfo=UTC)
    older = newer - timedelta(days=1)

    assert is_newer(newer, older)
    assert not is_newer(older, newer)


def test_on_equal_message_times_the_first_stored_message_stays():
    moment = datetime(2021, 10, 12, tzinfo=UTC)

    assert not is_newer(moment, moment)


def test_any_message_is_newer_than_nothing_stored():
    assert is_newer(datetime(2021, 10, 12, tzinfo=UTC), None)


def test_is_newer_compares_instants_across_offsets():
    utc_noon = datetime(2021, 10, 12, 12, tzinfo=UTC)
    same_instant_in_cest = datetime(2021, 10, 12, 14, tzinfo=timezone(timedelta(hours=2)))

    assert not is_newer(same_instant_in_cest, utc_noon)


def test_out_of_order_arrival_keeps_the_newest_message_per_device():
    times = ["2021-10-12T00:00:00", "2021-10-10T00:00:00", "2021-10-12T00:00:00", "2021-10-11T00:00:00"]
    kept = None
    for index, time in enumerate(times):
        payload = copy.deepcopy(SEED_PAYLOAD)
        payload["data"][0]["value"] = time
        payload["data"][1]["value"] = index
        message = message_from_json(payload)
        if kept is None or is_newer(message.message_time, kept.message_time):
            kept = message

    assert kept.message_time == datetime(2021, 10, 12, tzinfo=UTC)
    assert export_rows(kept.device, kept)[0].value_new == 0


# --- flattening ------------------------------------------------------------------------------------------


def test_the_seed_message_flattens_to_the_seed_csv_row_shape():
    rows = rows_of(SEED_PAYLOAD)

    assert rows == [
        ExportRow(
            device_id=83251076,
            manufacturer=5317,
            device_type=4,
            device_version=0,
            message_time=datetime(2020, 6, 26, 6, 49, tzinfo=UTC),
            dimension="Energy (kWh)",
            value_new=Decimal("29690"),
            value_due=Decimal("16274"),
            due_date=datetime(2019, 9, 30, tzinfo=UTC),
        )
    ]
    assert csv_text(rows) == (
        ",".join(CSV_HEADER) + "\r\n"
        "83251076,5317,4,0,2020.06.26 06:49:00.000000,Energy (kWh),29690,16274,2019.09.30\r\n"
    )


def test_a_multi_dimension_message_gives_one_row_per_dimension_in_order_of_first_appearance():
    payload = seed_payload_with(
        record("Volume (m3)", 12.5, storagenr=1),
        record("Power (W)", 300),
        record("Volume (m3)", 13.75),
    )

    rows = rows_of(payload)

    assert [(r.dimension, r.value_new, r.value_due) for r in rows] == [
        ("Energy (kWh)", Decimal("29690"), Decimal("16274")),
        ("Volume (m3)", Decimal("13.75"), Decimal("12.5")),
        ("Power (W)", Decimal("300"), None),
    ]
    assert all(r.due_date == datetime(2019, 9, 30, tzinfo=UTC) for r in rows)


def test_missing_storagenr_1_records_leave_the_due_cells_empty():
    payload = copy.deepcopy(SEED_PAYLOAD)
    payload["data"] = payload["data"][:2]

    [cells] = parsed_csv(rows_of(payload))[1:]

    assert cells[6:] == ["29690", "", ""]


def test_a_dimension_only_in_storagenr_1_leaves_the_new_value_empty():
    payload = seed_payload_with(record("Volume (m3)", 7, storagenr=1))

    rows = rows_of(payload)

    assert (rows[1].dimension, rows[1].value_new, rows[1].value_due) == ("Volume (m3)", None, Decimal("7"))
    assert parsed_csv(rows)[2][6:] == ["", "7", "2019.09.30"]


def test_records_with_a_tariff_or_subunit_get_their_own_suffixed_row():
    payload = seed_payload_with(
        record("Energy (kWh)", 100, tariff=1),
        record("Energy (kWh)", 90, storagenr=1, tariff=1),
        record("Energy (kWh)", 5, subunit=1),
        record("Energy (kWh)", 3, tariff=2, subunit=1),
    )

    rows = rows_of(payload)

    assert [(r.dimension, r.value_new, r.value_due) for r in rows] == [
        ("Energy (kWh)", Decimal("29690"), Decimal("16274")),
        ("Energy (kWh) [tariff 1]", Decimal("100"), Decimal("90")),
        ("Energy (kWh) [subunit 1]", Decimal("5"), None),
        ("Energy (kWh) [tariff 2] [subunit 1]", Decimal("3"), None),
    ]


def test_a_tariff_row_takes_its_own_due_date_when_the_message_has_one():
    payload = seed_payload_with(
        record("Energy (kWh)", 100, tariff=1),
        record("Time Point (date)", "2019-12-31T00:00:00", storagenr=1, tariff=1),
    )

    rows = rows_of(payload)

    assert [r.due_date.date().isoformat() for r in rows] == ["2019-09-30", "2019-12-31"]


def test_history_beyond_storagenr_1_and_time_points_are_not_exported():
    payload = seed_payload_with(
        record("Energy (kWh)", 1000, storagenr=2),
        record("Volume (m3)", 1, storagenr=3),
        record("Time Point (date)", "2018-09-30T00:00:00", storagenr=2),
    )

    assert [r.dimension for r in rows_of(payload)] == ["Energy (kWh)"]


# --- CSV -------------------------------------------------------------------------------------------------


def test_the_header_is_the_nine_seed_columns():
    assert ",".join(CSV_HEADER) == (
        "Device ID,Device manufacturer,Device type,Device version,Message date time,"
        "Measurement dimension,Value new measurement,Value measurement in due date,Due date"
    )


def test_the_seed_export_example_row_is_reproduced():
    assert csv_text([a_row()]).splitlines()[1] == (
        "80337,5317,4,0,2021.10.12 00:00:00.000000,Energy (kWh),29600,16274,2021.10.30"
    )


def test_the_manufacturer_can_be_shown_as_its_flag_letters():
    assert csv_cells(a_row(), manufacturer_as_flag=True)[1] == "EFE"
    assert csv_cells(a_row(manufacturer=0), manufacturer_as_flag=True)[1] == 0


def test_the_message_time_is_written_in_utc():
    cest = timezone(timedelta(hours=2))

    cells = csv_cells(a_row(message_time=datetime(2021, 10, 12, 2, 30, 0, 123456, tzinfo=cest)))

    assert cells[4] == "2021.10.12 00:30:00.123456"


@pytest.mark.parametrize(
    ("value", "expected_text"),
    [
        (Decimal("29690"), "29690"),
        (Decimal("29690.000"), "29690"),
        (Decimal("2.969E+4"), "29690"),
        (Decimal("12.50"), "12.5"),
        (Decimal("0.0000001"), "0.0000001"),
        (Decimal("-3.5"), "-3.5"),
        (Decimal("-0"), "0"),
        (42, "42"),
    ],
)
def test_numbers_are_written_as_plain_numbers_never_in_scientific_notation(value, expected_text):
    cell = csv_cells(a_row(value_new=value))[6]

    assert isinstance(cell, int | Decimal)
    assert str(cell) == expected_text
    assert parsed_csv([a_row(value_new=value)])[1][6] == expected_text


def test_numbers_are_never_neutralised_even_when_negative():
    assert csv_cells(a_row(value_new=Decimal("-5"), value_due=Decimal("-0.25")))[6:8] == [
        -5,
        Decimal("-0.25"),
    ]


@pytest.mark.parametrize("dangerous", ["=SUM(A1:A2)", "+1", "-1", "@cmd", "\tx", "\rx"])
def test_text_a_spreadsheet_would_run_as_a_formula_is_neutralised(dangerous):
    assert csv_cells(a_row(dimension=dangerous))[5] == "'" + dangerous


def test_ordinary_text_is_left_alone():
    assert csv_cells(a_row(dimension="Energy (kWh) = total"))[5] == "Energy (kWh) = total"


def test_none_values_become_empty_cells():
    cells = csv_cells(a_row(value_new=None, value_due=None, due_date=None))

    assert cells[6:] == ["", "", ""]


def test_the_csv_is_streamed_as_one_utf8_chunk_per_line():
    chunks = iter_csv_lines(iter([a_row(dimension="Wärme (kWh)"), a_row()]))

    assert next(chunks) == (",".join(CSV_HEADER) + "\r\n").encode()
    assert next(chunks).decode("utf-8").startswith("80337,5317,4,0,2021.10.12 00:00:00.000000,Wärme (kWh),")
    assert next(chunks).endswith(b"\r\n")
    assert next(chunks, None) is None


def test_parsing_the_produced_csv_back_gives_the_cells():
    rows = rows_of(seed_payload_with(record("Volume (m3)", 12.5), record('Note, "quoted"', 1)))

    assert parsed_csv(rows) == [CSV_HEADER] + [[str(cell) for cell in csv_cells(row)] for row in rows]


@given(st.text())
def test_any_dimension_text_survives_a_csv_round_trip(dimension):
    row = a_row(dimension=dimension)

    assert parsed_csv([row])[1] == [str(cell) for cell in csv_cells(row)]


def test_export_rows_use_the_given_device_identity():
    message = message_from_json(SEED_PAYLOAD)
    stored_device = OmsDevice(identnr=80337, manufacturer=5317, type=7, version=2, status=0, accessnr=1)

    [row] = export_rows(stored_device, message)

    assert (row.device_id, row.device_type, row.device_version) == (80337, 7, 2)


def test_a_hand_built_message_with_integer_values_exports_them_as_numbers():
    message = OmsMessage(
        device=OmsDevice(1, 5317, 4, 0, 0, 0),
        records=(OmsRecord("Energy (kWh)", 5, 0, 0, 0),),
        message_time=datetime(2021, 1, 1, tzinfo=UTC),
    )

    assert csv_cells(export_rows(message.device, message)[0])[6] == 5
