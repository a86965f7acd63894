import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from domain.errors import InvalidInput
from domain.usage import (
    HOUR,
    QUARTER,
    Reading,
    SampleColumns,
    _evenly_spaced_rollups,
    affected_hour_ranges,
    check_readings,
    energy_by_hour,
    energy_by_hour_of,
    energy_rollups_of,
    hour_of,
    hour_rollups,
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
        check_readings([1, 2], [1.0, value], now=10, max_future_skew=0)
    assert error.value.field == "electricityReadings[1].reading"


def test_a_reading_more_than_the_allowed_skew_in_the_future_is_refused():
    check_readings([100 + 86_400], [1.0], now=100, max_future_skew=86_400)
    with pytest.raises(InvalidInput, match="future"):
        check_readings([101 + 86_400], [1.0], now=100, max_future_skew=86_400)


def test_a_zero_reading_and_integer_readings_are_accepted():
    check_readings([1, 2, 3], [0, 5, 0.5], now=10, max_future_skew=0)


def test_the_first_offending_reading_is_the_one_named():
    with pytest.raises(InvalidInput) as error:
        check_readings([1, 2, 3], [1.0, -1.0, float("nan")], now=10, max_future_skew=0)
    assert error.value.field == "electricityReadings[1].reading"


def test_samples_sent_in_time_order_are_stored_as_sent():
    times, values = [1, 2, 3], [1.0, 2.0, 3.0]
    stored = SampleColumns.of(times, values)
    assert stored.times is times and stored.values is values


def test_samples_out_of_order_are_sorted_and_a_time_repeated_with_its_value_is_kept_once():
    assert SampleColumns.of([5, 1, 5, 3], [9.0, 2.0, 9.0, 4.0]) == SampleColumns([1, 3, 5], [2.0, 4.0, 9.0])


def test_a_time_repeated_with_another_value_is_refused_naming_both_readings():
    with pytest.raises(InvalidInput) as error:
        SampleColumns.of([5, 1, 3, 5], [1.0, 2.0, 4.0, 9.0])
    assert error.value.field == "electricityReadings[3].time"
    assert "5 is also the time of electricityReadings[0]" in error.value.detail


def reference_energy_by_hour(samples, max_gap, start, end):
    """Each interval cut into one-second steps: slow, obviously right."""
    energy = {}
    for (t1, r1), (t2, r2) in zip(samples, samples[1:], strict=False):
        if t2 - t1 > max_gap:
            continue
        for second in range(max(t1, start), min(t2, end)):
            p1 = r1 + (r2 - r1) * (second - t1) / (t2 - t1)
            p2 = r1 + (r2 - r1) * (second + 1 - t1) / (t2 - t1)
            hour = second - second % 3600
            energy[hour] = energy.get(hour, 0.0) + (p1 + p2) / 2 / 3600
    return energy


@given(
    steps=st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=40),
    values=st.lists(st.floats(min_value=0, max_value=50), min_size=41, max_size=41),
    first=st.integers(min_value=0, max_value=7200),
    window=st.tuples(st.integers(min_value=-3600, max_value=40_000), st.integers(min_value=0, max_value=80_000)),
)
@settings(max_examples=60, deadline=None)
def test_energy_by_hour_agrees_with_second_by_second_integration(steps, values, first, window):
    times = [first]
    for step in steps:
        times.append(times[-1] + step)
    samples = list(zip(times, values, strict=False))
    start, end = window[0], window[0] + window[1]
    expected = reference_energy_by_hour(samples, 3600, start, end)
    energy = energy_by_hour(samples, 3600, start, end)
    assert energy.keys() == expected.keys()
    for hour, kwh in expected.items():
        assert energy[hour] == pytest.approx(kwh, rel=1e-9, abs=1e-12)


def reference_affected_ranges(times, max_gap):
    hours = sorted({h for t in times for h in range(t - max_gap - (t - max_gap) % 3600, t + max_gap + 1, 3600)})
    ranges = []
    for hour in hours:
        if ranges and ranges[-1][1] + 3600 == hour:
            ranges[-1][1] = hour
        else:
            ranges.append([hour, hour])
    return [tuple(r) for r in ranges]


@given(
    times=st.lists(st.integers(min_value=0, max_value=200_000), min_size=1, max_size=30),
    max_gap=st.sampled_from([60, 3600, 5000]),
)
@settings(max_examples=100, deadline=None)
def test_affected_hours_are_every_hour_within_the_gap_of_a_new_sample(times, max_gap):
    expected = reference_affected_ranges(times, max_gap)
    assert affected_hour_ranges(times, max_gap) == expected
    assert affected_hour_ranges(sorted(set(times)), max_gap) == expected


@settings(max_examples=300)
@given(
    step=st.sampled_from([1, 5, 30, 60, 100, 300, 450, 900, 7, 120, 1800]),
    count=st.integers(1, 400),
    first_multiple=st.integers(-50, 5_000),
    offset=st.sampled_from([0, 0, 0, 1, 29]),
    values=st.lists(st.floats(0, 50, allow_nan=False), min_size=1, max_size=50),
    window=st.tuples(st.integers(-3, 1), st.integers(-1, 3)),
    max_gap=st.sampled_from([300, 900, 3600]),
    jitter=st.booleans(),
)
def test_rollups_of_evenly_spaced_samples_equal_the_interval_by_interval_sum(
    step, count, first_multiple, offset, values, window, max_gap, jitter
):
    first = first_multiple * step + offset
    times = [first + step * i for i in range(count)]
    if jitter and count > 2:
        times[count // 2] += 1 if step > 1 else 0  # a clock that slipped a second: not evenly spaced
    readings = [values[i % len(values)] for i in range(count)]
    start = hour_of(first) + window[0] * HOUR
    end = hour_of(times[-1]) + window[1] * HOUR
    assume(start < end)

    fast = energy_rollups_of(times, readings, max_gap, start, end)
    expected = hour_rollups(energy_by_hour_of(times, readings, max_gap, start, end, QUARTER))

    assert fast.keys() == expected.keys()
    for hour, rollup in expected.items():
        assert fast[hour] == pytest.approx(rollup, rel=1e-12, abs=1e-12)


def test_evenly_spaced_samples_take_the_quarter_sums_and_uneven_ones_the_interval_loop():
    assert _evenly_spaced_rollups([0, 60, 120, 180], [1.0, 2.0, 3.0, 4.0], 3600, 0, 3600) is not None
    assert _evenly_spaced_rollups([0, 60, 121, 180], [1.0, 2.0, 3.0, 4.0], 3600, 0, 3600) is None  # jitter
    assert _evenly_spaced_rollups([30, 90, 150], [1.0, 2.0, 3.0], 3600, 0, 3600) is None  # off the quarter grid
    assert _evenly_spaced_rollups([0, 3600, 7200], [1.0, 2.0, 3.0], 3600, 0, 7200) is None  # crosses quarters
