"""What bad requests are answered: a 4xx that says what was wrong in a few words, never a 500, never an
echo of the whole input, and never a parameter silently ignored."""

import pytest

OMS_RECORD = {"value": 29690, "tariff": 0, "subunit": 0, "dimension": "Energy (kWh)", "storagenr": 0}
OMS_DEVICE = {"type": 4, "status": 0, "identnr": 83251076, "version": 0, "accessnr": 156, "manufacturer": 5317}


@pytest.fixture
def config(database_url):
    from config import Config

    return Config(database_url=database_url, validate_responses=True, dsmr_api_enabled=True, dsmr_api_key="k")


def store(client, meter, readings):
    body = {"smartMeterId": meter, "electricityReadings": [{"time": t, "reading": r} for t, r in readings]}
    return client.post("/readings/store", json=body)


@pytest.mark.parametrize("operation", ["readings/read", "price-plans/compare-all", "price-plans/recommend"])
@pytest.mark.parametrize("control", ["%0A", "%0D", "%00", "%09", "%7F"])
def test_a_meter_id_with_a_control_character_is_a_400_problem(client, operation, control):
    store(client, "smart-meter-0", [(0, 1.0), (60, 1.0)])
    response = client.get(f"/{operation}/smart-meter-0{control}")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "control characters" in response.json()["detail"]


def test_a_path_with_a_control_character_is_refused_in_the_shape_of_its_area(client):
    v1 = client.post("/api/v1/datalogger/dsmrreading%0A", data={"telegram": "x"}, headers={"X-AUTHKEY": "k"})
    assert (v1.status_code, v1.headers["content-type"].split(";")[0]) == (400, "text/plain")
    v2 = client.get("/api/v2/application/version%0A", headers={"X-AUTHKEY": "k"})
    assert v2.status_code == 400
    assert "control characters" in v2.json()["detail"]


def test_a_query_value_with_a_control_character_is_a_400_naming_the_parameter(client):
    response = client.get("/export?since=2021-10-01%0A")
    assert response.status_code == 400
    assert response.json()["detail"] == "query parameter 'since': must not contain control characters"


@pytest.mark.parametrize(
    "url",
    [
        "/readings/read/smart-meter-0?frm=0",
        "/price-plans/compare-all/smart-meter-0?frm=0",
        "/price-plans/recommend/smart-meter-0?frm=0",
        "/price-plans?frm=0",
        "/health?frm=0",
        "/export?frm=0",
        "/oms/devices?frm=0",
    ],
)
def test_an_unknown_query_parameter_is_a_400_naming_it(client, url):
    store(client, "smart-meter-0", [(0, 1.0), (60, 1.0)])
    response = client.get(url)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "unknown query parameter(s) 'frm'" in response.json()["detail"]


def test_the_unknown_parameter_answer_lists_what_the_operation_takes(client):
    response = client.get("/price-plans/compare-all/smart-meter-0?frm=0")
    assert response.json()["detail"] == "unknown query parameter(s) 'frm': it takes 'from', 'to'"


def test_dsmr_v2_answers_an_unknown_query_parameter_in_its_own_shape(client):
    response = client.get("/api/v2/statistics/day?day_gte=2017-02-01", headers={"X-AUTHKEY": "k"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert "unknown query parameter(s) 'day_gte'" in response.json()["detail"]


def test_an_unknown_form_field_is_ignored_as_dsmr_reader_ignores_it(client):
    headers = {"X-AUTHKEY": "k"}
    alone = client.post("/api/v1/datalogger/dsmrreading", data={"telegram": "x"}, headers=headers)
    with_extra = client.post("/api/v1/datalogger/dsmrreading", data={"telegram": "x", "id": "7"}, headers=headers)
    assert (with_extra.status_code, with_extra.text) == (alone.status_code, alone.text)
    assert "unknown" not in with_extra.text


def test_dsmr_v1_answers_an_unsupported_content_type_as_plain_text(client):
    response = client.post("/api/v1/datalogger/dsmrreading", json={"telegram": "x"}, headers={"X-AUTHKEY": "k"})
    assert response.status_code == 415
    assert response.headers["content-type"].startswith("text/plain")
    assert "application/json" in response.text


def test_an_oversized_batch_is_refused_in_words_without_repeating_it(client):
    readings = [{"time": t, "reading": 1.0} for t in range(10_001)]
    response = client.post("/readings/store", json={"smartMeterId": "m-1", "electricityReadings": readings})
    assert response.status_code == 400
    assert response.json()["detail"] == "electricityReadings: too many items: 10001, at most 10000"
    assert len(response.content) < 300


def test_an_oversized_oms_message_is_refused_in_words_without_repeating_it(client):
    response = client.post("/commit", json={"data": [OMS_RECORD] * 1001, "device": OMS_DEVICE})
    assert response.status_code == 400
    assert response.json()["detail"] == "data: too many items: 1001, at most 1000"


def test_a_huge_number_where_an_integer_belongs_is_named_without_its_digits(client):
    body = b'{"smartMeterId": "m-1", "electricityReadings": [{"time": 99999999999999999999999.0, "reading": 1}]}'
    response = client.post("/readings/store", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail.startswith("electricityReadings[0].time: must be an integer")
    assert "9999999" not in detail


def test_a_long_string_in_the_wrong_place_is_not_repeated(client):
    body = {"smartMeterId": "m" * 5000, "electricityReadings": [{"time": 1, "reading": 1}]}
    response = client.post("/readings/store", json=body)
    assert response.json()["detail"] == "smartMeterId: too long: 5000 characters, at most 128"


def test_many_unknown_parameters_get_a_bounded_answer(client):
    query = "&".join(f"{'x' * 200}{index}=1" for index in range(50))
    response = client.get(f"/price-plans?{query}")
    assert response.status_code == 400
    assert len(response.json()["detail"]) <= 500


def test_dsmr_v2_version_refuses_an_unknown_query_parameter_in_its_documented_shape(client):
    response = client.get("/api/v2/application/version?verbose=1", headers={"X-AUTHKEY": "k"})
    assert response.status_code == 400
    assert "verbose" in response.json()["detail"]
