"""The OMS devices page in a real browser: latest values, the search and the CSV download."""

from __future__ import annotations

import pytest


def _message(identnr: int, manufacturer: int, moment: str, energy: int) -> dict:
    return {
        "data": [
            {"value": moment, "tariff": 0, "subunit": 0, "dimension": "Time Point (time & date)", "storagenr": 0},
            {"value": energy, "tariff": 0, "subunit": 0, "dimension": "Energy (kWh)", "storagenr": 0},
            {
                "value": "2026-09-30T00:00:00",
                "tariff": 0,
                "subunit": 0,
                "dimension": "Time Point (date)",
                "storagenr": 1,
            },
            {"value": energy - 100, "tariff": 0, "subunit": 0, "dimension": "Energy (kWh)", "storagenr": 1},
        ],
        "device": {
            "type": 4,
            "status": 0,
            "identnr": identnr,
            "version": 0,
            "accessnr": 1,
            "manufacturer": manufacturer,
        },
    }


@pytest.fixture(scope="module")
def devices(live_server):
    for message in [
        _message(83251076, 5317, "2026-11-30T06:49:00", 29690),
        _message(83251076, 5317, "2026-11-29T06:49:00", 29000),  # older: never the latest
        _message(12345678, 5317, "2026-11-30T07:00:00", 100),
        _message(55555555, 0x4024, "2026-11-30T08:00:00", 7),  # PAD
    ]:
        status, body = live_server.api("POST", "/commit", message)
        assert status == 200, body


def test_devices_are_listed_with_their_latest_values_and_message_time(page, devices, shoot):
    page.goto("/dashboard/oms")
    assert page.locator("#device-count").inner_text() == "3 devices."
    first = page.locator("#devices tbody tr").filter(has_text="83251076")
    assert "2026-11-30 06:49 UTC" in first.inner_text()
    assert "Energy (kWh): 29690" in first.inner_text()
    shoot(page, "oms")


def test_the_search_finds_a_device_by_its_manufacturers_letters_and_its_first_digits(page, devices):
    page.goto("/dashboard/oms")
    page.get_by_label("Device id and/or manufacturer").fill("EFE 8325")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**q=EFE*")
    assert page.locator("#devices tbody tr").count() == 1
    assert page.locator("#device-count").inner_text() == '1 device match "EFE 8325".'


def test_a_search_that_is_no_id_or_manufacturer_explains_itself(page, devices):
    page.problems.allowed += ["HTTP 400: GET", "status of 400"]
    response = page.goto("/dashboard/oms?q=%3Cscript%3E")
    assert response.status == 400
    assert "a device id (or its first digits)" in page.locator("main").inner_text()


def test_the_csv_download_is_the_exports(page, devices, tmp_path):
    page.goto("/dashboard/oms")
    with page.expect_download() as download:
        page.locator("#download-all").click()
    saved = tmp_path / "OMS-Data.csv"
    download.value.save_as(saved)
    lines = saved.read_text().splitlines()
    assert len(lines) == 4  # the header and one row per device
    assert any("29690" in line for line in lines)
    assert not any("29000" in line for line in lines)  # the older message is not the latest


def test_the_download_form_sends_only_the_fields_filled_in(page, devices, tmp_path):
    # A navigation that turns into a download is "aborted" as a navigation: Chromium's way, not a failure.
    page.problems.allowed.append("/export?manufacturer=flag net::ERR_ABORTED")
    page.goto("/dashboard/oms")
    page.get_by_label("Manufacturer as").select_option("flag")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download").click()
    saved = tmp_path / "flag.csv"
    download.value.save_as(saved)
    assert "EFE" in saved.read_text()
