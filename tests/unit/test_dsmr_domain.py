"""DSMR-reader API rules without a database: keys, fields, telegrams as readings, meters, list parameters and
the statistics upkeep. Expected figures are worked out by hand beside each test."""

import random
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from domain.dsmr import (
    _COUNTER_CODES,
    DsmrReading,
    FieldErrors,
    Installation,
    PageRequest,
    check_named_meter,
    check_telegram_meter,
    day_from_hours,
    hash_api_key,
    instant_window,
    key_matches,
    meter_counters,
    meter_from_equipment_id,
    page_link_params,
    page_request,
    presented_key,
    prices_from_fields,
    reading_from_fields,
    reading_from_telegram,
    repriced,
    stored_telegram_text,
)
from domain.errors import InvalidInput
from domain.statistics import EnergyPrices, MeterPosition, day_statistics, hour_statistics
from domain.telegram import parse_telegram
from tests.support.telegrams import SEED_TELEGRAM, VARIANTS, make_telegram

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
D = Decimal
SEED_FIELDS = {
    "electricity_currently_delivered": 1.500,
    "electricity_currently_returned": 0.025,
    "electricity_delivered_1": 2000,
    "electricity_delivered_2": 3000,
    "electricity_returned_1": 0,
    "electricity_returned_2": 0,
    "timestamp": "2017-04-15T00:00:00+02",
}


def fields(**changes):
    values = {**SEED_FIELDS, **changes}
    return {name: value for name, value in values.items() if value is not ...}


def read(data, now=NOW):
    return reading_from_fields(data, AMSTERDAM, now=now, max_future_skew=86_400)


def errors_of(data) -> dict:
    with pytest.raises(FieldErrors) as caught:
        read(data)
    return caught.value.errors


# --- the API key ---------------------------------------------------------------------------------------------


def test_the_key_is_taken_from_x_authkey_or_an_authorization_token_header():
    assert presented_key("abc", None) == "abc"
    assert presented_key(None, "Token abc") == "abc"
    assert presented_key(None, "token   abc ") == "abc"
    assert presented_key(None, "Bearer abc") is None
    assert presented_key(None, None) is None


def test_the_configured_key_is_compared_exactly():
    assert key_matches("k", "k")
    assert not key_matches("K", "k")


def test_no_configured_key_lets_nobody_in_by_it():
    assert not key_matches("", None)
    assert not key_matches("anything", None)
    assert not key_matches(None, "k")


def test_keys_are_stored_as_a_sha256_hash_not_as_themselves():
    stored = hash_api_key("secret")
    assert stored.startswith("sha256$") and "secret" not in stored and len(stored) == len("sha256$") + 64


# --- v2 reading fields ---------------------------------------------------------------------------------------


def test_the_seed_example_becomes_a_reading_at_its_utc_instant_with_exact_decimals():
    reading = read(SEED_FIELDS)
    assert reading.timestamp == datetime(2017, 4, 14, 22, 0, tzinfo=UTC)
    assert reading.electricity_currently_delivered == D("1.5")
    assert reading.electricity_currently_returned == D("0.025")
    assert reading.electricity_delivered_2 == D("3000")
    assert reading.meter is None and reading.extra_device_timestamp is None


def test_form_values_are_text_and_read_the_same_as_json_numbers():
    as_text = {name: str(value) for name, value in SEED_FIELDS.items()}
    assert read(as_text) == read(SEED_FIELDS)


def test_a_naive_timestamp_is_local_time_in_the_configured_zone():
    summer = read(fields(timestamp="2017-04-15 00:00:00"))
    winter = read(fields(timestamp="2017-01-15T00:00"))
    assert summer.timestamp == datetime(2017, 4, 14, 22, tzinfo=UTC)
    assert winter.timestamp == datetime(2017, 1, 14, 23, tzinfo=UTC)


def test_z_and_offsets_are_honoured_and_fractions_of_a_second_dropped():
    assert read(fields(timestamp="2017-04-15T10:00:00Z")).timestamp == datetime(2017, 4, 15, 10, tzinfo=UTC)
    assert read(fields(timestamp="2017-04-15T10:00:00.999-01:00")).timestamp == datetime(2017, 4, 15, 11, tzinfo=UTC)


