"""The sites dashboard's view-model: poll states in words, the chart window, bucket widths, chart data."""

import pytest

from domain.errors import InvalidInput
from domain.modbus import BucketSummary, PollStatus
from domain.sites_dashboard import (
    DAY,
    HOUR,
    MAX_POINTS,
    MINUTE,
    ChartSpec,
    PlanCost,
    SeriesData,
    Window,
    buckets_in,
    chart_window,
    energy_chart,
    energy_period,
    line_bucket_ms,
    line_chart,
    plan_costs,
    poll_state,
)
from domain.tariffs import PlanComparison, PricePlan

T0 = 1_796_102_400_000  # 2026-12-01T05:20:00Z


def status(**changes) -> PollStatus:
    values = dict(
        host_id=1,
        last_poll_at_ms=T0,
        last_success_at_ms=T0,
        last_error=None,
        last_error_at_ms=None,
        consecutive_failures=0,
        last_outcome="ok",
        measurements_read=2,
        measurements_failed=0,
    )
    return PollStatus(**{**values, **changes})


def test_a_host_never_polled_says_so():
    assert poll_state(None).state == "never"
    assert poll_state(None).summary == "not polled yet"


def test_a_clean_latest_poll_is_ok_and_keeps_the_last_error_for_the_record():
    state = poll_state(status(last_error="boom", last_error_at_ms=T0 - HOUR))
    assert (state.state, state.summary) == ("ok", "ok (last poll 2026-12-01 05:20 UTC)")
    assert (state.last_error, state.last_error_at) == ("boom", "2026-12-01 04:20 UTC")


def test_a_failing_host_says_since_when_and_for_how_many_polls():
    failing = status(
        consecutive_failures=3, last_outcome="failed", failing_since_ms=T0 - 2 * MINUTE, last_error="refused"
    )
    state = poll_state(failing)
    assert state.state == "failing"
    assert state.summary == "failing since 2026-12-01 05:18 UTC (3 polls)"
    assert state.last_error == "refused"


def test_a_partial_poll_is_failing_and_says_how_much_was_read():
    state = poll_state(
        status(
            consecutive_failures=1,
            last_outcome="partial",
            measurements_read=1,
            measurements_failed=2,
            failing_since_ms=T0,
        )
    )
    assert state.summary == "failing since 2026-12-01 05:20 UTC (1 poll, latest poll read 1 of 3 measurements)"


def test_a_run_of_failures_older_than_the_record_falls_back_to_the_last_success():
    state = poll_state(status(consecutive_failures=2, last_outcome="failed", last_success_at_ms=T0 - HOUR))
    assert state.summary == "failing since after its last success at 2026-12-01 04:20 UTC (2 polls)"
    never_ok = poll_state(status(consecutive_failures=2, last_outcome="failed", last_success_at_ms=None))
    assert never_ok.summary == "failing since its first poll (2 polls)"


def test_the_default_window_is_the_week_up_to_the_latest_sample_or_now():
    assert chart_window(None, None, T0, T0 + DAY) == Window(T0 - 7 * DAY, T0)
    assert chart_window(None, None, None, T0) == Window(T0 - 7 * DAY, T0)


def test_one_side_of_the_window_is_a_week_from_the_other():
    assert chart_window("2026-12-01T00:00", None, None, T0).span_ms == 7 * DAY
    assert chart_window(None, "2026-12-08", None, T0).start_ms == chart_window("2026-12-01", None, None, T0).start_ms


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [("2026-12-02", "2026-12-01", "from"), ("2025-01-01", "2026-12-01", "to"), ("yesterday", None, "from")],
)
def test_a_window_backwards_too_long_or_unreadable_is_refused_naming_the_field(start, end, field):
    with pytest.raises(InvalidInput) as refused:
        chart_window(start, end, None, T0)
    assert refused.value.field == field


