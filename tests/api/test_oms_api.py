"""The OMS collector/exporter as the seed documents it, through HTTP, on SQLite and PostgreSQL."""

import copy
import csv
import io
import json

import pytest

from domain.oms import CSV_HEADER, message_from_json
from repository import db
from repository import oms as oms_repo

# The seed's Python example, verbatim.
test_data = """
{
   "data":[
      {
         "value":"2020-06-26T06:49:00.000000",
         "tariff":0,
         "subunit":0,
         "dimension":"Time Point (time & date)",
         "storagenr":0
      },
      {
         "value":29690,
         "tariff":0,
         "subunit":0,
         "dimension":"Energy (kWh)",
         "storagenr":0
      },
      {
         "value":"2019-09-30T00:00:00.000000",
         "tariff":0,
         "subunit":0,
         "dimension":"Time Point (date)",
         "storagenr":1
      },
      {
         "value":16274,
         "tariff":0,
         "subunit":0,
         "dimension":"Energy (kWh)",
         "storagenr":1
      }
   ],
   "device":{
      "type":4,
      "status":0,
      "identnr":83251076,
      "version":0,
      "accessnr":156,
      "manufacturer":5317
   }
}
"""
SEED = json.loads(test_data)
SEED_ROW = ["83251076", "5317", "4", "0", "2020.06.26 06:49:00.000000", "Energy (kWh)", "29690", "16274", "2019.09.30"]


def a_message(identnr=83251076, time="2020-06-26T06:49:00.000000", energy=29690, *extra_records, **device) -> dict:
    body = copy.deepcopy(SEED)
    body["device"].update(identnr=identnr, **device)
    body["data"][0]["value"] = time
    body["data"][1]["value"] = energy
    body["data"].extend(extra_records)
    return body


def record(dimension, value, storagenr=0, tariff=0, subunit=0) -> dict:
    return {"value": value, "tariff": tariff, "subunit": subunit, "dimension": dimension, "storagenr": storagenr}


def commit(client, body):
    response = client.post("/commit", json=body)
    assert response.status_code == 200, response.text
    return response


def export_cells(client, query: str = "") -> list[list[str]]:
    response = client.get("/export" + query)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    lines = list(csv.reader(io.StringIO(response.content.decode("utf-8"), newline="")))
    assert lines[0] == CSV_HEADER
    return lines[1:]


def stored_counts() -> dict[str, int]:
    with db.database.connection_context():
        return oms_repo.counts()


# --- the seed ---------------------------------------------------------------------------------------------


def test_the_seed_python_example_answers_200_committed_to_database(client):
    headers = {"Content-type": "application/json"}

    result = client.post("/commit", data=test_data, headers=headers)

    assert str(result.status_code) + ":" + result.text == "200:Committed to database"
    assert result.headers["content-type"] == "text/plain; charset=utf-8"


def test_the_whole_message_is_stored_not_only_the_exported_columns(client):
    commit(client, SEED)

    with db.database.connection_context():
        [stored] = oms_repo.latest_messages()
        message = oms_repo.MessageRow.get()
    assert stored == message_from_json(SEED)
    assert (stored.device.status, stored.device.accessnr) == (0, 156)
    assert message.received_at is not None
    assert stored_counts() == {"devices": 1, "messages": 1, "records": 4}


def test_the_export_is_the_seeds_csv_attachment_with_the_seed_row_shape(client):
    client.post("/commit", data=test_data, headers={"Content-type": "application/json"})

    response = client.get("/export")

    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="OMS-Data.csv"'
    assert response.content.decode("utf-8").splitlines()[0] == (
        "Device ID,Device manufacturer,Device type,Device version,Message date time,"
        "Measurement dimension,Value new measurement,Value measurement in due date,Due date"
    )
    assert export_cells(client) == [SEED_ROW]


def test_an_empty_database_exports_the_header_alone(client):
    assert export_cells(client) == []


# --- storing ----------------------------------------------------------------------------------------------


def test_the_same_message_posted_twice_is_stored_once_and_answers_200_both_times(client):
    for _ in range(2):
        assert client.post("/commit", data=test_data, headers={"Content-type": "application/json"}).text == (
            "Committed to database"
        )

    assert stored_counts() == {"devices": 1, "messages": 1, "records": 4}
    assert export_cells(client) == [SEED_ROW]


