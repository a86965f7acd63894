"""The DSMR page in a real browser: two installations with two days of readings, a contract, and gas."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.browser.conftest import log_in, painted_datasets, wait_for_charts

SERVER_ENV = {"DSMR_API_ENABLED": "1"}
READINGS = "/api/v2/datalogger/dsmrreading"


def _key(live_server, admin, name: str) -> str:
    status, body = live_server.api(
        "POST", "/admin/dsmr/installations", {"name": name}, {"Authorization": f"Token {admin.token}"}
    )
    assert status == 201, body
    return json.loads(body)["key"]


def _post_two_days(live_server, key: str, step: Decimal) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    start = (now - timedelta(days=2)).replace(minute=0, second=0)
    moments = [start + index * timedelta(minutes=30) for index in range(int((now - start) / timedelta(minutes=30)))]
    # And one now: with only the half hours, in the hour after local midnight today's one reading could be
    # midnight's itself (or none), and the page rightly showed no figures for today.
    moments.append(now)
    for index, moment in enumerate(moments):
        hour = moment.replace(minute=0, second=0)
        body = {
            "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "electricity_currently_delivered": "0.5",
            "electricity_currently_returned": "0",
            "electricity_delivered_1": str(Decimal("100") + index * step),
            "electricity_delivered_2": str(Decimal("200") + index * 2 * step),
            "electricity_returned_1": "0",
            "electricity_returned_2": str(Decimal("10") + index * step / 4),
            "extra_device_timestamp": hour.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "extra_device_delivered": str(Decimal("50") + (hour - start) // timedelta(hours=1) * Decimal("0.3")),
        }
        status, answer = live_server.api("POST", READINGS, body, {"X-AUTHKEY": key})
        assert status == 201, answer
    contract = {
        "start": (start - timedelta(days=1)).date().isoformat(),
        "description": "Fixed",
        "electricity_delivered_1_price": "0.21",
        "electricity_delivered_2_price": "0.25",
        "electricity_returned_1_price": "0.08",
        "electricity_returned_2_price": "0.08",
        "gas_price": "1.35",
        "fixed_daily_cost": "0.92",
    }
    status, answer = live_server.api("POST", "/api/v2/consumption/energy-supplier-prices", contract, {"X-AUTHKEY": key})
    assert status == 201, answer


@pytest.fixture(scope="module")
def installations(live_server):
    admin = live_server.user("dsmradmin", admin=True)
    _post_two_days(live_server, _key(live_server, admin, "home"), Decimal("0.1"))
    _post_two_days(live_server, _key(live_server, admin, "cabin"), Decimal("0.02"))
    return admin


def test_an_admin_sees_today_the_day_and_hour_charts_the_contract_and_the_meter(page, installations, shoot):
    log_in(page, installations, "/dashboard/dsmr")
    drawn = wait_for_charts(page, 5)
    assert drawn == {"dsmr-days": 3, "dsmr-days-gas": 1, "dsmr-days-cost": 4, "dsmr-hours": 3, "dsmr-hours-gas": 1}
    assert painted_datasets(page, "dsmr-days") == 3  # tariff 1, tariff 2 and the returned energy below zero
    assert painted_datasets(page, "dsmr-days-cost") == 4
    assert page.locator("#today .figure-value").count() == 4
    assert page.locator("#contracts tbody tr").all_inner_texts()[0].split("\t")[2] == "Fixed"
    assert page.locator("#meter-statistics").is_visible()
    shoot(page, "dsmr")


def test_the_picker_shows_the_other_installation(page, installations):
    log_in(page, installations, "/dashboard/dsmr")
    selected = page.get_by_label("Installation").input_value()
    other = "home" if selected == "cabin" else "cabin"
    page.get_by_label("Installation").select_option(other)
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(f"**installation={other}**")
    assert page.get_by_role("heading", level=1).inner_text() == f"DSMR: {other}"
    wait_for_charts(page, 5)


def test_a_user_who_is_no_admin_gets_403_and_an_anonymous_visitor_the_login(page, live_server, installations):
    page.problems.allowed += ["HTTP 403: GET", "status of 403"]
    page.goto("/dashboard/dsmr")
    page.wait_for_url("**/login?next=/dashboard/dsmr")
    log_in(page, live_server.user("dsmrplain"), "/")
    assert page.goto("/dashboard/dsmr").status == 403
