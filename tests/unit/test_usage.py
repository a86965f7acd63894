import math

import pytest

from domain.errors import InvalidInput
from domain.usage import (
    Reading,
    affected_hour_ranges,
    check_readings,
    energy_by_hour,
    latest_per_time,
    usage,
)


def test_35_kw_and_5_kw_half_an_hour_apart_are_10_kwh():
    result = usage([Reading(0, 35.0), Reading(1800, 5.0)])
    assert result.kwh == pytest.approx(10.0)
    assert (result.start, result.end) == (0, 1800)


def test_a_constant_2_kw_sampled_every_minute_for_two_hours_is_4_kwh():
    readings = [Reading(60 * minute, 2.0) for minute in range(121)]
    assert usage(readings).kwh == pytest.approx(4.0)


def test_a_single_sample_is_zero_kwh_not_a_division_by_zero():
    result = usage([Reading(1000, 3.0)])
    assert result.kwh == 0.0
    assert result.covered_seconds == 0


def test_no_samples_is_zero_kwh_with_no_period():
    assert usage([]) == usage([]).__class__(kwh=0.0, start=None, end=None)


def test_unsorted_samples_give_the_same_energy_as_sorted_ones():
    readings = [Reading(t, float(t % 7)) for t in range(0, 3600, 60)]
    assert usage(list(reversed(readings))).kwh == pytest.approx(usage(readings).kwh)


def test_a_gap_longer_than_the_maximum_carries_no_energy_and_is_reported():
    result = usage([Reading(0, 1.0), Reading(60, 1.0), Reading(60 + 7200, 1.0)], max_gap=3600)
    assert result.kwh == pytest.approx(1 / 60)
    assert [(gap.start, gap.end) for gap in result.gaps] == [(60, 7260)]
    assert result.covered_seconds == 60


def test_the_maximum_gap_is_configurable():
    readings = [Reading(0, 1.0), Reading(7200, 1.0)]
    assert usage(readings, max_gap=7200).kwh == pytest.approx(2.0)
    assert usage(readings, max_gap=3600).kwh == 0.0


def test_a_repeated_time_keeps_the_value_sent_last():
    assert latest_per_time([Reading(5, 1.0), Reading(1, 2.0), Reading(5, 9.0)]) == [Reading(1, 2.0), Reading(5, 9.0)]


def test_energy_by_hour_splits_an_interval_exactly_at_the_hour_boundary():
    # 0 kW at 00:30 rising linearly to 2 kW at 01:30: 0.25 kWh before 01:00, 0.75 kWh after.
    energy = energy_by_hour([Reading(1800, 0.0), Reading(5400, 2.0)], 3600, 0, 7200)
    assert energy[0] == pytest.approx(0.25)
    assert energy[3600] == pytest.approx(0.75)


def test_energy_by_hour_sums_to_the_usage_of_the_same_samples():
    readings = [Reading(t, 1 + (t % 13) / 10) for t in range(0, 5 * 3600, 97)]
    energy = energy_by_hour(readings, 3600, 0, 6 * 3600)
    assert math.fsum(energy.values()) == pytest.approx(usage(readings).kwh)


def test_energy_by_hour_clips_to_the_requested_window():
    energy = energy_by_hour([Reading(0, 1.0), Reading(3600, 1.0)], 3600, 900, 2700)
    assert energy == {0: pytest.approx(0.5)}


def test_affected_hours_cover_the_gap_rule_around_each_new_sample_and_merge():
    assert affected_hour_ranges([7200], 3600) == [(3600, 10800)]
    assert affected_hour_ranges([7200, 9000, 100 * 3600], 3600) == [(3600, 12600 - 1800), (99 * 3600, 101 * 3600)]


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_negative_or_non_finite_readings_are_refused_naming_the_field(value):
    with pytest.raises(InvalidInput) as error:
        check_readings([Reading(1, 1.0), Reading(2, value)], now=10, max_future_skew=0)
    assert error.value.field == "electricityReadings[1].reading"


def test_a_reading_more_than_the_allowed_skew_in_the_future_is_refused():
    check_readings([Reading(100 + 86_400, 1.0)], now=100, max_future_skew=86_400)
    with pytest.raises(InvalidInput, match="future"):
        check_readings([Reading(101 + 86_400, 1.0)], now=100, max_future_skew=86_400)