def test_line_buckets_keep_every_line_at_most_max_points_and_a_week_of_minutes_is_ten_minute_buckets():
    week = Window(T0 - 7 * DAY, T0)
    assert line_bucket_ms(week) == 10 * MINUTE
    assert buckets_in(week, 10 * MINUTE) == 1009
    assert line_bucket_ms(Window(T0 - HOUR, T0)) == 2_000  # 1,801 two-second buckets
    for span in (1_000, HOUR, DAY, 7 * DAY, 31 * DAY, 366 * DAY):
        window = Window(T0 + 17, T0 + 17 + span)
        assert buckets_in(window, line_bucket_ms(window)) <= MAX_POINTS


def test_energy_is_per_hour_up_to_a_week_and_per_day_beyond_unless_asked():
    week, month, year = Window(T0, T0 + 7 * DAY), Window(T0, T0 + 31 * DAY), Window(T0, T0 + 366 * DAY)
    assert (energy_period(week), energy_period(month)) == ("hour", "day")
    assert (energy_period(week, "day"), energy_period(month, "hour")) == ("day", "hour")
    assert energy_period(year, "hour") == "day"  # 8,785 hourly bars would be too many


def bucket(start_ms, series_id=1, measurement="active_power", unit="W", mean=None, increase=None, kind=1):
    return BucketSummary(start_ms, series_id, measurement, unit, kind, 1, mean, mean, mean, increase)


def test_a_line_chart_has_one_series_per_stored_unit_with_the_bucket_means():
    spec = ChartSpec("active_power", 1, "W")
    buckets = [bucket(T0, mean=1.5), bucket(T0, series_id=2, unit="kW", mean=0.2), bucket(T0 + MINUTE, mean=2.5)]
    chart = line_chart(spec, buckets, MINUTE)
    assert (chart.kind, chart.title, chart.chart_id) == ("line", "active_power, mean per minute", "chart-active_power")
    assert chart.series == (
        SeriesData("active_power (W)", (T0, T0 + MINUTE), (1.5, 2.5)),
        SeriesData("active_power (kW)", (T0,), (0.2,)),
    )


def test_a_chart_without_data_still_has_its_series_so_it_draws_empty():
    assert line_chart(ChartSpec("voltage_ac", 1, "V"), [], MINUTE).series == (SeriesData("voltage_ac (V)", (), ()),)
    assert energy_chart(ChartSpec("active_energy_consumed", 2, "Wh"), [], "day").unit == "kWh"


def test_an_energy_chart_is_bars_in_kwh_per_period():
    spec = ChartSpec("active_energy_consumed", 2, "Wh")
    chart = energy_chart(spec, [bucket(T0, unit="Wh", measurement=spec.measurement, increase=1500.0, kind=2)], "hour")
    assert (chart.kind, chart.unit, chart.title) == ("bar", "kWh", "active_energy_consumed, kWh per hour (UTC)")
    assert chart.series == (SeriesData("active_energy_consumed (kWh)", (T0,), (1.5,)),)


def test_a_counter_in_no_energy_unit_keeps_its_own_unit():
    chart = energy_chart(
        ChartSpec("pulses", 2, "imp"), [bucket(T0, unit="imp", measurement="pulses", increase=7.0, kind=2)], "day"
    )
    assert chart.unit == "imp" and chart.series[0].y == (7.0,)


def test_plan_costs_keep_the_comparisons_order_and_mark_the_cheapest_as_the_recommendation():
    plans = [PricePlan("price-plan-0", "Dr Evil's Dark Energy", 10), PricePlan("price-plan-2", "Power for Everyone", 1)]
    costs = plan_costs(PlanComparison(None, (("price-plan-2", 1.0), ("price-plan-0", 10.0))), plans)
    assert costs == [
        PlanCost("price-plan-2", "Power for Everyone", 1.0, True),
        PlanCost("price-plan-0", "Dr Evil's Dark Energy", 10.0, False),
    ]