def test_the_same_reading_with_another_access_number_is_still_the_same_message(client):
    commit(client, SEED)
    commit(client, a_message(accessnr=157))

    assert stored_counts()["messages"] == 1


def test_a_late_arriving_older_message_never_replaces_the_newer_one(client):
    commit(client, a_message(time="2021-10-12T00:00:00", energy=300))
    commit(client, a_message(time="2021-10-10T00:00:00", energy=100))
    commit(client, a_message(time="2021-10-11T00:00:00", energy=200))

    [row] = export_cells(client)

    assert row[4:7] == ["2021.10.12 00:00:00.000000", "Energy (kWh)", "300"]
    assert stored_counts()["messages"] == 3


def test_a_newer_message_replaces_the_exported_one(client):
    commit(client, a_message(time="2021-10-10T00:00:00", energy=100))
    commit(client, a_message(time="2021-10-12T00:00:00", energy=300))

    assert export_cells(client)[0][6] == "300"


# --- the CSV ----------------------------------------------------------------------------------------------


def test_a_multi_dimension_message_exports_one_row_per_measured_dimension(client):
    commit(
        client,
        a_message(
            80337,
            "2021-10-12T00:00:00",
            29600,
            record("Volume (m3)", 12.5, storagenr=1),
            record("Volume (m3)", 13.75),
            record("Power (W)", 300),
            record("Energy (kWh)", 120, tariff=1),
        ),
    )

    assert export_cells(client) == [
        ["80337", "5317", "4", "0", "2021.10.12 00:00:00.000000", "Energy (kWh)", "29600", "16274", "2019.09.30"],
        ["80337", "5317", "4", "0", "2021.10.12 00:00:00.000000", "Volume (m3)", "13.75", "12.5", "2019.09.30"],
        ["80337", "5317", "4", "0", "2021.10.12 00:00:00.000000", "Power (W)", "300", "", "2019.09.30"],
        ["80337", "5317", "4", "0", "2021.10.12 00:00:00.000000", "Energy (kWh) [tariff 1]", "120", "", "2019.09.30"],
    ]


def test_a_message_without_storagenr_1_records_leaves_the_due_cells_empty(client):
    body = a_message(80337, "2021-10-12T00:00:00", 29600)
    body["data"] = body["data"][:2]
    commit(client, body)

    assert export_cells(client) == [
        ["80337", "5317", "4", "0", "2021.10.12 00:00:00.000000", "Energy (kWh)", "29600", "", ""]
    ]


def test_rows_are_ordered_by_device_id_whatever_the_arrival_order(client):
    for identnr in (300, 7, 45, 1000):
        commit(client, a_message(identnr))

    assert [row[0] for row in export_cells(client)] == ["7", "45", "300", "1000"]


def test_the_message_time_is_written_in_utc_and_the_due_date_as_the_device_wrote_it(client):
    body = a_message(1, "2021-10-12T02:30:00.5+02:00")
    body["data"][2]["value"] = "2021-10-30T00:00:00+02:00"
    commit(client, body)

    assert export_cells(client)[0][4::4] == ["2021.10.12 00:30:00.500000", "2021.10.30"]


def test_formula_like_text_is_neutralised_and_numbers_stay_numbers(client):
    commit(client, a_message(1, "2021-10-12T00:00:00", -5, record('=HYPERLINK("http://x")', -0.25)))

    rows = export_cells(client)

    assert [row[5:7] for row in rows] == [["Energy (kWh)", "-5"], ['\'=HYPERLINK("http://x")', "-0.25"]]


def test_values_are_exported_exactly_as_sent(client):
    commit(client, a_message(1, "2021-10-12T00:00:00", 0.1, record("Volume (m3)", 0.0000001)))

    assert [row[6] for row in export_cells(client)] == ["0.1", "0.0000001"]


def test_non_ascii_dimensions_are_written_in_utf8(client):
    commit(client, a_message(1, "2021-10-12T00:00:00", 1, record("Wärme (kWh)", 2)))

    assert export_cells(client)[1][5] == "Wärme (kWh)"