def test_every_missing_required_field_is_named_with_drfs_message():
    assert errors_of({}) == {
        name: ["This field is required."]
        for name in (
            "timestamp",
            "electricity_delivered_1",
            "electricity_returned_1",
            "electricity_delivered_2",
            "electricity_returned_2",
            "electricity_currently_delivered",
            "electricity_currently_returned",
        )
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "A valid number is required."),
        ("NaN", "A valid number is required."),
        (True, "A valid number is required."),
        ("1.2345", "Ensure that there are no more than 3 decimal places."),
        ("1e30", "Ensure that there are no more than 9 digits before the decimal point."),
        (-1, "Ensure this value is greater than or equal to 0."),
        (None, "This field may not be null."),
    ],
)
def test_a_bad_meter_value_is_refused_with_a_message_for_that_field(value, message):
    assert errors_of(fields(electricity_delivered_1=value)) == {"electricity_delivered_1": [message]}


def test_trailing_zeros_beyond_three_decimals_are_not_extra_decimals():
    assert read(fields(electricity_delivered_1="12.3450000")).electricity_delivered_1 == D("12.345")


@pytest.mark.parametrize("value", ["yesterday", "2017-13-01T00:00", "0001-01-01T00:00:00+01:00", "", "\x00"])
def test_an_unreadable_timestamp_is_refused_with_the_formats_drf_accepts(value):
    assert errors_of(fields(timestamp=value))["timestamp"][0].startswith("Datetime has wrong format")


def test_readings_from_before_2000_or_more_than_the_skew_ahead_are_refused():
    assert "not before 2000" in errors_of(fields(timestamp="1999-12-31T23:00:00Z"))["timestamp"][0]
    assert "in the future" in errors_of(fields(timestamp="2024-06-02T12:00:01Z"))["timestamp"][0]
    assert read(fields(timestamp="2024-06-02T12:00:00Z")).timestamp == NOW + timedelta(days=1)


def test_the_gas_reading_needs_its_timestamp_and_its_value_together():
    assert errors_of(fields(extra_device_delivered="12.5")) == {
        "extra_device_timestamp": ["Give the gas meter's timestamp and value together, or neither."]
    }
    reading = read(fields(extra_device_delivered="12.5", extra_device_timestamp="2017-04-15T00:00:00+02"))
    assert reading.extra_device_delivered == D("12.5")
    assert reading.extra_device_timestamp == datetime(2017, 4, 14, 22, tzinfo=UTC)


def test_empty_optional_form_fields_count_as_absent():
    reading = read(fields(phase_currently_delivered_l1="", extra_device_timestamp="", extra_device_delivered=""))
    assert reading.phase_currently_delivered_l1 is None and reading.extra_device_delivered is None


def test_a_meter_field_must_look_like_a_meter_id():
    assert read(fields(meter="E0044404018311117")).meter == "E0044404018311117"
    assert "meter" in errors_of(fields(meter="has spaces"))


# --- telegrams as readings -----------------------------------------------------------------------------------


def test_the_seed_telegram_is_a_reading_of_an_unnamed_meter_at_its_winter_time():
    reading = reading_from_telegram(
        parse_telegram(SEED_TELEGRAM, verify_crc=False), received_at=NOW, max_future_skew=86_400
    )
    assert reading.meter is None  # the seed masks the equipment id
    assert reading.timestamp == datetime(2016, 3, 3, 15, 43, 47, tzinfo=UTC)  # 16:43:47 W = UTC+1
    assert (reading.electricity_delivered_1, reading.electricity_delivered_2) == (D("1073.079"), D("1263.199"))
    assert reading.phase_currently_delivered_l1 == D("0.143")
    assert reading.extra_device_timestamp is None


