"""The SilesiaSolar and mailings admin pages in headless Chromium: each loads with no console error and no
failed request, each chart draws its series, another user's host page answers 404, a mailing created
through the form is the API's, and a screenshot of each page lands in the test's tmp folder."""

from __future__ import annotations

import json
from types import SimpleNamespace
from urllib.parse import parse_qs, urlparse

import pytest

from tests.browser.conftest import drag_across, painted_datasets, wait_for_charts

T0 = 1_796_102_400_000  # 2026-12-01T05:20:00Z
MINUTE = 60_000
WEEK_OF_MINUTES = 7 * 24 * 60


def _seed_hosts(owner_id: int, other_id: int) -> SimpleNamespace:
    from domain.modbus import HostOutcome
    from modbus_reader import Sample
    from repository import modbus as modbus_repo
    from tests.support import silesia_sites

    host = silesia_sites.host(
        SimpleNamespace(id=owner_id), 1502, measurements=["voltage_ac", "active_power", "active_energy_consumed"]
    )
    other_host = silesia_sites.host(SimpleNamespace(id=other_id), 1503, measurements=["voltage_ac"])
    samples = []
    for index in range(WEEK_OF_MINUTES):
        at = T0 + index * MINUTE
        samples += [
            Sample(host, "voltage_ac", 1, "V", at, 230.0 + index % 7),
            Sample(host, "active_power", 1, "W", at, 800.0 + (index % 600)),
            Sample(host, "active_energy_consumed", 2, "kWh", at, index / 60),
        ]
    modbus_repo.store_round(samples, [HostOutcome(host, T0 + WEEK_OF_MINUTES * MINUTE, 3, 0)])
    modbus_repo.store_round([], [HostOutcome(other_host, T0, 0, 1, ("no answer from 127.0.0.1:1503 within 3 s",))])
    return SimpleNamespace(host=host, other_host=other_host)


@pytest.fixture(scope="module")
def people(live_server):
    owner, other = live_server.user("sunny"), live_server.user("cloudy")
    admin = live_server.user("boss", admin=True)
    hosts = live_server.with_database(lambda: _seed_hosts(owner.id, other.id))
    return SimpleNamespace(owner=owner, other=other, admin=admin, **vars(hosts))


def test_the_sites_page_lists_the_users_hosts_with_their_poll_status(page, live_server, people, log_in, shoot):
    log_in(page, people.owner, "/dashboard/sites")
    assert page.locator(f"tr[data-host='{people.host}']").count() == 1
    assert page.locator(f"tr[data-host='{people.other_host}']").count() == 0
    assert "ok (last poll" in page.locator(f"tr[data-host='{people.host}']").inner_text()
    shoot(page, "sites")


def test_a_hosts_page_draws_a_chart_per_measurement_and_the_plan_comparison(page, live_server, people, log_in, shoot):
    log_in(page, people.owner, "/dashboard/sites")
    page.get_by_role("link", name=f"Host {people.host}").click()
    page.wait_for_url(f"**/dashboard/sites/hosts/{people.host}")
    drawn = wait_for_charts(page, 4)
    assert drawn == {
        "chart-voltage_ac": 1,
        "chart-active_power": 1,
        "chart-active_energy_consumed": 1,
        "chart-plans": 1,
    }
    for chart_id in drawn:
        assert painted_datasets(page, chart_id) == 1
    assert (
        "recommended"
        in page.locator("#plans-title + p + figure, table[aria-labelledby='plans-title']").last.inner_text()
    )
    shoot(page, "sites-host")