def test_manufacturer_flag_writes_the_three_letter_code(client):
    commit(client, SEED)
    commit(client, a_message(2, manufacturer=0))

    rows = export_cells(client, "?manufacturer=flag")

    assert [row[1] for row in rows] == ["0", "EFE"]
    assert export_cells(client, "?manufacturer=number")[1][1] == "5317"


def test_until_exports_each_devices_latest_message_before_that_moment(client):
    commit(client, a_message(1, "2021-10-12T00:00:00", 300))
    commit(client, a_message(1, "2021-10-10T00:00:00", 100))
    commit(client, a_message(2, "2021-10-11T06:00:00", 700))

    assert [row[6] for row in export_cells(client, "?until=2021-10-11")] == ["100"]
    assert [row[6] for row in export_cells(client, "?until=2021-10-11T08:00:01%2B02:00")] == ["100", "700"]
    assert [row[6] for row in export_cells(client)] == ["300", "700"]


def test_since_exports_only_devices_with_a_message_since_then(client):
    commit(client, a_message(1, "2021-10-12T00:00:00", 300))
    commit(client, a_message(2, "2021-10-11T00:00:00", 700))

    assert [row[0] for row in export_cells(client, "?since=2021-10-12T00:00:00Z")] == ["1"]
    assert [row[0] for row in export_cells(client, "?since=2021-10-11&until=2021-10-12")] == ["2"]


@pytest.mark.parametrize(
    "query",
    ["?since=yesterday", "?until=2021-13-01", "?since=2021-10-12&until=2021-10-12", "?manufacturer=letters"],
)
def test_a_bad_export_parameter_is_a_400_problem(client, query):
    response = client.get("/export" + query)

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"]


def test_an_export_of_thousands_of_devices_streams_whole_across_page_and_block_boundaries(client):
    identnrs = list(range(2_500, 0, -1))
    with db.database.connection_context():
        oms_repo.store_messages(
            [message_from_json(a_message(identnr, energy=identnr * 10 + 0.5)) for identnr in identnrs]
        )

    rows = export_cells(client)

    assert len(rows) == len(identnrs)
    assert [int(row[0]) for row in rows] == sorted(identnrs)
    for index in (0, 999, 1000, 1001, 1999, 2000, 2499):
        assert rows[index] == [str(index + 1), *SEED_ROW[1:6], f"{(index + 1) * 10}.5", *SEED_ROW[7:]]
    assert not db.database.obj._in_use  # every connection the stream borrowed went back to the pool


# --- the device listing -----------------------------------------------------------------------------------


def test_devices_lists_each_device_with_its_latest_message_time(client):
    commit(client, a_message(2, "2021-10-12T00:00:00", manufacturer=0))
    commit(client, a_message(2, "2021-10-10T00:00:00", manufacturer=0))
    commit(client, SEED)

    response = client.get("/oms/devices")

    assert response.status_code == 200
    assert response.json() == {
        "devices": [
            {
                "identnr": 2,
                "manufacturer": 0,
                "manufacturerCode": "0",
                "type": 4,
                "version": 0,
                "latestMessageTime": "2021-10-12T00:00:00+00:00",
            },
            {
                "identnr": 83251076,
                "manufacturer": 5317,
                "manufacturerCode": "EFE",
                "type": 4,
                "version": 0,
                "latestMessageTime": "2020-06-26T06:49:00+00:00",
            },
        ],
        "total": 2,
    }


def test_devices_pages_with_limit_and_offset(client):
    for identnr in range(1, 6):
        commit(client, a_message(identnr))

    body = client.get("/oms/devices?limit=2&offset=3").json()

    assert [device["identnr"] for device in body["devices"]] == [4, 5]
    assert body["total"] == 5


@pytest.mark.parametrize("query", ["?limit=0", "?limit=1001", "?offset=-1", "?limit=two"])
def test_a_bad_devices_parameter_is_a_400_problem(client, query):
    response = client.get("/oms/devices" + query)

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


# --- bad input --------------------------------------------------------------------------------------------


def without(mapping: dict, key: str) -> dict:
    return {name: value for name, value in mapping.items() if name != key}


