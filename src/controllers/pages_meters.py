"""JOI meter pages: the meters, and one meter's power over time (zoomable, reduced on the server to at most
~2,000 points per line), energy per day, and the cost on every plan with the recommendation and the
account's current plan marked, for a chosen window."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, jsonify, render_template, request

from controllers.context import settings
from controllers.page_access import may_view_joi_meter
from controllers.page_charts import Series, bar_chart, epoch_ms, line_chart
from controllers.page_session import page_user
from controllers.pages import NavItem
from controllers.price_plans import compare_plans
from domain import dashboard
from domain.usage import hour_of
from repository import accounts
from repository import readings as readings_repo

blueprint = Blueprint("pages_meters", __name__)
NAVIGATION = [NavItem("JOI meters", "pages_meters.meters", order=10)]

METER_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
DEFAULT_WINDOW_SECONDS = 7 * dashboard.DAY
RECOMMENDED_COLOR, OTHER_COLOR, CURRENT_OUTLINE = "#2f9e44", "#8aa4c8", "#1b1f24"


@blueprint.get("/dashboard/meters")
def meters():
    user = page_user()
    rows = []
    for meter_id in sorted(readings_repo.sampled_meters()):
        if not may_view_joi_meter(user, meter_id):
            continue
        first, last = readings_repo.period(meter_id) or (None, None)
        rows.append(
            {
                "meter_id": meter_id,
                "plan": accounts.plan_id_for_meter(meter_id),
                "first": dashboard.utc_text(first),
                "last": dashboard.utc_text(last),
            }
        )
    return render_template("meters/index.html", meters=rows)


@blueprint.get("/dashboard/meters/<meter_id>")
def meter(meter_id: str):
    bounds = _visible_meter_bounds(meter_id)
    start, end = _window(bounds)
    plans = accounts.price_plans()
    current_plan = accounts.plan_id_for_meter(meter_id)
    zone_name = next((plan.time_zone for plan in plans if plan.plan_id == current_plan), "UTC")
    comparison = compare_plans(meter_id, start, end)
    suppliers = {plan.plan_id: plan.supplier for plan in plans}
    daily = dashboard.energy_by_local_day(
        readings_repo.hourly_kwh_between(meter_id, hour_of(start), end), ZoneInfo(zone_name)
    )
    costs = [
        {"plan_id": plan_id, "supplier": suppliers.get(plan_id, ""), "cost": cost} for plan_id, cost in comparison.costs
    ]
    recommended = costs[0]["plan_id"] if costs else None
    current_cost = next((row["cost"] for row in costs if row["plan_id"] == current_plan), None)
    return render_template(
        "meters/meter.html",
        meter_id=meter_id,
        start=start,
        end=end,
        bounds=bounds,
        from_value=dashboard.utc_input_value(start),
        to_value=dashboard.utc_input_value(end),
        quick_windows=_quick_windows(bounds),
        window_text=f"{dashboard.utc_text(start)} to {dashboard.utc_text(end)}",
        energy_kwh=dashboard.total(daily.values()),
        zone_name=zone_name,
        costs=costs,
        recommended=recommended,
        current_plan=current_plan,
        current_cost=current_cost,
        saving=None if current_cost is None or not costs else current_cost - costs[0]["cost"],
        power_spec=_power_spec(meter_id, start, end),
        daily_spec=_daily_spec(daily, zone_name),
        cost_spec=_cost_spec(costs, recommended, current_plan),
    )


@blueprint.get("/dashboard/meters/<meter_id>/power.json")
def power(meter_id: str):
    """The power chart of a window (charts.js asks after a zoom), reduced as the page's own."""
    start, end = _window(_visible_meter_bounds(meter_id))
    return jsonify(_power_spec(meter_id, start, end))


def _visible_meter_bounds(meter_id: str) -> tuple[int, int]:
    if not METER_ID.fullmatch(meter_id) or not may_view_joi_meter(page_user(), meter_id):
        abort(404, description="There is no such meter.")
    bounds = readings_repo.period(meter_id) if readings_repo.has_samples(meter_id) else None
    if bounds is None:
        abort(404, description=f"Meter {meter_id} has no readings.")
    return bounds


def _window(bounds: tuple[int, int]) -> tuple[int, int]:
    """from/to of the query (epoch seconds or ISO, UTC), else the last week of the meter's data."""
    start = dashboard.parse_moment(request.args.get("from"), "from")
    end = dashboard.parse_moment(request.args.get("to"), "to")
    if end is None:
        end = bounds[1] if start is None else max(start, bounds[1])
    if start is None:
        start = max(bounds[0], end - DEFAULT_WINDOW_SECONDS)
    return dashboard.checked_window(start, end)


def _quick_windows(bounds: tuple[int, int]) -> list[tuple[str, int, int]]:
    first, last = bounds
    return [
        ("Last day", max(first, last - dashboard.DAY), last),
        ("Last week", max(first, last - 7 * dashboard.DAY), last),
        ("Everything", first, last),
    ]


def _power_spec(meter_id: str, start: int, end: int) -> dict:
    bucket = dashboard.bucket_seconds(start, end)
    rows = readings_repo.power_buckets(meter_id, start, end, bucket)
    longest_join = max(settings().max_reading_gap_seconds, bucket) + bucket
    xs, ys = dashboard.with_breaks([(row[0], row[1]) for row in rows], longest_join)
    title = "kW" if bucket == 1 else f"kW (mean per {_duration(bucket)})"
    return line_chart(
        [Series("power", [None if x is None else epoch_ms(x) for x in xs], ys)],
        y_title=title,
        y_unit="kW",
        zoomable=True,
        empty_text="No readings in this window.",
    )


def _daily_spec(daily: dict, zone_name: str) -> dict:
    labels = [day.isoformat() for day in daily]
    return bar_chart(
        [Series("energy", labels, [round(kwh, 6) for kwh in daily.values()])],
        y_title="kWh",
        y_unit="kWh",
        x_title=f"day ({zone_name})",
        empty_text="No whole hour of energy in this window.",
    )


def _cost_spec(costs: list[dict], recommended: str | None, current_plan: str | None) -> dict:
    colors, outlines, texts = [], [], []
    for row in costs:
        marks = []
        if row["plan_id"] == recommended:
            marks.append("recommended")
        if row["plan_id"] == current_plan:
            marks.append("your plan")
        colors.append(RECOMMENDED_COLOR if row["plan_id"] == recommended else OTHER_COLOR)
        outlines.append(CURRENT_OUTLINE if row["plan_id"] == current_plan else colors[-1])
        texts.append(" · ".join(marks))
    return bar_chart(
        [
            Series(
                "cost",
                [row["plan_id"] for row in costs],
                [round(row["cost"], 6) for row in costs],
                extra={"colors": colors, "outlines": outlines, "text": texts},
            )
        ],
        y_title="cost",
        x_title="price plan",
    )


def _duration(seconds: int) -> str:
    if seconds % dashboard.DAY == 0:
        return f"{seconds // dashboard.DAY} d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