def test_a_drag_across_a_chart_redraws_that_window_from_the_server(page, live_server, people, log_in):
    log_in(page, people.owner, f"/dashboard/sites/hosts/{people.host}")
    wait_for_charts(page, 4)
    with page.expect_response(lambda response: "/charts/voltage_ac" in response.url) as zoomed:
        drag_across(page, "chart-voltage_ac", T0 + 60 * MINUTE, T0 + 120 * MINUTE)
    assert zoomed.value.status == 200
    asked = parse_qs(urlparse(zoomed.value.url).query)
    seconds_per_pixel = 7 * 86_400 / 1000  # a week across about a thousand pixels, at most
    assert abs(int(asked["from"][0]) - (T0 // 1000 + 3600)) <= 2 * seconds_per_pixel
    assert abs(int(asked["to"][0]) - (T0 // 1000 + 7200)) <= 2 * seconds_per_pixel
    xs = json.loads(zoomed.value.body())["series"][0]["x"]
    assert 50 < len(xs) < 90 and xs[1] - xs[0] == MINUTE  # one-minute samples, 2-second buckets


def test_another_users_host_page_answers_404(page, live_server, people, log_in, shoot):
    page.problems.allowed += [
        f"HTTP 404: GET {live_server.url}/dashboard/sites/hosts/{people.other_host}",
        "console: Failed to load resource: the server responded with a status of 404",
    ]
    log_in(page, people.owner, "/dashboard/sites")
    answer = page.goto(f"/dashboard/sites/hosts/{people.other_host}")
    assert answer.status == 404
    shoot(page, "sites-host-of-another-user")


def test_an_admin_sees_every_users_hosts_and_the_failing_one_says_since_when(page, live_server, people, log_in):
    log_in(page, people.admin, "/dashboard/sites")
    failing = page.locator(f"tr[data-host='{people.other_host}']").inner_text()
    assert "failing since 2026-12-01 05:20 UTC" in failing and "no answer from 127.0.0.1:1503" in failing
    page.goto(f"/dashboard/sites/hosts/{people.other_host}")
    assert wait_for_charts(page, 1)["chart-voltage_ac"] == 0  # no samples: the chart says so


def test_the_host_page_fits_a_phone(phone_page, live_server, people, log_in, shoot):
    log_in(phone_page, people.owner, f"/dashboard/sites/hosts/{people.host}")
    wait_for_charts(phone_page, 4)
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1
    shoot(phone_page, "sites-host-phone")


def test_a_mailing_created_through_the_form_appears_in_the_api(page, live_server, people, log_in, shoot):
    log_in(page, people.admin, "/dashboard/mailings")
    shoot(page, "mailings-empty")
    form = page.locator("#new-mailing")
    form.get_by_label("Start (UTC)").fill("2030-01-01T09:00")
    form.get_by_label("End (UTC)").fill("2030-01-03T00:00")
    form.get_by_label("Text").fill("night owls")
    form.get_by_label("Only operator code").fill("123")
    form.get_by_label("Send from (client's local time)").fill("22:00")
    form.get_by_label("Send until (client's local time)").fill("06:00")
    form.get_by_role("button", name="Create mailing").click()
    page.wait_for_url("**/dashboard/mailings/*")
    assert "Mailing" in page.locator("h1").inner_text()
    status, body = live_server.api("GET", "/api/v1/mailings/")
    assert status == 200 and json.loads(body)["total_mailings"] >= 1
    mailing_id = int(page.url.rsplit("/", 1)[1])
    status, body = live_server.api("GET", f"/api/v1/mailings/{mailing_id}")
    mailing = json.loads(body)
    assert (mailing["start_time"], mailing["text"], mailing["send_window_start"]) == (
        "2030-01-01T09:00:00Z",
        "night owls",
        "22:00",
    )
    shoot(page, "mailing")


def test_a_bad_form_shows_the_message_next_to_the_field(page, live_server, people, log_in, shoot):
    page.problems.allowed += [
        f"HTTP 400: POST {live_server.url}/dashboard/mailings/new",
        "console: Failed to load resource: the server responded with a status of 400",
    ]
    log_in(page, people.admin, "/dashboard/mailings")
    _, before = live_server.api("GET", "/api/v1/mailings/")
    form = page.locator("#new-mailing")
    form.get_by_label("Start (UTC)").fill("2030-01-02T09:00")
    form.get_by_label("End (UTC)").fill("2030-01-01T09:00")
    form.get_by_label("Text").fill("backwards")
    form.get_by_role("button", name="Create mailing").click()
    error = page.locator("#new-mailing-end_time-error")
    error.wait_for()
    assert "must be after start_time" in error.inner_text()
    assert page.locator("#new-mailing-end_time").get_attribute("aria-invalid") == "true"
    _, after = live_server.api("GET", "/api/v1/mailings/")
    assert json.loads(after)["total_mailings"] == json.loads(before)["total_mailings"]
    shoot(page, "mailings-bad-input")


def test_a_client_created_through_the_form_and_the_mailings_progress(page, live_server, people, log_in, shoot):
    log_in(page, people.admin, "/dashboard/mailings")
    form = page.locator("#new-client")
    form.get_by_label("Phone").fill("78218173218")
    form.get_by_label("Operator code").fill("123")
    form.get_by_label("Tag").fill("VIP")
    form.get_by_label("Time zone").fill("Europe/Moscow")
    form.get_by_role("button", name="Create client").click()
    page.locator("#clients-table").wait_for()
    status, body = live_server.api("GET", "/api/v1/clients/?tag=VIP")
    assert [client["phone"] for client in json.loads(body)["results"]] == ["78218173218"]
    assert page.locator("#mailings-table .progress-counts").count() >= 1
    shoot(page, "mailings")


def test_an_anonymous_visitor_and_a_non_admin_cannot_open_the_mailings_admin(page, live_server, people, log_in):
    page.problems.allowed += [
        f"HTTP 403: GET {live_server.url}/dashboard/mailings",
        "console: Failed to load resource: the server responded with a status of 403",
    ]
    page.goto("/dashboard/mailings")
    page.wait_for_url("**/login?next=/dashboard/mailings")
    log_in(page, people.owner, "/dashboard/sites")
    assert page.goto("/dashboard/mailings").status == 403