def test_a_v4_telegram_carries_its_meter_and_hourly_gas_reading():
    moment = datetime(2024, 1, 10, 11, 17, 30, tzinfo=UTC)
    text = make_telegram("v4", random.Random(3), timestamp=moment, equipment_id="E0012345678901234")
    telegram = parse_telegram(text)
    reading = reading_from_telegram(telegram, received_at=NOW, max_future_skew=86_400)
    assert reading.meter == "E0012345678901234"
    assert reading.timestamp == moment
    assert reading.extra_device_timestamp == datetime(2024, 1, 10, 11, 0, tzinfo=UTC)  # the hour's capture
    assert reading.extra_device_delivered == telegram.gas_delivered


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_telegram_variant_the_parser_reads_becomes_a_reading(variant):
    for seed in range(20):
        text = make_telegram(variant, random.Random(seed), timestamp=NOW - timedelta(hours=seed))
        telegram = parse_telegram(text)
        reading = reading_from_telegram(telegram, received_at=NOW, max_future_skew=86_400)
        total = reading.electricity_delivered_1 + reading.electricity_delivered_2
        assert total == telegram.electricity_delivered_1 + telegram.electricity_delivered_2
        assert reading.meter == meter_from_equipment_id(telegram.equipment_id)
        assert (reading.extra_device_delivered is None) == (
            telegram.gas_delivered is None or telegram.gas_timestamp is None
        )


def test_a_legacy_telegram_without_a_clock_is_stamped_when_it_arrives():
    telegram = parse_telegram(make_telegram("v3", random.Random(5)))
    received = datetime(2024, 6, 1, 12, 0, 0, 700_000, tzinfo=UTC)
    assert reading_from_telegram(telegram, received_at=received, max_future_skew=0).timestamp == received.replace(
        microsecond=0
    )


def test_a_telegram_from_far_in_the_future_is_refused_naming_the_problem():
    text = make_telegram("v5", random.Random(1), timestamp=NOW + timedelta(days=3))
    with pytest.raises(InvalidInput, match="in the future"):
        reading_from_telegram(parse_telegram(text), received_at=NOW, max_future_skew=86_400)


def test_equipment_ids_become_meter_ids_with_odd_characters_replaced():
    assert meter_from_equipment_id("E0044404018311117") == "E0044404018311117"
    assert meter_from_equipment_id(" K8EG 004/46 ") == "K8EG_004_46"
    assert meter_from_equipment_id(None) is None and meter_from_equipment_id("  ") is None


def test_the_meter_counters_are_read_from_an_accepted_telegram():
    assert meter_counters(SEED_TELEGRAM) == {
        "power_failure_count": 6,
        "long_power_failure_count": 3,
        "voltage_sag_count_l1": 0,
        "voltage_swell_count_l1": 0,
    }


def _counters_by_any_line(text: str) -> dict[str, int]:
    """The rule stated plainly: every line that is a counter code, 1 to 9 digits in parentheses and only
    white space after them; the last such line of a code counts."""
    line = re.compile(r"^(\d-\d:\d{1,2}\.\d{1,2}\.\d{1,2})\((\d{1,9})\)\s*$", re.MULTILINE | re.ASCII)
    found = {}
    for code, value in line.findall(text):
        if code in _COUNTER_CODES:
            found[_COUNTER_CODES[code]] = int(value)
    return found


_COUNTER_LINES = st.tuples(
    st.sampled_from([*_COUNTER_CODES, "1-0:32.32.01", "10-0:96.7.21", "0-0:96.7.2", "1-0:1.8.1", ""]),
    st.sampled_from(["(0)", "(00004)", "(000000004)", "(1234567890)", "(4.5)", "()", "(", "(7)(8)", ""]),
    st.sampled_from(["", " ", "\t", "\r", " \r", "\x0b", "\x0c", "\x1c", "x", ")"]),
).map("".join)
_TELEGRAM_LIKE = st.tuples(
    st.sampled_from(["", "/ISK5\\2M550T-1012", "noise"]),
    st.lists(st.tuples(_COUNTER_LINES, st.sampled_from(["\n", "\r\n", "\n\n", ""])).map("".join), max_size=12),
    st.sampled_from(["", "\n", "\r\n", "\n!ABCD\r\n"]),
).map(lambda parts: parts[0] + "".join(parts[1]) + parts[2])


@given(_TELEGRAM_LIKE)
@example("0-0:96.7.21(00005)")  # the first line and the last, with no line end
@example("/X\r\n0-0:96.7.9(3) \r\n1-0:32.32.0(1)\r\n1-0:32.32.0(2)\x0b")
def test_the_meter_counters_are_those_of_every_counter_line_whatever_surrounds_them(text):
    assert meter_counters(text) == _counters_by_any_line(text)


def test_a_kept_telegram_loses_characters_no_database_stores():
    assert stored_telegram_text("/X\x00Y\ud800!") == "/XY?!"


