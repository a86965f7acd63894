"""The dashboard pages over HTTP: refusals are 4xx pages, long series are reduced, access is as documented."""

from __future__ import annotations

import pytest

from tests.api.test_pages_foundation import log_in
from tests.support.accounts import register, register_admin

WEEK = 7 * 86_400


@pytest.fixture
def week(client):
    start = 1_700_000_040
    times = list(range(start, start + WEEK, 60))
    for first in range(0, len(times), 10_000):
        batch = [{"time": t, "reading": 1.0} for t in times[first : first + 10_000]]
        assert (
            client.post("/readings/store", json={"smartMeterId": "m-1", "electricityReadings": batch}).status_code
            == 200
        )
    return start, times[-1]


@pytest.fixture
def few(client):
    batch = [{"time": 1_700_000_000 + 60 * i, "reading": 1.0} for i in range(3)]
    assert client.post("/readings/store", json={"smartMeterId": "m-1", "electricityReadings": batch}).status_code == 200


def test_a_week_of_minute_readings_is_reduced_to_at_most_two_thousand_points(client, week):
    spec = client.get("/dashboard/meters/m-1/power.json").json()
    points = [x for x in spec["series"][0]["x"] if x is not None]
    assert 1000 < len(points) <= 2000
    assert spec["series"][0]["y"][0] == 1.0


def test_a_zoomed_window_of_an_hour_gets_every_reading(client, week):
    start, _ = week
    spec = client.get(f"/dashboard/meters/m-1/power.json?from={start}&to={start + 3540}").json()
    assert len(spec["series"][0]["x"]) == 60


def test_the_meter_page_prices_the_window_on_every_plan(client, few):
    page = client.get("/dashboard/meters/m-1")
    assert page.status_code == 200
    assert page.text.count("<tr>") >= 3 + 1  # three plans and the header
    assert "price-plan-2" in page.text


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/dashboard/meters/nothing-here", 404),
        ("/dashboard/meters/bad%20id", 404),
        ("/dashboard/meters/m-1?from=tomorrow", 400),
        ("/dashboard/meters/m-1?from=1700000100&to=1700000000", 400),
        ("/dashboard/meters/m-1?to=99999999999999999999", 400),
        ("/dashboard/oms?q=%27%3B--", 400),
        ("/dashboard/oms?page=0", 400),
        ("/dashboard/oms?q=" + "1" * 41, 400),
    ],
)
def test_bad_page_input_answers_a_4xx_page_that_says_why(client, few, path, status):
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>" in response.text


def test_the_dsmr_page_sends_visitors_to_the_login_and_refuses_users_who_are_no_admin(client):
    response = client.get("/dashboard/dsmr", follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == "/login?next=/dashboard/dsmr"
    register(client, "plainuser")
    log_in(client, "plainuser")
    assert client.get("/dashboard/dsmr").status_code == 403


def test_an_admin_without_installations_is_told_how_to_make_one(client):
    register_admin(client, "dsmrboss")
    log_in(client, "dsmrboss")
    page = client.get("/dashboard/dsmr")
    assert page.status_code == 200
    assert "make dsmr-key NAME=home" in page.text
    assert client.get("/dashboard/dsmr?installation=nope").status_code == 200  # nothing to pick from


def test_the_oms_download_form_passes_only_filled_in_fields_to_the_export(client):
    response = client.get(
        "/dashboard/oms/export?since=&until=2026-11-30T10:00&manufacturer=flag", follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/export?until=2026-11-30T10%3A00&manufacturer=flag"
