"""SilesiaSolar pages: a user's locations and Modbus hosts with their poll state, and a page per host with
a chart per assigned measurement (instantaneous ones as lines, counters as energy per hour or day) and
what the host's energy would cost on every price plan.

A user sees their own sites and hosts; another user's host answers 404, as in the API. Admins see all.
Series are reduced in SQL to at most MAX_POINTS points per line (domain.sites_dashboard.line_bucket_ms).
"""

from __future__ import annotations

import time

from flask import Blueprint, jsonify, render_template, request, url_for

from controllers import page_charts
from controllers.context import settings
from controllers.modbus import ENERGY_COUNTER
from controllers.page_access import login_required, sites_owner
from controllers.page_session import page_user
from controllers.pages import NavItem
from domain import modbus
from domain import sites_dashboard as view
from domain.errors import Conflict, InvalidInput, NotFound
from repository import accounts as plans_repo
from repository import modbus as modbus_repo
from repository import sites_dashboard as sites_repo

blueprint = Blueprint("pages_sites", __name__)
NAVIGATION = [NavItem("Sites", "pages_sites.sites", order=40, login_only=True)]

RECOMMENDED_COLOR = "#2f9e44"
OTHER_PLAN_COLOR = "#8b98a9"


def _owner() -> int | None:
    return sites_owner(page_user())


@blueprint.get("/dashboard/sites")
@login_required
def sites():
    found = sites_repo.sites(_owner())
    states = {summary.host.id: view.poll_state(summary.status) for site in found for summary in site.hosts}
    return render_template("sites/index.html", sites=found, states=states, show_owner=_owner() is None)


def _now_ms() -> int:
    return int(time.time() * 1000)


@blueprint.get("/dashboard/sites/hosts/<int:host_id>")
@login_required
def host(host_id: int):
    summary, location = sites_repo.host(host_id, _owner())
    error, window, energy = None, None, None
    try:
        window = view.chart_window(
            request.args.get("from"), request.args.get("to"), sites_repo.latest_sample_ms(host_id), _now_ms()
        )
        energy = view.energy_period(window, request.args.get("energy") or None)
    except InvalidInput as refusal:
        error = refusal
        window = view.chart_window(None, None, sites_repo.latest_sample_ms(host_id), _now_ms())
        energy = view.energy_period(window)
    charts = [_chart(host_id, spec, window, energy) for spec in sites_repo.chart_specs(host_id)]
    plans, plans_note = _plans(host_id, window)
    page = render_template(
        "sites/host.html",
        summary=summary,
        location=location,
        state=view.poll_state(summary.status),
        charts=charts,
        plans=plans,
        plans_note=plans_note,
        plans_chart=_plans_chart(plans) if plans else None,
        window=window,
        window_inputs=_window_inputs(window),
        energy=energy,
        error=error,
        show_owner=_owner() is None,
    )
    return page, 400 if error else 200


@blueprint.get("/dashboard/sites/hosts/<int:host_id>/charts/<measurement>")
@login_required
def chart(host_id: int, measurement: str):
    """One chart's spec as JSON for a window (epoch seconds, as charts.js asks after a zoom)."""
    sites_repo.host(host_id, _owner())
    spec = next((spec for spec in sites_repo.chart_specs(host_id) if spec.measurement == measurement), None)
    if spec is None:
        raise NotFound(f"Host {host_id} has no measurement {measurement!r} assigned.")
    window = view.chart_window(request.args.get("from"), request.args.get("to"), None, _now_ms())
    energy = view.energy_period(window, request.args.get("energy") or None)
    return jsonify(_chart(host_id, spec, window, energy)["spec"])


def _chart(host_id: int, spec: view.ChartSpec, window: view.Window, energy: str) -> dict:
    if spec.measurement_type == modbus.COUNTER:
        bucket_ms = view.ENERGY_PERIODS[energy]
        data = view.energy_chart(spec, sites_repo.series_buckets(host_id, spec.measurement, bucket_ms, window), energy)
        chart_spec = page_charts.bar_chart(
            _series(data), y_title=data.unit, y_unit=data.unit, x_title="time (UTC)", x_type="date"
        )
    else:
        bucket_ms = view.line_bucket_ms(window)
        data = view.line_chart(spec, sites_repo.series_buckets(host_id, spec.measurement, bucket_ms, window), bucket_ms)
        chart_spec = page_charts.line_chart(_series(data), y_title=data.unit, y_unit=data.unit, zoomable=True)
    src = url_for("pages_sites.chart", host_id=host_id, measurement=spec.measurement, energy=energy)
    return {"id": data.chart_id, "title": data.title, "spec": chart_spec, "src": src, "kind": data.kind}


def _series(data: view.ChartData) -> list[page_charts.Series]:
    return [page_charts.Series(series.label, series.x, series.y) for series in data.series]


def _plans(host_id: int, window: view.Window) -> tuple[list[view.PlanCost], str | None]:
    """The host's plan comparison over the window, or why there is none."""
    if not sites_repo.has_counter_samples(host_id, ENERGY_COUNTER, window):
        return [], (
            f"No {ENERGY_COUNTER} samples in this window: plans are compared on that counter's energy "
            "(assign it to the host, and let it be polled)."
        )
    try:
        comparison = modbus_repo.price_comparison(
            host_id,
            ENERGY_COUNTER,
            start_ms=window.start_ms,
            end_ms=window.end_ms,
            max_gap_ms=settings().max_reading_gap_seconds * 1000,
        )
    except Conflict as refusal:
        return [], refusal.detail
    return view.plan_costs(comparison, plans_repo.price_plans()), None


def _plans_chart(plans: list[view.PlanCost]) -> dict:
    colors = [RECOMMENDED_COLOR if plan.recommended else OTHER_PLAN_COLOR for plan in plans]
    labels = ["recommended" if plan.recommended else "" for plan in plans]
    series = page_charts.Series(
        "cost",
        [plan.plan_id for plan in plans],
        [round(plan.cost, 4) for plan in plans],
        {"colors": colors, "text": labels},
    )
    return page_charts.bar_chart([series], y_title="cost", x_title="price plan")


def _window_inputs(window: view.Window) -> dict[str, str]:
    """The window as datetime-local fields show it (UTC)."""
    return {
        "from": modbus.format_instant(window.start_ms)[:16],
        "to": modbus.format_instant(window.end_ms)[:16],
    }
