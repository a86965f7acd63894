"""The JOI Energy API as the seed documents it, through HTTP, on SQLite and PostgreSQL."""

import time

import pytest

SEED_BODY = {
    "smartMeterId": "smart-meter-0",
    "electricityReadings": [
        {"time": 1606636800, "reading": 0.0503},
        {"time": 1606636860, "reading": 0.0621},
        {"time": 1606636920, "reading": 0.0222},
        {"time": 1606636980, "reading": 0.0423},
        {"time": 1606637040, "reading": 0.0191},
    ],
}


def store(client, meter, readings):
    body = {"smartMeterId": meter, "electricityReadings": [{"time": t, "reading": r} for t, r in readings]}
    return client.post("/readings/store", json=body)


def test_the_seed_store_example_answers_the_stored_readings_in_the_seed_shape(client):
    response = client.post("/readings/store", json=SEED_BODY)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == SEED_BODY


def test_stored_readings_read_back_sorted_by_time(client):
    store(client, "m-1", [(300, 3.0), (100, 1.0), (200, 2.0)])
    response = client.get("/readings/read/m-1")
    assert response.status_code == 200
    assert response.json() == [
        {"time": 100, "reading": 1.0},
        {"time": 200, "reading": 2.0},
        {"time": 300, "reading": 3.0},
    ]


def test_posting_a_reading_again_replaces_its_value(client):
    store(client, "m-1", [(100, 1.0), (200, 2.0)])
    store(client, "m-1", [(200, 5.0)])
    assert client.get("/readings/read/m-1").json() == [{"time": 100, "reading": 1.0}, {"time": 200, "reading": 5.0}]


def test_a_time_repeated_within_one_batch_with_another_value_is_a_400_naming_it_and_stores_nothing(client):
    store(client, "m-1", [(50, 0.5)])
    response = store(client, "m-1", [(100, 1.0), (200, 2.0), (100, 4.0)])
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == "electricityReadings[2].time"
    assert response.json()["detail"].startswith("electricityReadings[2].time: 100 is also the time of")
    assert client.get("/readings/read/m-1").json() == [{"time": 50, "reading": 0.5}]


def test_a_time_repeated_within_one_batch_with_the_same_value_is_stored_once(client):
    response = store(client, "m-1", [(100, 1.0), (200, 2.0), (100, 1.0)])
    assert response.status_code == 200
    assert response.json()["electricityReadings"] == [{"time": 100, "reading": 1.0}, {"time": 200, "reading": 2.0}]


def test_the_flask_path_refuses_a_conflicting_repeat_as_the_fast_path_does(app):
    from controllers.readings import store_readings
    from domain.errors import InvalidInput

    body = {"smartMeterId": "m-1", "electricityReadings": [{"time": 1, "reading": 1.0}, {"time": 1, "reading": 2.0}]}
    with pytest.raises(InvalidInput, match="electricityReadings\\[1\\].time"):
        store_readings(body, app.app.config["SETTINGS"])


def test_a_batch_sent_out_of_order_is_answered_sorted_as_stored(client):
    response = store(client, "m-1", [(300, 6.0), (100, 1.0), (300, 6.0), (200, 2.0)])
    assert response.json()["electricityReadings"] == [
        {"time": 100, "reading": 1.0},
        {"time": 200, "reading": 2.0},
        {"time": 300, "reading": 6.0},
    ]


def test_whole_number_readings_are_stored_and_read_back_as_numbers(client):
    assert store(client, "m-1", [(100, 2), (200, 0)]).status_code == 200
    assert client.get("/readings/read/m-1").json() == [{"time": 100, "reading": 2.0}, {"time": 200, "reading": 0.0}]


def test_from_and_to_narrow_the_readings_window(client):
    store(client, "m-1", [(100, 1.0), (200, 2.0), (300, 3.0)])
    assert client.get("/readings/read/m-1?from=150&to=300").json() == [
        {"time": 200, "reading": 2.0},
        {"time": 300, "reading": 3.0},
    ]


def test_a_meter_without_readings_is_a_404_problem(client):
    response = client.get("/readings/read/nobody")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "nobody" in response.json()["detail"]