BAD_BODIES = {
    "missing device": without(SEED, "device"),
    "missing data": without(SEED, "data"),
    "no records": {**SEED, "data": []},
    "missing identnr": {**SEED, "device": without(SEED["device"], "identnr")},
    "missing manufacturer": {**SEED, "device": without(SEED["device"], "manufacturer")},
    "identnr as a string": a_message("83251076"),
    "type as a float": a_message(type=4.5),
    "negative status": a_message(status=-1),
    "identnr above 8 digits": a_message(100_000_000),
    "manufacturer above 16 bits": a_message(manufacturer=65_536),
    "accessnr above a byte": a_message(accessnr=256),
    "unknown device field": a_message(colour="red"),
    "unknown record field": a_message(1, "2020-06-26T06:49:00", 1, {**record("Volume (m3)", 1), "unit": "m3"}),
    "record without dimension": a_message(1, "2020-06-26T06:49:00", 1, without(record("Volume (m3)", 1), "dimension")),
    "record as a list": a_message(1, "2020-06-26T06:49:00", 1, [1, 2]),
    "empty dimension": a_message(1, "2020-06-26T06:49:00", 1, record("", 1)),
    "blank dimension": a_message(1, "2020-06-26T06:49:00", 1, record("   ", 1)),
    "dimension too long": a_message(1, "2020-06-26T06:49:00", 1, record("x" * 129, 1)),
    "negative storagenr": a_message(1, "2020-06-26T06:49:00", 1, record("Volume (m3)", 1, storagenr=-1)),
    "tariff as a float": a_message(1, "2020-06-26T06:49:00", 1, record("Volume (m3)", 1, tariff=0.5)),
    "time point that is not a date": a_message(1, "yesterday"),
    "due date that is not a date": a_message(1, "2020-06-26T06:49:00", 1, record("Time Point (date)", "x", 1)),
    "time point as a number": a_message(1, 20200626),
    "time point before year 1 in UTC": a_message(1, "0001-01-01T00:00:00+01:00"),
    "measurement as a string": a_message(1, "2020-06-26T06:49:00", "29690"),
    "measurement as a boolean": a_message(1, "2020-06-26T06:49:00", True),
    "measurement as null": a_message(1, "2020-06-26T06:49:00", None),
    "absurd measurement": a_message(1, "2020-06-26T06:49:00", 1e300),
    "value string too long": a_message(1, "2020-06-26T06:49:00" + " " * 40),
    "no message time record": {**SEED, "data": SEED["data"][1:]},
    "contradicting records": a_message(1, "2020-06-26T06:49:00", 1, record("Energy (kWh)", 2)),
    "too many records": a_message(1, "2020-06-26T06:49:00", 1, *[record(f"D{i}", i) for i in range(1000)]),
    "body is a list": [SEED],
    "body is a string": "commit",
    "body is null": None,
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_input_is_a_400_problem_and_stores_nothing(client, body):
    commit(client, SEED)
    before = stored_counts()

    response = client.post("/commit", json=body)

    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"]
    assert stored_counts() == before


@pytest.mark.parametrize("text", ["", "not json", "{", '{"data": [], "device": {}', test_data + "}", "\xff"])
def test_a_body_that_is_not_json_is_a_400_problem_and_stores_nothing(client, text):
    response = client.post("/commit", content=text.encode("latin-1"), headers={"Content-type": "application/json"})

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert stored_counts() == {"devices": 0, "messages": 0, "records": 0}


def test_the_problem_names_the_field_at_fault(client):
    assert "device" in client.post("/commit", json=without(SEED, "device")).json()["detail"]
    problem = client.post("/commit", json=a_message(1, "yesterday")).json()
    assert problem["field"] == "data[0].value"
    assert "'yesterday' is not a datetime" in problem["detail"]


def test_a_body_sent_as_another_media_type_is_a_415_problem(client):
    response = client.post("/commit", content=test_data, headers={"Content-type": "text/plain"})

    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"
    assert stored_counts() == {"devices": 0, "messages": 0, "records": 0}


def test_the_spec_documents_the_oms_operations(client):
    paths = client.get("/openapi.json").json()["paths"]

    assert {"/commit", "/export", "/oms/devices"} <= paths.keys()
