"""DSMR-reader statistics from meter registers: every expected figure is worked out by hand beside it."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from domain.errors import InvalidInput
from domain.statistics import (
    EnergyPrices,
    Gap,
    MeterPosition,
    book,
    consumption_today,
    day_bounds,
    day_statistics,
    decimal_str,
    hour_statistics,
    local_hours,
    local_iso,
    prices_for_day,
    utc_iso_z,
)

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
QUARTER = timedelta(minutes=15)
HOUR = timedelta(hours=1)
D = Decimal


def local(text: str) -> datetime:
    """An unambiguous Amsterdam wall-clock time as a UTC instant."""
    return datetime.fromisoformat(text).replace(tzinfo=AMSTERDAM).astimezone(UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def position(
    timestamp: datetime,
    delivered_1: str = "1000.000",
    delivered_2: str = "2000.000",
    returned_1: str = "0.000",
    returned_2: str = "0.000",
    *,
    gas_at: datetime | None = None,
    gas: str | None = None,
) -> MeterPosition:
    return MeterPosition(
        timestamp=timestamp,
        electricity_delivered_1=D(delivered_1),
        electricity_delivered_2=D(delivered_2),
        electricity_returned_1=D(returned_1),
        electricity_returned_2=D(returned_2),
        gas_timestamp=gas_at,
        gas_delivered=None if gas is None else D(gas),
    )


def steady_readings(
    first: datetime,
    count: int,
    every: timedelta,
    *,
    delivered_1_step: str = "0",
    delivered_2_step: str = "0",
    returned_2_step: str = "0",
) -> list[MeterPosition]:
    """`count` readings `every` apart whose registers rise by the same step from one reading to the next."""
    return [
        MeterPosition(
            timestamp=first + index * every,
            electricity_delivered_1=D("1000.000") + index * D(delivered_1_step),
            electricity_delivered_2=D("2000.000") + index * D(delivered_2_step),
            electricity_returned_1=D("0.000"),
            electricity_returned_2=D("500.000") + index * D(returned_2_step),
        )
        for index in range(count)
    ]


def contract(
    start: date,
    end: date | None = None,
    *,
    delivered_1: str = "0",
    delivered_2: str = "0",
    returned_1: str = "0",
    returned_2: str = "0",
    gas: str = "0",
    fixed: str = "0",
) -> EnergyPrices:
    return EnergyPrices(
        start=start,
        end=end,
        description=f"contract from {start}",
        electricity_delivered_1_price=D(delivered_1),
        electricity_delivered_2_price=D(delivered_2),
        electricity_returned_1_price=D(returned_1),
        electricity_returned_2_price=D(returned_2),
        gas_price=D(gas),
        fixed_daily_cost=D(fixed),
    )


def only(items):
    assert len(items) == 1, items
    return items[0]


# --- local days ----------------------------------------------------------------------------------------------


def test_an_ordinary_local_day_has_24_hours_starting_at_local_midnight():
    hours = local_hours(date(2024, 6, 12), AMSTERDAM)

    assert len(hours) == 24
    assert hours[0] == utc("2024-06-11T22:00")  # CEST is UTC+2
    assert day_bounds(date(2024, 6, 12), AMSTERDAM) == (utc("2024-06-11T22:00"), utc("2024-06-12T22:00"))


def test_the_spring_forward_day_has_23_hours_and_skips_two_oclock():
    hours = local_hours(date(2024, 3, 31), AMSTERDAM)

    assert len(hours) == 23
    assert [hour.astimezone(AMSTERDAM).hour for hour in hours[:4]] == [0, 1, 3, 4]
    assert day_bounds(date(2024, 3, 31), AMSTERDAM) == (utc("2024-03-30T23:00"), utc("2024-03-31T22:00"))


def test_the_fall_back_day_has_25_hours_with_two_oclock_twice():
    hours = local_hours(date(2024, 10, 27), AMSTERDAM)

    assert len(hours) == 25
    assert [hour.astimezone(AMSTERDAM).hour for hour in hours[:5]] == [0, 1, 2, 2, 3]
    assert day_bounds(date(2024, 10, 27), AMSTERDAM) == (utc("2024-10-26T22:00"), utc("2024-10-27T23:00"))


# --- hours and days ------------------------------------------------------------------------------------------


def test_a_normal_day_books_every_hour_and_adds_them_up():
    # Readings every 15 minutes from local midnight through the next: 96 quarters.
    readings = steady_readings(
        local("2024-06-12 00:00"),
        97,
        QUARTER,
        delivered_1_step="0.050",
        delivered_2_step="0.100",
        returned_2_step="0.025",
    )

    hours = hour_statistics(readings, AMSTERDAM)
    day = only(day_statistics(readings, AMSTERDAM, []))

    assert len(hours) == 24
    assert {(hour.electricity1, hour.electricity2, hour.electricity2_returned) for hour in hours} == {
        (D("0.200"), D("0.400"), D("0.100"))  # 4 quarters each
    }
    assert day.day == date(2024, 6, 12)
    assert (day.electricity1, day.electricity2, day.electricity2_returned) == (D("4.800"), D("9.600"), D("2.400"))
    assert day.electricity1_returned == D("0.000")
    assert day.gas is None


def test_an_interval_across_an_hour_edge_is_spread_in_proportion_to_time_in_whole_wh_that_add_up():
    readings = [position(local("2024-06-12 09:50"), "1000.000"), position(local("2024-06-12 10:05"), "1000.050")]

    hours = hour_statistics(readings, AMSTERDAM)

    # 10 of the 15 minutes lie before 10:00: 0.0333… rounds to 0.033, and 10:00 gets the rest, 0.017.
    assert [(hour.hour_start, hour.electricity1) for hour in hours] == [
        (local("2024-06-12 09:00"), D("0.033")),
        (local("2024-06-12 10:00"), D("0.017")),
    ]


def test_an_interval_over_several_hours_within_the_maximum_gap_spreads_over_each_of_them():
    readings = [position(local("2024-06-12 09:30"), "1000.000"), position(local("2024-06-12 11:30"), "1001.200")]

    hours = hour_statistics(readings, AMSTERDAM, max_gap=7200)

    assert [hour.electricity1 for hour in hours] == [D("0.300"), D("0.600"), D("0.300")]


def test_use_between_the_last_reading_of_one_hour_and_the_first_of_the_next_is_not_lost():
    readings = [
        position(local("2024-06-12 09:50"), "1000.000"),
        position(local("2024-06-12 10:05"), "1000.100"),
        position(local("2024-06-12 10:50"), "1000.400"),
        position(local("2024-06-12 11:05"), "1000.500"),
    ]

    ten_oclock = hour_statistics(readings, AMSTERDAM)[1]

    # First and last reading inside the hour would give 1000.400 - 1000.100 = 0.300. Spread: 0.033 of the
    # interval from 09:50, 0.300 inside, 0.067 of the interval to 11:05.
    assert ten_oclock.hour_start == local("2024-06-12 10:00")
    assert ten_oclock.electricity1 == D("0.400")


def test_a_reading_exactly_on_the_hour_closes_the_hour_that_ends_there():
    readings = [
        position(local("2024-06-12 10:00"), "1000.000"),
        position(local("2024-06-12 11:00"), "1000.700"),
        position(local("2024-06-12 11:30"), "1001.000"),
    ]

    hours = hour_statistics(readings, AMSTERDAM)

    assert [(hour.hour_start, hour.electricity1) for hour in hours] == [
        (local("2024-06-12 10:00"), D("0.700")),
        (local("2024-06-12 11:00"), D("0.300")),
    ]


def test_an_interval_longer_than_the_maximum_gap_books_nothing_and_is_reported_as_a_gap():
    readings = [
        position(local("2024-06-12 09:30"), "1000.000", "2000.000"),
        position(local("2024-06-12 10:30"), "1000.500", "2000.000"),  # 3,600 s: spread
        position(local("2024-06-12 12:30:01"), "1001.700", "2000.300"),  # 7,201 s: an outage
    ]

    hours = hour_statistics(readings, AMSTERDAM)
    booked = book(readings, AMSTERDAM)

    assert [(hour.hour_start, hour.electricity1) for hour in hours] == [
        (local("2024-06-12 09:00"), D("0.250")),
        (local("2024-06-12 10:00"), D("0.250")),
    ]
    assert booked.gaps == [
        Gap(local("2024-06-12 10:30"), local("2024-06-12 12:30:01"), D("1.200"), D("0.300"), D("0.000"), D("0.000"))
    ]
    assert only(day_statistics(readings, AMSTERDAM, [])).electricity1 == D("0.500")


def test_an_outage_of_years_is_not_booked_into_the_hour_the_logger_comes_back():
    readings = [
        position(utc("2024-10-26T21:00"), "1000.000"),
        position(utc("2024-12-01T07:05"), "2000.000"),
        position(utc("2024-12-01T07:15"), "2000.100"),
        position(utc("2024-12-01T07:25"), "2000.200"),
    ]

    hours = hour_statistics(readings, AMSTERDAM)
    today = consumption_today(readings, AMSTERDAM, [], date(2024, 12, 1))

    assert [(hour.hour_start, hour.electricity1) for hour in hours] == [(utc("2024-12-01T07:00"), D("0.200"))]
    assert today.electricity1 == D("0.200")  # from today's first reading


def test_hours_follow_a_zone_with_a_half_hour_offset():
    kolkata = ZoneInfo("Asia/Kolkata")
    readings = [position(utc("2024-06-12T04:00"), "1000.000"), position(utc("2024-06-12T05:00"), "1001.000")]

    hours = hour_statistics(readings, kolkata)

    # 09:30 to 10:30 local: half in the local hour 09:00 (03:30Z), half in 10:00 (04:30Z).
    assert [(hour.hour_start, hour.electricity1) for hour in hours] == [
        (utc("2024-06-12T03:30"), D("0.500")),
        (utc("2024-06-12T04:30"), D("0.500")),
    ]


def test_the_spring_forward_day_has_23_hour_statistics_that_add_up_to_23_hours_of_use():
    # Every 15 minutes from local midnight (23:00 UTC) through the next local midnight (22:00 UTC):
    # 23 hours × 4 = 92 quarters, so 93 readings, 0.250 kWh each quarter.
    readings = steady_readings(local("2024-03-31 00:00"), 93, QUARTER, delivered_1_step="0.250")
    assert readings[-1].timestamp == local("2024-04-01 00:00")

    hours = hour_statistics(readings, AMSTERDAM, days=[date(2024, 3, 31)])
    day = only(day_statistics(readings, AMSTERDAM, []))

    assert len(hours) == 23
    assert {hour.electricity1 for hour in hours} == {D("1.000")}  # 4 × 0.250
    assert day.day == date(2024, 3, 31)
    assert day.electricity1 == D("23.000")  # 23 × 1.000


def test_the_fall_back_day_has_25_hour_statistics_that_add_up_to_25_hours_of_use():
    # Every 15 minutes from 22:00 UTC (local midnight) through 23:00 UTC the next day: 25 × 4 = 100 quarters.
    readings = steady_readings(utc("2024-10-26T22:00"), 101, QUARTER, delivered_1_step="0.250")
    assert readings[-1].timestamp == local("2024-10-28 00:00")

    hours = hour_statistics(readings, AMSTERDAM, days=[date(2024, 10, 27)])
    day = only(day_statistics(readings, AMSTERDAM, []))

    assert len(hours) == 25
    assert hours[2].hour_start == utc("2024-10-27T00:00")  # 02:00 summer time
    assert hours[3].hour_start == utc("2024-10-27T01:00")  # 02:00 winter time
    assert {hour.electricity1 for hour in hours} == {D("1.000")}
    assert day.electricity1 == D("25.000")  # 25 × 1.000


# --- gas -----------------------------------------------------------------------------------------------------


def test_v4_hourly_gas_is_booked_to_the_hour_before_its_timestamp():
    # A v4 meter stamps each hourly gas reading with the hour's end; telegrams repeat it until the next one.
    readings = [
        position(local("2024-06-12 09:52"), "1000.000", gas_at=local("2024-06-12 09:00"), gas="99.800"),
        position(local("2024-06-12 10:07"), "1000.100", gas_at=local("2024-06-12 10:00"), gas="100.000"),
        position(local("2024-06-12 10:37"), "1000.200", gas_at=local("2024-06-12 10:00"), gas="100.000"),
        position(local("2024-06-12 11:07"), "1000.300", gas_at=local("2024-06-12 11:00"), gas="100.500"),
        position(local("2024-06-12 11:37"), "1000.400", gas_at=local("2024-06-12 11:00"), gas="100.500"),
        position(local("2024-06-12 12:07"), "1000.500", gas_at=local("2024-06-12 12:00"), gas="101.250"),
    ]

    hours = hour_statistics(readings, AMSTERDAM)

    assert [(hour.hour_start, hour.gas) for hour in hours] == [
        (local("2024-06-12 09:00"), D("0.200")),  # captured at 10:00: 100.000 - 99.800
        (local("2024-06-12 10:00"), D("0.500")),  # captured at 11:00: 100.500 - 100.000
        (local("2024-06-12 11:00"), D("0.750")),  # captured at 12:00: 101.250 - 100.500
        (local("2024-06-12 12:00"), None),  # its gas is captured at 13:00 and not reported yet
    ]


def test_v5_five_minute_gas_is_booked_to_the_hour_each_capture_interval_lies_in():
    # Captures every 5 minutes from 09:55 to 12:00, each sent twice (30 s and 150 s after capture).
    # Between captures the meter counts 0.010 m³ up to 11:00 and 0.020 m³ after it.
    readings = []
    gas = D("200.000")
    captured = local("2024-06-12 09:55")
    while captured <= local("2024-06-12 12:00"):
        for delay in (timedelta(seconds=30), timedelta(seconds=150)):
            readings.append(position(captured + delay, gas_at=captured, gas=str(gas)))
        captured += timedelta(minutes=5)
        gas += D("0.010") if captured <= local("2024-06-12 11:00") else D("0.020")

    hours = hour_statistics(readings, AMSTERDAM)

    assert [(hour.hour_start, hour.gas) for hour in hours] == [
        (local("2024-06-12 09:00"), D("0.010")),  # the first hour counts from the first capture, 09:55
        (local("2024-06-12 10:00"), D("0.120")),  # 12 captures 10:05 … 11:00 × 0.010
        (local("2024-06-12 11:00"), D("0.240")),  # 12 captures 11:05 … 12:00 × 0.020
        (local("2024-06-12 12:00"), None),  # nothing captured after 12:00 yet
    ]


# --- costs ---------------------------------------------------------------------------------------------------


def test_costs_are_rounded_half_up_to_cents():
    readings = [
        position(local("2024-06-12 10:00"), "1000.000", "2000.000"),
        position(local("2024-06-12 11:00"), "1001.250", "2000.500"),
    ]
    prices = contract(date(2024, 1, 1), delivered_1="0.10", delivered_2="0.25")

    day = only(day_statistics(readings, AMSTERDAM, [prices]))

    assert day.electricity1_cost == D("0.13")  # 1.250 × 0.10 = 0.125, half-up (bankers' would give 0.12)
    assert day.electricity2_cost == D("0.13")  # 0.500 × 0.25 = 0.125
    assert day.total_cost == D("0.26")


def test_returned_energy_is_subtracted_from_the_cost_of_its_tariff():
    readings = [
        position(local("2024-06-12 10:00"), "1000.000", "2000.000", "300.000", "400.000"),
        position(local("2024-06-12 11:00"), "1003.000", "2001.000", "305.000", "404.000"),
    ]
    prices = contract(
        date(2024, 1, 1), delivered_1="0.20", returned_1="0.10", delivered_2="0.25", returned_2="0.15", fixed="0.50"
    )

    day = only(day_statistics(readings, AMSTERDAM, [prices]))

    assert (day.electricity1, day.electricity1_returned) == (D("3.000"), D("5.000"))
    assert day.electricity1_cost == D("0.10")  # 3 × 0.20 - 5 × 0.10 = 0.60 - 0.50
    assert day.electricity2_cost == D("-0.35")  # 1 × 0.25 - 4 × 0.15 = 0.25 - 0.60
    assert day.total_cost == D("0.25")  # 0.10 - 0.35 + 0.50 fixed


def test_the_fixed_daily_cost_and_gas_are_added_to_the_total():
    readings = [
        position(local("2024-06-12 10:00"), "1000.000", gas_at=local("2024-06-12 10:00"), gas="500.000"),
        position(local("2024-06-12 11:00"), "1001.000", gas_at=local("2024-06-12 11:00"), gas="502.000"),
    ]
    prices = contract(date(2024, 1, 1), delivered_1="0.20", gas="0.80", fixed="0.60")

    day = only(day_statistics(readings, AMSTERDAM, [prices]))

    assert day.gas == D("2.000")
    assert day.electricity1_cost == D("0.20")  # 1 × 0.20
    assert day.gas_cost == D("1.60")  # 2 × 0.80
    assert day.fixed_cost == D("0.60")
    assert day.total_cost == D("2.40")  # 0.20 + 1.60 + 0.60


def test_each_day_is_priced_by_the_contract_that_covers_it():
    readings = [
        position(local("2024-06-30 00:00"), "1000.000"),
        position(local("2024-06-30 01:00"), "1002.000"),
        position(local("2024-07-01 00:00"), "1002.000"),
        position(local("2024-07-01 01:00"), "1005.000"),
    ]
    old = contract(date(2024, 1, 1), date(2024, 6, 30), delivered_1="0.20")
    new = contract(date(2024, 7, 1), delivered_1="0.30")

    june_30, july_1 = day_statistics(readings, AMSTERDAM, [new, old])

    assert (june_30.day, june_30.electricity1, june_30.electricity1_cost) == (
        date(2024, 6, 30),
        D("2.000"),
        D("0.40"),  # 2 × 0.20
    )
    assert (july_1.day, july_1.electricity1, july_1.electricity1_cost) == (
        date(2024, 7, 1),
        D("3.000"),
        D("0.90"),  # 3 × 0.30
    )


def test_a_day_without_a_contract_costs_nothing():
    readings = [position(local("2024-06-12 10:00"), "1000.000"), position(local("2024-06-12 11:00"), "1004.000")]

    day = only(day_statistics(readings, AMSTERDAM, [contract(date(2024, 7, 1), delivered_1="0.30")]))

    assert day.electricity1 == D("4.000")
    assert (day.electricity1_cost, day.gas_cost, day.fixed_cost, day.total_cost) == (D("0.00"),) * 4


def test_overlapping_contracts_resolve_to_the_latest_start_and_an_end_date_is_inclusive():
    open_ended = contract(date(2024, 1, 1))
    june_only = contract(date(2024, 6, 1), date(2024, 6, 30))

    assert prices_for_day([open_ended, june_only], date(2024, 6, 30)) is june_only
    assert prices_for_day([open_ended, june_only], date(2024, 7, 1)) is open_ended
    assert prices_for_day([open_ended, june_only], date(2023, 12, 31)) is None


# --- resets and late readings --------------------------------------------------------------------------------


def test_a_meter_reset_books_nothing_for_its_interval_and_the_rest_of_the_hour_counts():
    readings = [
        position(local("2024-06-12 10:00"), "500.000", gas_at=local("2024-06-12 10:00"), gas="300.000"),
        position(local("2024-06-12 10:30"), "500.400", gas_at=local("2024-06-12 10:00"), gas="300.000"),
        position(local("2024-06-12 11:00"), "0.100", gas_at=local("2024-06-12 11:00"), gas="0.000"),  # new meter
        position(local("2024-06-12 11:30"), "0.500", gas_at=local("2024-06-12 11:00"), gas="0.000"),
        position(local("2024-06-12 12:00"), "0.900", gas_at=local("2024-06-12 12:00"), gas="0.300"),
    ]

    hours = hour_statistics(readings, AMSTERDAM)

    assert [(hour.electricity1, hour.gas) for hour in hours] == [
        (D("0.400"), D("0.000")),  # 0.400 before the swap; 0.100 - 500.400 and 0.000 - 300.000 count as nothing
        (D("0.800"), D("0.300")),  # 0.900 - 0.100 and 0.300 - 0.000 on the new meter
    ]


# --- today so far --------------------------------------------------------------------------------------------


def test_consumption_today_counts_from_local_midnight_by_spreading_the_interval_across_it():
    readings = [
        position(local("2024-06-11 23:45"), "1000.000"),
        position(local("2024-06-12 00:15"), "1000.250"),
        position(local("2024-06-12 00:45"), "1000.500"),
    ]
    prices = [contract(date(2024, 1, 1), delivered_1="0.20", fixed="0.50")]

    today = consumption_today(readings, AMSTERDAM, prices, date(2024, 6, 12))

    assert today.day == date(2024, 6, 12)
    assert today.electricity1 == D("0.375")  # half of 0.250 after midnight, then 0.250
    assert today.electricity1_cost == D("0.08")  # 0.375 × 0.20 = 0.075, half-up
    assert today.total_cost == D("0.58")  # 0.08 + 0.50 fixed


def test_consumption_today_without_an_earlier_reading_counts_from_the_first_reading_of_today():
    readings = [
        position(local("2024-06-12 00:15"), "1000.250"),
        position(local("2024-06-12 00:45"), "1000.500"),
        position(local("2024-06-12 01:40"), "1003.000"),
    ]
    prices = [contract(date(2024, 1, 1), delivered_1="0.20", fixed="0.50")]

    today = consumption_today(readings, AMSTERDAM, prices, date(2024, 6, 12))

    assert today.electricity1 == D("2.750")  # 1003.000 - 1000.250
    assert today.electricity1_cost == D("0.55")  # 2.750 × 0.20
    assert today.total_cost == D("1.05")


def test_consumption_today_with_only_its_first_reading_after_an_outage_is_nothing_but_the_fixed_cost():
    readings = [position(local("2024-06-10 12:00"), "1000.000"), position(local("2024-06-12 08:00"), "1500.000")]

    today = consumption_today(readings, AMSTERDAM, [contract(date(2024, 1, 1), fixed="0.50")], date(2024, 6, 12))

    assert (today.electricity1, today.total_cost) == (D("0"), D("0.50"))


def test_consumption_today_is_none_before_the_first_reading_of_the_day():
    yesterday = [position(local("2024-06-11 23:45"), "1000.000")]

    assert consumption_today(yesterday, AMSTERDAM, [], date(2024, 6, 12)) is None
    assert consumption_today([], AMSTERDAM, [], date(2024, 6, 12)) is None


# --- validation ----------------------------------------------------------------------------------------------


def test_a_position_without_a_utc_offset_is_refused():
    with pytest.raises(InvalidInput) as refused:
        position(datetime(2024, 6, 12, 10, 0))
    assert refused.value.field == "timestamp"


def test_a_position_is_stored_in_utc_whatever_zone_it_was_given_in():
    given = datetime(2024, 6, 12, 10, 0, tzinfo=AMSTERDAM)

    assert position(given).timestamp == utc("2024-06-12T08:00")
    assert position(given).timestamp.tzinfo is UTC


def test_gas_needs_both_its_timestamp_and_its_reading():
    with pytest.raises(InvalidInput) as refused:
        position(local("2024-06-12 10:00"), gas="1.000")
    assert refused.value.field == "gas_delivered"


def test_a_negative_register_is_refused():
    with pytest.raises(InvalidInput) as refused:
        position(local("2024-06-12 10:00"), returned_2="-0.001")
    assert refused.value.field == "electricity_returned_2"


def test_a_contract_cannot_end_before_it_starts():
    with pytest.raises(InvalidInput) as refused:
        contract(date(2024, 7, 1), date(2024, 6, 30))
    assert refused.value.field == "end"


# --- formatting ----------------------------------------------------------------------------------------------


def test_decimals_are_printed_with_a_fixed_number_of_places_rounded_half_up():
    assert decimal_str(D("2000"), 3) == "2000.000"
    assert decimal_str(D("0.12"), 2) == "0.12"
    assert decimal_str(D("0"), 6) == "0.000000"
    assert decimal_str(D("0.125"), 2) == "0.13"
    assert decimal_str(D("-0.001"), 2) == "0.00"
    assert decimal_str(1.5, 3) == "1.500"


def test_instants_are_printed_in_local_time_with_offset_or_in_utc_with_z():
    assert local_iso(utc("2017-04-14T22:00:00"), AMSTERDAM) == "2017-04-15T00:00:00+02:00"
    assert utc_iso_z(datetime(2015, 12, 11, 22, 25, 5, tzinfo=AMSTERDAM)) == "2015-12-11T21:25:05Z"
    with pytest.raises(InvalidInput):
        utc_iso_z(datetime(2015, 12, 11, 21, 25, 5))