def test_compare_all_prices_35_and_5_kw_half_an_hour_apart_at_10_20_and_100(client):
    store(client, "smart-meter-0", [(1606636800, 35), (1606638600, 5)])
    response = client.get("/price-plans/compare-all/smart-meter-0")
    assert response.status_code == 200
    assert response.json() == {
        "pricePlanId": "price-plan-0",
        "pricePlanComparisons": [{"price-plan-2": 10.0}, {"price-plan-1": 20.0}, {"price-plan-0": 100.0}],
    }


def test_compare_all_for_a_meter_without_an_account_has_a_null_plan(client):
    store(client, "stranger", [(0, 1.0), (3600, 1.0)])
    body = client.get("/price-plans/compare-all/stranger").json()
    assert body["pricePlanId"] is None
    assert body["pricePlanComparisons"][0] == {"price-plan-2": pytest.approx(1.0)}


def test_recommend_cuts_the_list_to_the_limit(client):
    store(client, "smart-meter-0", [(1606636800, 35), (1606638600, 5)])
    response = client.get("/price-plans/recommend/smart-meter-0?limit=2")
    assert response.json() == [{"price-plan-2": 10.0}, {"price-plan-1": 20.0}]
    assert len(client.get("/price-plans/recommend/smart-meter-0").json()) == 3


def test_compare_all_prices_only_the_window_when_from_and_to_are_given(client):
    store(client, "m-1", [(0, 2.0), (3600, 2.0), (7200, 2.0)])
    body = client.get("/price-plans/compare-all/m-1?from=1800&to=5400").json()
    assert body["pricePlanComparisons"][0] == {"price-plan-2": pytest.approx(2.0)}


def test_a_late_reading_in_the_middle_updates_the_comparison(client):
    store(client, "m-1", [(0, 1.0), (3600, 1.0)])
    store(client, "m-1", [(1800, 3.0)])  # the half hours become trapezoids of 1 and 3 kW
    body = client.get("/price-plans/compare-all/m-1").json()
    assert body["pricePlanComparisons"][0] == {"price-plan-2": pytest.approx(2.0)}


def test_a_gap_longer_than_an_hour_is_not_billed(client):
    store(client, "m-1", [(0, 1.0), (3600, 1.0), (3 * 3600, 100.0)])
    body = client.get("/price-plans/compare-all/m-1").json()
    assert body["pricePlanComparisons"][0] == {"price-plan-2": pytest.approx(1.0)}


def test_price_plans_lists_supplier_rate_multipliers_and_standing_charge(client):
    plans = client.get("/price-plans").json()
    assert [plan["pricePlanId"] for plan in plans] == ["price-plan-0", "price-plan-1", "price-plan-2"]
    assert plans[0]["supplier"] == "Dr Evil's Dark Energy"
    assert plans[0]["unitRate"] == 10.0
    assert plans[0]["dayOfWeekMultipliers"]["SUNDAY"] == 1.0
    assert plans[0]["standingChargePerDay"] == 0.0


def test_health_answers_ok_when_the_database_answers(client):
    assert client.get("/health").json() == {"status": "ok", "database": "ok"}


def test_the_spec_and_swagger_ui_are_served(client):
    spec = client.get("/openapi.json").json()
    assert "/readings/store" in spec["paths"]
    assert client.get("/ui/").status_code == 200


