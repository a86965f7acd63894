"""The JOI meter pages in a real browser, with a week of one-minute readings."""

from __future__ import annotations

import time

import pytest

from tests.browser.conftest import chart_data, drag_across, painted_datasets, wait_for_charts

WEEK = 7 * 86_400
METER = "smart-meter-0"  # a seeded account on price-plan-0


@pytest.fixture(scope="module")
def week_of_readings(live_server):
    end = (int(time.time()) // 60) * 60 - 3600
    start = end - WEEK
    times = list(range(start, end, 60))
    for first in range(0, len(times), 10_000):
        batch = [{"time": t, "reading": 0.5 + (t % 3600) / 3600} for t in times[first : first + 10_000]]
        status, body = live_server.api("POST", "/readings/store", {"smartMeterId": METER, "electricityReadings": batch})
        assert status == 200, body
    return start, times[-1]


def test_the_meter_list_links_to_each_meter(page, week_of_readings, shoot):
    page.goto("/dashboard/meters")
    shoot(page, "meters")
    page.get_by_role("link", name=METER).click()
    page.wait_for_url(f"**/dashboard/meters/{METER}")


def test_a_week_of_minute_readings_draws_power_daily_energy_and_plan_costs(page, week_of_readings, shoot):
    page.goto(f"/dashboard/meters/{METER}")
    drawn = wait_for_charts(page, 3)
    assert drawn == {"power": 1, "daily": 1, "costs": 1}
    assert painted_datasets(page, "power") == 1
    assert painted_datasets(page, "daily") == 1
    assert painted_datasets(page, "costs") == 1
    points = chart_data(page, "power", "chart.data.datasets[0].data.filter(point => point.y !== null).length")
    assert 1000 < points <= 2000  # 10,080 readings reduced on the server
    assert chart_data(page, "costs", "chart.data.datasets[0].text") == ["recommended", "", "your plan"]
    assert page.locator("#recommended-plan").inner_text() == "price-plan-2"
    notes = page.locator("#cost-table tbody tr td:last-child").all_inner_texts()
    assert notes == ["recommended", "", "your plan"]
    shoot(page, "meter")


POWER_STEPS = "(() => { const x = chart.data.datasets[0].data.filter(p => p.y !== null).map(p => p.x);"
POWER_STEPS += " return x.length > 1 ? x[1] - x[0] : null; })()"
WINDOW = "[chart.scales.x.min, chart.scales.x.max]"


def _power_answer(page):
    return page.expect_response(lambda response: "/power.json?" in response.url)


def test_dragging_across_the_power_chart_fetches_that_window_at_full_resolution(page, week_of_readings):
    page.goto(f"/dashboard/meters/{METER}")
    wait_for_charts(page, 3)
    first, last = chart_data(page, "power", WINDOW)
    start, end = first + (last - first) * 0.50, first + (last - first) * 0.52
    with _power_answer(page) as answer:
        drag_across(page, "power", start, end)
    assert answer.value.status == 200
    # one-minute points again: the zoomed window is small enough for every reading
    page.wait_for_function(
        "() => { const chart = Chart.getChart(document.querySelector('#power-area canvas'));"
        f" return {POWER_STEPS} === 60000; }}"
    )
    shown = chart_data(page, "power", WINDOW)
    pixel = (last - first) / chart_data(page, "power", "chart.chartArea.width")
    assert abs(shown[0] - start) <= 2 * pixel and abs(shown[1] - end) <= 2 * pixel
    assert painted_datasets(page, "power") == 1
    page.get_by_role("button", name="Reset zoom").click()
    assert chart_data(page, "power", WINDOW) == [first, last]
    assert chart_data(page, "power", POWER_STEPS) > 60000
    assert page.get_by_role("button", name="Reset zoom").is_disabled()


def test_the_keyboard_zooms_moves_and_resets_the_power_chart(page, week_of_readings):
    page.goto(f"/dashboard/meters/{METER}")
    wait_for_charts(page, 3)
    first, last = chart_data(page, "power", WINDOW)
    page.locator("#power-area").focus()
    with _power_answer(page) as answer:
        page.keyboard.press("+")
    assert answer.value.status == 200
    quarter = (last - first) / 4
    # As after every key below: the chart takes its new window a moment after the answer arrived.
    _wait_for_power_window(page, f"min === {round(first + quarter)} && max === {round(last - quarter)}")
    assert chart_data(page, "power", WINDOW) == [round(first + quarter), round(last - quarter)]
    with _power_answer(page):
        page.keyboard.press("ArrowRight")
    _wait_for_power_window(page, f"min > {round(first + quarter)}")
    assert chart_data(page, "power", WINDOW)[0] > round(first + quarter)
    page.keyboard.press("Escape")
    _wait_for_power_window(page, f"min === {first} && max === {last}")
    assert chart_data(page, "power", WINDOW) == [first, last]


def _wait_for_power_window(page, condition: str) -> None:
    """Until the power chart's x window (`min`, `max`) meets `condition` (a JavaScript expression), 5 s at most."""
    page.wait_for_function(
        "() => { const x = Chart.getChart(document.querySelector('#power-area canvas')).scales.x;"
        f" const min = x.min, max = x.max; return {condition}; }}",
        timeout=5000,
    )


def test_a_chosen_window_prices_only_that_window(page, week_of_readings):
    start, _ = week_of_readings
    page.goto(f"/dashboard/meters/{METER}?from={start}&to={start + 86_400}")
    drawn = wait_for_charts(page, 3)
    assert drawn["daily"] == 1
    days = chart_data(page, "daily", "chart.data.labels.length")
    assert days <= 2


def test_the_meter_page_fits_a_phone(phone_page, week_of_readings, shoot):
    phone_page.goto(f"/dashboard/meters/{METER}")
    wait_for_charts(phone_page, 3)
    assert phone_page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth") <= 0
    shoot(phone_page, "meter-phone")


def test_an_unknown_meter_answers_a_404_page(page, live_server):
    page.problems.allowed += ["HTTP 404: GET", "status of 404"]
    response = page.goto("/dashboard/meters/no-such-meter")
    assert response.status == 404
    assert page.get_by_role("heading", level=1).inner_text() == "404 Not Found"