def test_a_telegram_from_another_meter_than_the_installations_is_refused_naming_both():
    home = Installation(name="home", meter="home", equipment_id="E1")
    check_telegram_meter(home, "E1")
    check_telegram_meter(home, None)  # a masked or missing equipment id names no meter
    check_telegram_meter(Installation(name="new", meter="new"), "E2")  # its first telegram names it
    with pytest.raises(InvalidInput, match="from meter E2.*home.*is meter E1"):
        check_telegram_meter(home, "E2")


def test_a_v2_reading_may_name_only_its_own_installation_or_meter():
    home = Installation(name="home", meter="home", equipment_id="E1")
    for own in (None, "", "home", "E1"):
        check_named_meter(home, own)
    with pytest.raises(FieldErrors, match="installation home") as caught:
        check_named_meter(home, "E2")
    assert list(caught.value.errors) == ["meter"]
    assert home.joi_meter_id == "E1" and Installation("x", "x").joi_meter_id == "x"


# --- list parameters -----------------------------------------------------------------------------------------


def test_list_parameters_are_lenient_like_django_rest_framework():
    assert page_request(ordering=None, field="timestamp", offset=None, limit=None) == PageRequest(0, 25, False)
    assert page_request(ordering="-timestamp", field="timestamp", offset="50", limit="10") == PageRequest(50, 10, True)
    lenient = page_request(ordering="-id", field="timestamp", offset="-3", limit="0")
    assert lenient == PageRequest(0, 25, False)
    assert page_request(ordering="x,-day", field="day", offset="abc", limit="99999").limit == 1000


def test_cursors_must_hold_as_many_whole_numbers_as_the_sort_key():
    assert page_request(ordering=None, field="t", offset=None, limit=None, after="17_4", key_length=2).after == (17, 4)
    for bad in ("17", "a_b", "1_2_3", "9" * 40 + "_1"):
        with pytest.raises(FieldErrors):
            page_request(ordering=None, field="t", offset=None, limit=None, after=bad, key_length=2)
    with pytest.raises(FieldErrors):
        page_request(ordering=None, field="t", offset=None, limit=None, after="1", before="2")


def test_next_and_previous_links_keep_the_filters_and_carry_a_cursor():
    params = {"timestamp__gte": "2017-02-01 00:00:00", "offset": "25", "limit": "25", "after": "9"}
    page = PageRequest(offset=25, limit=25)
    following, preceding = page_link_params(params, page, count=80, first_key=(100,), last_key=(124,))
    assert following == {"timestamp__gte": "2017-02-01 00:00:00", "limit": "25", "offset": "50", "after": "124"}
    assert preceding == {"timestamp__gte": "2017-02-01 00:00:00", "limit": "25"}  # back to the first page


def test_the_last_page_has_no_next_and_a_deep_previous_page_seeks_backwards():
    following, preceding = page_link_params({}, PageRequest(offset=75, limit=25), 80, (175,), (179,))
    assert following is None
    assert preceding == {"limit": "25", "offset": "50", "before": "175"}


def test_time_filters_read_local_time_and_name_the_unreadable_one():
    window = instant_window("2017-02-01 00:00:00", None, AMSTERDAM, ("timestamp__gte", "timestamp__lte"))
    assert window.start == datetime(2017, 1, 31, 23, tzinfo=UTC) and window.end is None
    with pytest.raises(FieldErrors) as caught:
        instant_window("x", "2017-02-30", AMSTERDAM, ("timestamp__gte", "timestamp__lte"))
    assert caught.value.errors == {
        "timestamp__gte": ["Enter a valid date/time."],
        "timestamp__lte": ["Enter a valid date/time."],
    }


# --- statistics upkeep ---------------------------------------------------------------------------------------


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def steady_day(start: datetime, hours: int) -> list[MeterPosition]:
    """A reading every 20 minutes: 0.1 kWh low and 0.2 normal tariff each, 0.05 returned normal, v4 hourly gas."""
    positions = []
    for index in range(hours * 3 + 1):
        moment = start + index * timedelta(minutes=20)
        positions.append(
            MeterPosition(
                timestamp=moment,
                electricity_delivered_1=D("100") + index * D("0.1"),
                electricity_delivered_2=D("200") + index * D("0.2"),
                electricity_returned_1=D("0"),
                electricity_returned_2=index * D("0.05"),
                gas_timestamp=moment.replace(minute=0),
                gas_delivered=D("50") + (moment - start) // timedelta(hours=1) * D("0.25"),
            )
        )
    return positions


