"""The SilesiaSolar pages over HTTP: who sees which sites and hosts, a chart per assigned measurement with
no line over 2,000 points, the host's plan comparison, and a bad window refused with its message."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest

from domain.modbus import HostOutcome
from modbus_reader import Sample
from repository import db
from repository import modbus as modbus_repo
from tests.support import silesia_sites
from tests.support.accounts import PASSWORD, register, register_admin

T0 = 1_796_102_400_000  # 2026-12-01T05:20:00Z
MINUTE = 60_000
WEEK_OF_MINUTES = 7 * 24 * 60


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html)[1]


def log_in(client, username: str) -> None:
    token = csrf_of(client.get("/login").text)
    answer = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert answer.status_code in (200, 303), answer.text


def charts(html: str) -> dict[str, dict]:
    """Every chart spec the page embeds, by chart id."""
    found = re.findall(r'<script type="application/json" id="([^"]+)-data">(.*?)</script>', html, re.S)
    return {chart_id: json.loads(body) for chart_id, body in found}


@pytest.fixture
def site(client):
    owner, other, admin = register(client, "sunny"), register(client, "cloudy"), register_admin(client, "boss")
    with db.database.connection_context():
        host = silesia_sites.host(
            SimpleNamespace(id=owner.id), 1502, measurements=["voltage_ac", "active_energy_consumed"]
        )
        other_host = silesia_sites.host(SimpleNamespace(id=other.id), 1503, measurements=["voltage_ac"])
        modbus_repo.store_round([], [HostOutcome(other_host, T0, 0, 1, ("no answer within 3 s",))])
    return SimpleNamespace(owner=owner, other=other, admin=admin, host=host, other_host=other_host)


@pytest.fixture
def week(site):
    """A week of one-minute samples of the owner's host: a voltage and an energy counter."""
    samples = [Sample(site.host, "voltage_ac", 1, "V", T0 + i * MINUTE, 230.0 + i % 7) for i in range(WEEK_OF_MINUTES)]
    samples += [
        Sample(site.host, "active_energy_consumed", 2, "kWh", T0 + i * MINUTE, i / 60) for i in range(WEEK_OF_MINUTES)
    ]
    with db.database.connection_context():
        modbus_repo.store_round(samples, [])
    return site


def test_the_sites_page_asks_for_a_login_first(client, site):
    answer = client.get("/dashboard/sites", follow_redirects=False)
    assert answer.status_code in (302, 303)
    assert "/login?next=/dashboard/sites" in answer.headers["location"]


def test_a_user_sees_their_own_hosts_with_poll_status_and_not_anothers(client, site):
    log_in(client, "sunny")
    page = client.get("/dashboard/sites").text
    assert f'data-host="{site.host}"' in page and f'data-host="{site.other_host}"' not in page
    assert "not polled yet" in page


def test_the_failing_host_says_since_when_and_its_last_error(client, site):
    log_in(client, "cloudy")
    page = client.get("/dashboard/sites").text
    assert "failing since 2026-12-01 05:20 UTC (1 poll)" in page
    assert "no answer within 3 s" in page


def test_another_users_host_page_answers_404_and_an_admin_sees_it(client, site):
    log_in(client, "sunny")
    assert client.get(f"/dashboard/sites/hosts/{site.other_host}").status_code == 404
    assert client.get(f"/dashboard/sites/hosts/{site.other_host}/charts/voltage_ac").status_code == 404
    assert client.get("/dashboard/sites/hosts/999999").status_code == 404
    client.post("/logout", data={"csrf_token": csrf_of(client.get("/").text)})
    log_in(client, "boss")
    assert client.get(f"/dashboard/sites/hosts/{site.other_host}").status_code == 200
    admin_overview = client.get("/dashboard/sites").text
    assert f'data-host="{site.host}"' in admin_overview and f'data-host="{site.other_host}"' in admin_overview


def test_the_host_page_draws_a_line_per_instantaneous_measurement_and_energy_bars_per_hour(client, week, site):
    log_in(client, "sunny")
    answer = client.get(f"/dashboard/sites/hosts/{site.host}")
    assert answer.status_code == 200
    found = charts(answer.text)
    assert set(found) == {"chart-voltage_ac", "chart-active_energy_consumed", "chart-plans"}
    voltage, energy = found["chart-voltage_ac"], found["chart-active_energy_consumed"]
    assert voltage["kind"] == "line" and len(voltage["series"]) == 1
    assert 900 < len(voltage["series"][0]["x"]) <= 2000  # a week of minutes, per 10 minutes
    assert energy["kind"] == "bar" and len(energy["series"][0]["x"]) == 169  # the UTC hours of the week
    assert sum(energy["series"][0]["y"]) == pytest.approx((WEEK_OF_MINUTES - 1) / 60)


def test_energy_per_day_when_asked(client, week, site):
    log_in(client, "sunny")
    found = charts(client.get(f"/dashboard/sites/hosts/{site.host}", params={"energy": "day"}).text)
    assert len(found["chart-active_energy_consumed"]["series"][0]["x"]) == 8


def test_the_plan_comparison_is_cheapest_first_with_the_recommendation_marked(client, week, site):
    log_in(client, "sunny")
    page = client.get(f"/dashboard/sites/hosts/{site.host}").text
    plans = charts(page)["chart-plans"]["series"][0]
    api = client.get(f"/user/hosts/{site.host}/price-plans", headers=site.owner.headers).json()
    assert len(plans["x"]) == len(api["pricePlanComparisons"])
    assert plans["x"][0] == next(iter(api["pricePlanComparisons"][0]))
    assert plans["text"][0] == "recommended" and plans["text"][1:] == [""] * (len(plans["x"]) - 1)


def test_a_zoomed_window_comes_back_at_full_resolution_as_json(client, week, site):
    log_in(client, "sunny")
    start = T0 // 1000
    answer = client.get(
        f"/dashboard/sites/hosts/{site.host}/charts/voltage_ac", params={"from": start, "to": start + 3600}
    )
    assert answer.status_code == 200
    assert answer.json()["series"][0]["y"][:3] == [230.0, 231.0, 232.0]  # 2-second buckets: the samples


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"from": "2026-12-08T00:00", "to": "2026-12-01T00:00"}, "from must be before to"),
        ({"from": "soon"}, "ISO 8601"),
    ],
)
def test_a_bad_window_answers_400_with_the_message_and_the_default_week(client, week, site, params, words):
    log_in(client, "sunny")
    answer = client.get(f"/dashboard/sites/hosts/{site.host}", params=params)
    assert answer.status_code == 400
    assert words in answer.text and 'aria-invalid="true"' in answer.text
    assert "chart-voltage_ac" in charts(answer.text)
