"""Price plans: list, compare-all and recommend for a meter."""

from __future__ import annotations

from config import Config
from controllers.access import caller, require_meter_read
from controllers.context import settings
from controllers.readings import check_window
from controllers.responses import json_response
from domain import tariffs
from domain.access import Caller
from domain.errors import NotFound
from repository import accounts
from repository import readings as readings_repo


def list_plans():
    return json_response(
        [
            {
                "pricePlanId": plan.plan_id,
                "supplier": plan.supplier,
                "unitRate": plan.unit_rate,
                "standingChargePerDay": plan.standing_charge_per_day,
                "timeZone": plan.time_zone,
                "dayOfWeekMultipliers": dict(zip(tariffs.WEEKDAYS, plan.day_multipliers, strict=True)),
            }
            for plan in accounts.price_plans()
        ]
    )


def compare_all(smart_meter_id: str, from_: int | None = None, to: int | None = None):
    return json_response(compare_all_json(smart_meter_id, from_, to, settings(), caller()))


def recommend(smart_meter_id: str, limit: int | None = None, from_: int | None = None, to: int | None = None):
    return json_response(recommend_json(smart_meter_id, limit, from_, to, settings(), caller()))


def compare_all_json(meter_id: str, from_: int | None, to: int | None, config: Config, who: Caller) -> dict:
    """compare-all's answer without Flask (the controller above and the ASGI fast path call it)."""
    require_meter_read(meter_id, who)
    comparison = compare_plans(meter_id, from_, to, config)
    return {"pricePlanId": comparison.current_plan_id, "pricePlanComparisons": _costs_json(comparison)}


def recommend_json(
    meter_id: str, limit: int | None, from_: int | None, to: int | None, config: Config, who: Caller
) -> list[dict]:
    require_meter_read(meter_id, who)
    return _costs_json(tariffs.recommend(compare_plans(meter_id, from_, to, config), limit))


def compare_plans(
    meter_id: str, from_: int | None, to: int | None, config: Config | None = None
) -> tariffs.PlanComparison:
    """Every plan's cost for the meter in the window (an open side ends at the meter's data); also the pages'
    (which decide who may see a meter in page_access.py; the API's operations ask require_meter_read).
    `config` is the app's settings when called outside a Flask request (the ASGI fast path)."""
    config = config or settings()
    check_window(from_, to)
    bounds = readings_repo.period(meter_id)
    if bounds is None:
        raise NotFound(f"meter {meter_id!r} has no readings")
    # An open side of the window ends at the meter's data, never before the other side.
    start = from_ if from_ is not None else bounds[0] if to is None else min(bounds[0], to)
    end = to if to is not None else max(bounds[1], start)
    plans = accounts.price_plans()
    energy = readings_repo.weekday_energy(
        meter_id, {plan.time_zone for plan in plans}, start, end, config.max_reading_gap_seconds
    )
    return tariffs.compare(plans, energy, (start, end), accounts.plan_id_for_meter(meter_id))


def _costs_json(comparison: tariffs.PlanComparison) -> list[dict]:
    return [{plan_id: cost} for plan_id, cost in comparison.costs]