BAD_BODIES = {
    "missing meter id": {"electricityReadings": [{"time": 1, "reading": 1}]},
    "missing readings": {"smartMeterId": "m-1"},
    "extra field": {"smartMeterId": "m-1", "electricityReadings": [], "x": 1},
    "extra reading field": {"smartMeterId": "m-1", "electricityReadings": [{"time": 1, "reading": 1, "unit": "W"}]},
    "empty batch": {"smartMeterId": "m-1", "electricityReadings": []},
    "reading as string": {"smartMeterId": "m-1", "electricityReadings": [{"time": 1, "reading": "1"}]},
    "time as float": {"smartMeterId": "m-1", "electricityReadings": [{"time": 1.5, "reading": 1}]},
    "negative reading": {"smartMeterId": "m-1", "electricityReadings": [{"time": 1, "reading": -0.1}]},
    "time before 1970": {"smartMeterId": "m-1", "electricityReadings": [{"time": -1, "reading": 1}]},
    "empty meter id": {"smartMeterId": "", "electricityReadings": [{"time": 1, "reading": 1}]},
    "meter id too long": {"smartMeterId": "m" * 129, "electricityReadings": [{"time": 1, "reading": 1}]},
    "meter id with a slash": {"smartMeterId": "a/b", "electricityReadings": [{"time": 1, "reading": 1}]},
    "meter id with a space": {"smartMeterId": "a b", "electricityReadings": [{"time": 1, "reading": 1}]},
    "body is a list": [],
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_a_bad_body_is_a_400_problem_and_stores_nothing(client, body):
    response = client.post("/readings/store", json=body)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"]
    assert client.get("/readings/read/m-1").status_code == 404


def test_the_problem_names_the_offending_field(client):
    response = client.post(
        "/readings/store", json={"smartMeterId": "m-1", "electricityReadings": [{"time": 1, "reading": -2}]}
    )
    assert "electricityReadings[0].reading" in response.json()["detail"]


def test_an_oversized_batch_is_refused(client):
    readings = [{"time": t, "reading": 1.0} for t in range(10_001)]
    response = client.post("/readings/store", json={"smartMeterId": "m-1", "electricityReadings": readings})
    assert response.status_code == 400
    assert "electricityReadings" in response.json()["detail"]


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_readings_are_refused(client, literal):
    body = b'{"smartMeterId": "m-1", "electricityReadings": [{"time": 1, "reading": ' + literal + b"}]}"
    response = client.post("/readings/store", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400


def test_a_body_that_is_not_json_is_refused(client):
    response = client.post("/readings/store", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


def test_a_reading_more_than_a_day_in_the_future_is_refused_and_the_batch_is_not_stored(client):
    future = int(time.time()) + 2 * 86_400
    response = store(client, "m-1", [(100, 1.0), (future, 1.0)])
    assert response.status_code == 400
    assert response.json()["field"] == "electricityReadings[1].time"
    assert client.get("/readings/read/m-1").status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "/price-plans/recommend/smart-meter-0?limit=0",
        "/price-plans/recommend/smart-meter-0?limit=abc",
        "/price-plans/compare-all/smart-meter-0?from=10&to=5",
        "/readings/read/smart-meter-0?from=-1",
    ],
)
def test_bad_query_parameters_are_400(client, url):
    store(client, "smart-meter-0", [(0, 1.0), (60, 1.0)])
    assert client.get(url).status_code == 400


def test_unknown_paths_are_404_and_wrong_methods_405(client):
    assert client.get("/nowhere").status_code == 404
    assert client.delete("/readings/store").status_code == 405
    assert client.get("/readings/store").status_code == 405


def test_a_bad_query_parameter_is_named_in_one_line(client):
    response = client.get("/price-plans/recommend/smart-meter-0?limit=0")
    assert response.json()["detail"] == "query parameter 'limit': must be at least 1 (got 0)"


def test_a_body_that_is_not_declared_json_is_415_and_stores_nothing(client):
    response = client.post("/readings/store", content=b"smartMeterId=m-1", headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert client.get("/readings/read/m-1").status_code == 404


def test_a_store_goes_through_the_fast_path_and_its_answer_is_still_validated(client, monkeypatch):
    import controllers.readings
    import fastpath

    def not_flask(body):
        raise AssertionError("POST /readings/store went through Flask")

    monkeypatch.setattr(controllers.readings, "store", not_flask)
    assert client.post("/readings/store", json=SEED_BODY).json() == SEED_BODY
    monkeypatch.setattr(fastpath, "store_readings", lambda body, config, caller: {"smartMeterId": "smart-meter-0"})
    response = client.post("/readings/store", json=SEED_BODY)
    assert response.status_code == 500
    assert "does not conform" in response.json()["detail"]


def test_meter_reads_go_through_the_fast_path_with_the_answers_flask_gives(client, monkeypatch):
    import controllers.price_plans
    import controllers.readings

    def not_flask(*args, **kwargs):
        raise AssertionError("a meter read went through Flask")

    store(client, "m-1", [(t, 1.0) for t in range(0, 600, 60)])
    for name in ("compare_all", "recommend"):
        monkeypatch.setattr(controllers.price_plans, name, not_flask)
    monkeypatch.setattr(controllers.readings, "read", not_flask)
    assert client.get("/price-plans/compare-all/m-1").json()["pricePlanComparisons"]
    assert len(client.get("/price-plans/recommend/m-1?limit=2").json()) == 2
    page = client.get("/readings/read/m-1?limit=4&from=0", headers={"Host": "meters.example:8080"})
    assert [reading["time"] for reading in page.json()] == [0, 60, 120, 180]
    assert next_link(page) == "http://meters.example:8080/readings/read/m-1?limit=4&from=0&after=180"
    missing = client.get("/readings/read/m-2")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_a_read_whose_query_is_not_plain_integers_is_answered_by_connexions_conversion(client):
    store(client, "m-1", [(t, 1.0) for t in range(0, 600, 60)])
    assert len(client.get("/readings/read/m-1?limit=%2B3").json()) == 3
    assert len(client.get("/readings/read/m-1?limit=3&limit=4").json()) == 4  # Connexion takes the last
    assert client.get("/readings/read/m-1?limit=3.5").status_code == 400


def next_link(response) -> str | None:
    link = response.headers.get("link")
    if link is None:
        return None
    url, rel = link.split(";", 1)
    assert rel.strip() == 'rel="next"'
    return url.strip().removeprefix("<").removesuffix(">")


def test_without_limit_the_readings_are_one_plain_list_without_a_link(client):
    store(client, "m-1", [(t, 1.0) for t in range(0, 600, 60)])
    response = client.get("/readings/read/m-1")
    assert len(response.json()) == 10
    assert "link" not in response.headers


def test_a_limit_pages_the_readings_and_the_next_links_walk_the_whole_history_once(client):
    store(client, "m-1", [(t, t / 60) for t in range(0, 600, 60)])
    url, pages = "/readings/read/m-1?limit=4", []
    while url:
        response = client.get(url)
        assert response.status_code == 200
        pages.append([reading["time"] for reading in response.json()])
        url = next_link(response)
    assert pages == [[0, 60, 120, 180], [240, 300, 360, 420], [480, 540]]


def test_the_next_link_keeps_the_window_and_the_limit(client):
    store(client, "m-1", [(t, 1.0) for t in range(0, 600, 60)])
    response = client.get("/readings/read/m-1?from=60&to=300&limit=2")
    assert [reading["time"] for reading in response.json()] == [60, 120]
    link = next_link(response)
    assert link.startswith("http://") and "/readings/read/m-1?" in link
    assert "from=60" in link and "to=300" in link and "limit=2" in link and "after=120" in link
    last = client.get(next_link(client.get(link)))
    assert [reading["time"] for reading in last.json()] == [300]
    assert next_link(last) is None


def test_a_page_that_ends_exactly_at_the_last_reading_has_no_next_link(client):
    store(client, "m-1", [(0, 1.0), (60, 1.0)])
    response = client.get("/readings/read/m-1?limit=2")
    assert len(response.json()) == 2
    assert next_link(response) is None


def test_after_alone_answers_the_readings_after_that_time(client):
    store(client, "m-1", [(0, 1.0), (60, 2.0), (120, 3.0)])
    assert client.get("/readings/read/m-1?after=60").json() == [{"time": 120, "reading": 3.0}]
    assert client.get("/readings/read/m-1?after=600").json() == []


def test_the_root_is_the_start_page_that_links_to_the_api_documentation(client):
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'href="/ui/"' in response.text


def test_a_day_read_answers_the_same_bytes_once_its_hours_are_paged_and_a_late_reading_shows_at_once(client):
    from repository import db, sample_pages

    day_start = int(time.time()) // 3600 * 3600 - 2 * 86_400
    store(client, "day", [(day_start + 60 * n, n / 7) for n in range(1440)])
    window = f"/readings/read/day?from={day_start}&to={day_start + 86_399}"
    from_rows = client.get(window).content
    db.connect()
    try:
        paged = sample_pages.page_sealed_hours(int(time.time()))
    finally:
        db.close()
    assert paged == (1440 if db.is_sqlite() else 0)
    assert client.get(window).content == from_rows
    store(client, "day", [(day_start + 90, 42.0)])
    late = client.get(window).json()
    assert late[1:3] == [{"time": day_start + 60, "reading": 1 / 7}, {"time": day_start + 90, "reading": 42.0}]
    assert len(late) == 1441
