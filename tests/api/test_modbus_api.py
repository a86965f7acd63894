"""The Modbus polling API: samples (raw, paged, bucketed), poll records, and a host's energy priced,
with the authorization matrix (anonymous, the owner, another user, an admin)."""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qs, urlsplit

import pytest

import tasks
from domain.modbus import HostOutcome
from modbus_reader import Sample
from repository import db
from repository import modbus as modbus_repo
from tests.support import modbus_simulator as sim
from tests.support import silesia_sites

T0 = 1_796_110_800_123  # 2026-12-01T07:40:00.123Z
MINUTE = 60_000


@dataclasses.dataclass
class Site:
    owner: silesia_sites.Account
    other: silesia_sites.Account
    admin: silesia_sites.Account
    host: int
    other_host: int


@pytest.fixture
def site(client):
    with db.database.connection_context():
        owner, other, admin = silesia_sites.account(), silesia_sites.account(), silesia_sites.account(admin=True)
        host = silesia_sites.host(owner, 1502)
        other_host = silesia_sites.host(other, 1503)
    return Site(owner, other, admin, host, other_host)


def store(samples, outcomes=()):
    with db.database.connection_context():
        modbus_repo.store_round(samples, list(outcomes))


def volt(time_ms, value, host):
    return Sample(host, "voltage_ac", 1, "V", time_ms, value)


def energy(time_ms, value, host):
    return Sample(host, "active_energy_consumed", 2, "kWh", time_ms, value)


def get(client, path, account=None, **params):
    return client.get(path, params=params, headers=account.headers if account else {})


# ---- samples ----


def test_samples_answer_the_issues_shape_with_millisecond_utc_times(client, site):
    store([volt(T0, 230.1, site.host)])
    response = get(client, f"/user/hosts/{site.host}/samples", site.owner)
    assert response.status_code == 200
    assert response.json() == [
        {"time": "2026-12-01T07:40:00.123Z", "measurement": "voltage_ac", "value": 230.1, "unit": "V"}
    ]
    assert "Link" not in response.headers


