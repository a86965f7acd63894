from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from domain.errors import InvalidInput
from domain.tariffs import (
    PricePlan,
    compare,
    local_days_spanned,
    offset_segments,
    recommend,
    weekday_at,
)

PLANS = [
    PricePlan("price-plan-0", "Dr Evil's Dark Energy", 10.0),
    PricePlan("price-plan-1", "The Green Eco", 2.0),
    PricePlan("price-plan-2", "Power for Everyone", 1.0),
]


def epoch(*args, tz=UTC) -> int:
    return int(datetime(*args, tzinfo=tz).timestamp())


def test_10_kwh_costs_10_20_and_100_on_the_seeded_plans_cheapest_first():
    result = compare(PLANS, {"UTC": {0: 10.0}}, (0, 1800), "price-plan-0")
    assert result.costs == (("price-plan-2", 10.0), ("price-plan-1", 20.0), ("price-plan-0", 100.0))
    assert result.current_plan_id == "price-plan-0"


def test_plans_that_cost_the_same_are_ordered_by_plan_id():
    plans = [PricePlan("b", "B", 1.0), PricePlan("a", "A", 1.0)]
    assert [plan_id for plan_id, _ in compare(plans, {"UTC": {0: 1.0}}, (0, 1), None).costs] == ["a", "b"]


def test_every_day_of_the_week_has_its_own_multiplier_sunday_included():
    plan = PricePlan("p", "S", 1.0, day_multipliers=(1, 2, 3, 4, 5, 6, 7))
    assert plan.cost({weekday: 1.0 for weekday in range(7)}, 0) == 28
    assert plan.cost({6: 1.0}, 0) == 7


def test_a_standing_charge_is_billed_per_local_calendar_day():
    plan = PricePlan("p", "S", 1.0, standing_charge_per_day=0.5)
    start, end = epoch(2024, 1, 1, 12), epoch(2024, 1, 3, 1)
    assert compare([plan], {"UTC": {0: 2.0}}, (start, end), None).costs == (("p", 2.0 + 3 * 0.5),)


def test_local_days_are_counted_in_the_plan_time_zone():
    start = epoch(2024, 1, 1, 23, 30)  # 2024-01-02 00:30 in Amsterdam
    end = epoch(2024, 1, 2, 22, 30)  # 2024-01-02 23:30 in Amsterdam
    assert local_days_spanned(ZoneInfo("UTC"), start, end) == 2
    assert local_days_spanned(ZoneInfo("Europe/Amsterdam"), start, end) == 1


def test_the_weekday_follows_the_plan_time_zone():
    moment = epoch(2024, 1, 7, 23, 30)  # Sunday in UTC, Monday in Amsterdam
    assert weekday_at(ZoneInfo("UTC"), moment) == 6
    assert weekday_at(ZoneInfo("Europe/Amsterdam"), moment) == 0


def test_offset_segments_split_exactly_at_daylight_saving_changes():
    zone = ZoneInfo("Europe/Amsterdam")
    segments = offset_segments(zone, epoch(2024, 1, 1), epoch(2025, 1, 1))
    assert [(s.start, s.offset) for s in segments] == [
        (epoch(2024, 1, 1), 3600),
        (epoch(2024, 3, 31, 1), 7200),
        (epoch(2024, 10, 27, 1), 3600),
    ]
    assert segments[-1].end == epoch(2025, 1, 1)


def test_a_zone_without_daylight_saving_is_one_segment():
    assert len(offset_segments(ZoneInfo("UTC"), 0, 10 * 365 * 86_400)) == 1


def test_recommend_cuts_the_comparison_to_the_limit():
    result = compare(PLANS, {"UTC": {0: 1.0}}, (0, 1), None)
    assert [plan_id for plan_id, _ in recommend(result, 2).costs] == ["price-plan-2", "price-plan-1"]
    assert recommend(result, None).costs == result.costs
    assert recommend(result, 10).costs == result.costs


def test_a_limit_below_one_is_refused():
    with pytest.raises(InvalidInput):
        recommend(compare(PLANS, {}, (0, 1), None), 0)


def test_a_plan_needs_seven_multipliers_and_a_known_zone():
    with pytest.raises(InvalidInput):
        PricePlan("p", "S", 1.0, day_multipliers=(1.0,) * 6)
    with pytest.raises(Exception):  # noqa: B017 - zoneinfo raises its own lookup error
        PricePlan("p", "S", 1.0, time_zone="Mars/Olympus")