PRICES = [
    EnergyPrices(
        start=date(2024, 1, 1),
        end=None,
        description="test",
        electricity_delivered_1_price=D("0.21"),
        electricity_delivered_2_price=D("0.25"),
        electricity_returned_2_price=D("0.10"),
        gas_price=D("0.85"),
        fixed_daily_cost=D("0.33"),
    )
]


def test_a_day_made_from_its_stored_hours_equals_the_day_statistic_also_on_a_25_hour_day():
    # 27 October 2024: Amsterdam falls back, local midnight to midnight is 22:00 to 23:00 UTC the next day.
    positions = steady_day(utc("2024-10-26 22:00"), 25)
    hours = hour_statistics(positions, AMSTERDAM, days=[date(2024, 10, 27)])
    assert len(hours) == 25
    made = day_from_hours(date(2024, 10, 27), hours, AMSTERDAM, PRICES)
    assert made == day_statistics(positions, AMSTERDAM, PRICES, days=[date(2024, 10, 27)])[0]
    # 75 readings' steps: e1 7.5, e2 15, returned2 3.75, gas 25 × 0.25 = 6.25 m³.
    assert (made.electricity1, made.electricity2, made.electricity2_returned, made.gas) == (
        D("7.5"),
        D("15.0"),
        D("3.75"),
        D("6.25"),
    )
    # 7.5 × 0.21 = 1.575 → 1.58; 15 × 0.25 − 3.75 × 0.10 = 3.375 → 3.38; 6.25 × 0.85 = 5.3125 → 5.31
    assert (made.electricity1_cost, made.electricity2_cost, made.gas_cost) == (D("1.58"), D("3.38"), D("5.31"))
    assert made.total_cost == D("1.58") + D("3.38") + D("5.31") + D("0.33")


def test_a_day_without_hours_has_no_statistic():
    assert day_from_hours(date(2024, 1, 1), [], AMSTERDAM, PRICES) is None


def test_repricing_changes_only_the_costs():
    positions = steady_day(utc("2024-03-01 23:00"), 24)
    unpriced = day_statistics(positions, AMSTERDAM, [], days=[date(2024, 3, 2)])[0]
    priced = repriced(unpriced, AMSTERDAM, PRICES)
    assert priced == day_statistics(positions, AMSTERDAM, PRICES, days=[date(2024, 3, 2)])[0]
    assert unpriced.total_cost == 0 and priced.total_cost > 0


# --- supplier prices -----------------------------------------------------------------------------------------


def test_a_contract_takes_dsmr_readers_field_names_with_six_decimals():
    contract = prices_from_fields(
        {"start": "2024-01-01", "end": "2024-12-31", "description": "Vattenfall", "gas_price": "0.812345"}
    )
    assert contract.end == date(2024, 12, 31) and contract.gas_price == D("0.812345")
    assert contract.electricity_delivered_1_price == 0


def test_a_contract_needs_a_start_and_a_description_and_an_end_not_before_its_start():
    with pytest.raises(FieldErrors) as caught:
        prices_from_fields({"end": "2023-01-01", "gas_price": "0.1234567"})
    assert caught.value.errors == {
        "start": ["This field is required."],
        "description": ["This field is required."],
        "gas_price": ["Ensure that there are no more than 6 decimal places."],
    }
    with pytest.raises(FieldErrors, match="end"):
        prices_from_fields({"start": "2024-01-02", "end": "2024-01-01", "description": "x"})


def test_a_description_with_a_null_character_is_refused():
    with pytest.raises(FieldErrors, match="Null characters"):
        prices_from_fields({"start": "2024-01-01", "description": "a\x00b"})


def test_equal_readings_are_the_same_values_whatever_their_decimal_places():
    reading = read(SEED_FIELDS)
    again = read({**SEED_FIELDS, "electricity_delivered_2": "3000.000"})
    assert reading.same_values(again)
    assert not reading.same_values(read({**SEED_FIELDS, "electricity_delivered_2": "3000.001"}))
    assert isinstance(reading, DsmrReading)