def test_from_and_to_are_inclusive_iso_date_times_naive_meaning_utc_or_epoch_seconds(client, site):
    store([volt(T0 + index * MINUTE, 230.0 + index, site.host) for index in range(5)])
    path = f"/user/hosts/{site.host}/samples"
    iso = get(client, path, site.owner, **{"from": "2026-12-01T07:41:00.123Z", "to": "2026-12-01T08:43:00.123+01:00"})
    naive = get(client, path, site.owner, **{"from": "2026-12-01T07:41:00.123", "to": "2026-12-01T07:43:00.123"})
    assert [item["value"] for item in iso.json()] == [231.0, 232.0, 233.0]
    assert [item["value"] for item in naive.json()] == [231.0, 232.0, 233.0]
    seconds = get(client, path, site.owner, **{"from": str((T0 + 3 * MINUTE) // 1000)})
    assert [item["value"] for item in seconds.json()] == [233.0, 234.0]


@pytest.mark.parametrize(
    "params",
    [
        {"from": "yesterday"},
        {"to": "2026-13-01T00:00:00Z"},
        {"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"},
        {"from": "1\n"},
        {"measurement": "Voltage AC"},
        {"measurement": "voltage_ac\n"},
        {"cursor": "abc"},
        {"bucket": "week"},
        {"limit": "0"},
        {"limit": "10001"},
    ],
)
def test_bad_parameters_answer_400_naming_what_to_fix(client, site, params):
    response = get(client, f"/user/hosts/{site.host}/samples", site.owner, **params)
    assert response.status_code == 400, response.text
    assert response.json()["detail"]


def test_the_measurement_filter_keeps_only_that_measurement(client, site):
    store([volt(T0, 230.0, site.host), energy(T0, 12.5, site.host)])
    response = get(client, f"/user/hosts/{site.host}/samples", site.owner, measurement="active_energy_consumed")
    assert response.json() == [
        {"time": "2026-12-01T07:40:00.123Z", "measurement": "active_energy_consumed", "value": 12.5, "unit": "kWh"}
    ]
    assert get(client, f"/user/hosts/{site.host}/samples", site.owner, measurement="frequency").json() == []


def test_long_ranges_are_paged_by_a_cursor_in_the_link_header(client, site):
    store(
        [volt(T0 + index * 1000, float(index), site.host) for index in range(7)] + [energy(T0 + 1000, 1.0, site.host)]
    )
    seen, url = [], f"/user/hosts/{site.host}/samples?limit=3&measurement=voltage_ac"
    while url:
        response = client.get(url, headers=site.owner.headers)
        assert response.status_code == 200
        seen += [item["value"] for item in response.json()]
        link = response.headers.get("Link")
        if link is None:
            break
        next_url = link[1 : link.index(">")]
        assert parse_qs(urlsplit(next_url).query)["cursor"] == [response.headers["X-Next-Cursor"]]
        assert parse_qs(urlsplit(next_url).query)["measurement"] == ["voltage_ac"]
        url = next_url
    assert seen == [float(index) for index in range(7)]


def test_hour_buckets_give_min_mean_max_and_a_counters_increase(client, site):
    store(
        [volt(T0, 228.0, site.host), volt(T0 + MINUTE, 232.0, site.host)]
        + [
            energy(T0, 100.0, site.host),
            energy(T0 + MINUTE, 100.5, site.host),
            energy(T0 + 30 * MINUTE, 101.25, site.host),
        ]
    )
    response = get(client, f"/user/hosts/{site.host}/samples", site.owner, bucket="hour")
    assert response.status_code == 200
    assert response.json() == [
        {
            "time": "2026-12-01T07:00:00.000Z",
            "measurement": "voltage_ac",
            "unit": "V",
            "min": 228.0,
            "mean": 230.0,
            "max": 232.0,
            "samples": 2,
        },
        {
            "time": "2026-12-01T07:00:00.000Z",
            "measurement": "active_energy_consumed",
            "unit": "kWh",
            "increase": 0.5,
            "samples": 2,
        },
        {
            "time": "2026-12-01T08:00:00.000Z",
            "measurement": "active_energy_consumed",
            "unit": "kWh",
            "increase": 0.75,
            "samples": 1,
        },
    ]


def test_bucket_pages_follow_the_cursor(client, site):
    store([volt(T0 + index * MINUTE, float(index), site.host) for index in range(5)])
    first = get(client, f"/user/hosts/{site.host}/samples", site.owner, bucket="minute", limit=3)
    rest = get(
        client,
        f"/user/hosts/{site.host}/samples",
        site.owner,
        bucket="minute",
        limit=3,
        cursor=first.headers["X-Next-Cursor"],
    )
    assert [item["mean"] for item in first.json() + rest.json()] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert "X-Next-Cursor" not in rest.headers


# ---- authorization ----

USER_PATHS = ["samples", "status", "price-plans"]


@pytest.mark.parametrize("path", USER_PATHS)
def test_without_a_token_every_host_path_answers_401(client, site, path):
    assert get(client, f"/user/hosts/{site.host}/{path}").status_code == 401
    assert get(client, f"/admin/hosts/{site.host}/status").status_code == 401


@pytest.mark.parametrize("path", USER_PATHS)
def test_another_users_host_and_a_missing_host_answer_404_alike(client, site, path):
    store([energy(T0, 1.0, site.other_host), energy(T0 + MINUTE, 2.0, site.other_host)])
    theirs = get(client, f"/user/hosts/{site.other_host}/{path}", site.owner)
    missing = get(client, f"/user/hosts/999999/{path}", site.owner)
    assert theirs.status_code == missing.status_code == 404
    # Under /user/ even an admin sees only their own hosts.
    assert get(client, f"/user/hosts/{site.host}/{path}", site.admin).status_code == 404


def test_a_host_id_with_a_trailing_newline_is_refused(client, site):
    response = client.get(f"/user/hosts/{site.host}%0A/status", headers=site.owner.headers)
    assert 400 <= response.status_code < 500


def test_admins_see_any_hosts_status_and_others_get_403(client, site):
    assert get(client, f"/admin/hosts/{site.host}/status", site.admin).status_code == 200
    assert get(client, f"/admin/hosts/{site.other_host}/status", site.admin).json()["host"] == site.other_host
    assert get(client, f"/admin/hosts/{site.host}/status", site.owner).status_code == 403
    assert get(client, "/admin/hosts/999999/status", site.admin).status_code == 404


# ---- status ----


def test_status_before_the_first_poll_is_all_null(client, site):
    assert get(client, f"/user/hosts/{site.host}/status", site.owner).json() == {
        "host": site.host,
        "last_poll_at": None,
        "last_success_at": None,
        "last_error": None,
        "last_error_at": None,
        "consecutive_failures": 0,
        "last_outcome": None,
        "measurements_read": 0,
        "measurements_failed": 0,
        "failing_since": None,
    }


def test_status_shows_the_last_success_and_the_errors_since(client, site):
    with db.database.connection_context():
        modbus_repo.claim_due_hosts([site.host], now_ms=T0, interval_ms=MINUTE, lease_ms=MINUTE)
    store([volt(T0, 230.0, site.host)], [HostOutcome(site.host, T0, 1, 0)])
    store([], [HostOutcome(site.host, T0 + MINUTE, 0, 1, ("no answer from 127.0.0.1:1502 (unit 1) within 3 s",))])
    store(
        [],
        [HostOutcome(site.host, T0 + 2 * MINUTE, 0, 1, ("cannot connect to 127.0.0.1:1502 (refused or unreachable)",))],
    )
    assert get(client, f"/user/hosts/{site.host}/status", site.owner).json() == {
        "host": site.host,
        "last_poll_at": "2026-12-01T07:42:00.123Z",
        "last_success_at": "2026-12-01T07:40:00.123Z",
        "last_error": "cannot connect to 127.0.0.1:1502 (refused or unreachable)",
        "last_error_at": "2026-12-01T07:42:00.123Z",
        "consecutive_failures": 2,
        "last_outcome": "failed",
        "measurements_read": 0,
        "measurements_failed": 1,
        "failing_since": "2026-12-01T07:41:00.123Z",
    }


# ---- price plans ----


def test_ten_kwh_counted_by_the_host_cost_10_20_and_100_on_the_seeded_plans(client, site):
    store(
        [
            energy(T0, 1000.0, site.host),
            energy(T0 + 15 * MINUTE, 1004.0, site.host),
            energy(T0 + 30 * MINUTE, 1010.0, site.host),
        ]
    )
    response = get(client, f"/user/hosts/{site.host}/price-plans", site.owner)
    assert response.status_code == 200
    assert response.json() == {
        "pricePlanId": None,
        "pricePlanComparisons": [{"price-plan-2": 10.0}, {"price-plan-1": 20.0}, {"price-plan-0": 100.0}],
    }


def test_the_price_window_takes_epoch_seconds_as_compare_all_does(client, site):
    store(
        [
            energy(T0, 1000.0, site.host),
            energy(T0 + 15 * MINUTE, 1004.0, site.host),
            energy(T0 + 30 * MINUTE, 1010.0, site.host),
        ]
    )
    response = get(
        client, f"/user/hosts/{site.host}/price-plans", site.owner, **{"from": str((T0 + 15 * MINUTE) // 1000 + 1)}
    )
    assert response.json()["pricePlanComparisons"][0] == {"price-plan-2": 6.0}


def test_a_meter_reset_and_a_long_gap_are_not_priced(client, site):
    hour = 60 * MINUTE
    store(
        [
            energy(T0, 1000.0, site.host),
            energy(T0 + MINUTE, 1001.0, site.host),
            energy(T0 + 2 * MINUTE, 5.0, site.host),
            energy(T0 + 3 * MINUTE, 6.0, site.host),
            energy(T0 + 3 * MINUTE + 2 * hour, 50.0, site.host),
        ]
    )
    response = get(client, f"/user/hosts/{site.host}/price-plans", site.owner)
    assert response.json()["pricePlanComparisons"][0] == {"price-plan-2": 2.0}


def test_a_host_without_counter_samples_has_nothing_to_price(client, site):
    store([volt(T0, 230.0, site.host)])
    response = get(client, f"/user/hosts/{site.host}/price-plans", site.owner)
    assert response.status_code == 404
    assert "active_energy_consumed" in response.json()["detail"]


# ---- end to end: polled by the task, read through the API ----


def test_what_a_round_read_from_the_simulated_meter_is_what_the_api_answers(client, site, monkeypatch):
    monkeypatch.setattr(
        tasks, "settings", dataclasses.replace(tasks.settings, modbus_poll_seconds=2, modbus_timeout_seconds=1)
    )
    with sim.sdm630_gateway() as gateway, db.database.connection_context():
        polled = silesia_sites.host(site.owner, gateway.port, measurements=["voltage_ac", "active_energy_consumed"])
        tasks.poll_round.call_local()
    values = {
        item["measurement"]: item["value"] for item in get(client, f"/user/hosts/{polled}/samples", site.owner).json()
    }
    assert values == {"voltage_ac": 230.1, "active_energy_consumed": 12345.625}
    status = get(client, f"/user/hosts/{polled}/status", site.owner).json()
    assert status["last_outcome"] == "ok" and status["last_success_at"] == status["last_poll_at"]


def test_a_host_made_and_assigned_through_the_management_api_is_polled_and_its_deletion_drops_its_samples(
    client, site, monkeypatch
):
    monkeypatch.setattr(
        tasks, "settings", dataclasses.replace(tasks.settings, modbus_poll_seconds=2, modbus_timeout_seconds=1)
    )
    with sim.sdm630_gateway() as gateway:
        location = client.post(
            "/user/locations",
            json={
                "user": site.owner.id,
                "street": "SunnyStreet",
                "number": "68",
                "city": "SilliconCity",
                "zip_code": "11-420",
            },
            headers=site.owner.headers,
        ).json()["id"]
        with db.database.connection_context():
            meter = silesia_sites.meter_id("sdm630")
        body = {
            "ip": "127.0.0.1",
            "port": gateway.port,
            "slave_address": 2,
            "description": "roof",
            "user": site.owner.id,
            "location": location,
            "meter": meter,
        }
        created = client.post("/admin/hosts", json=body, headers=site.admin.headers)
        assert created.status_code in (200, 201), created.text
        host = created.json()["id"]
        assigned = client.post(
            f"/user/hosts/{host}/measurements", json={"measurements": ["active_power"]}, headers=site.owner.headers
        )
        assert assigned.status_code in (200, 201), assigned.text
        with db.database.connection_context():
            tasks.poll_round.call_local()
    samples = get(client, f"/user/hosts/{host}/samples", site.owner).json()
    assert [(item["measurement"], item["value"], item["unit"]) for item in samples] == [("active_power", 2234.5, "W")]
    assert client.delete(f"/admin/hosts/{host}", headers=site.admin.headers).status_code in (200, 204)
    with db.database.connection_context():
        assert modbus_repo.samples(host, measurement=None, start_ms=None, end_ms=None, limit=10) == []
        assert modbus_repo.poll_status(host) is None
