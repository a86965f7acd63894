"""The DSMR page: one installation's today so far with its cost, day and hour statistics as charts
(electricity per tariff, returned, gas, costs), its supplier contracts and its meter statistics, with a picker
when there are several installations. Who sees which installation: page_access.visible_dsmr_installations."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from flask import Blueprint, abort, render_template, request

from controllers.dsmr_common import time_zone
from controllers.page_access import admin_required, visible_dsmr_installations
from controllers.page_charts import Series, bar_chart, epoch_ms
from controllers.page_session import page_user
from controllers.pages import NavItem
from domain.dashboard import MAX_POINTS
from domain.errors import InvalidInput
from domain.statistics import day_bounds
from repository import dsmr as dsmr_repo

blueprint = Blueprint("pages_dsmr", __name__)
NAVIGATION = [NavItem("DSMR", "pages_dsmr.dashboard", order=20, admin_only=True)]

DEFAULT_DAYS = 30
HOUR_CHART_DAYS = 2  # the hour charts show the window's last two days (48 bars a line)


@blueprint.get("/dashboard/dsmr")
@admin_required
def dashboard():
    summaries = dsmr_repo.installations()
    visible = visible_dsmr_installations(page_user(), [summary.installation.name for summary in summaries])
    choices = [summary for summary in summaries if summary.installation.name in visible]
    if not choices:
        return render_template("dsmr/dashboard.html", installation=None, choices=[])
    chosen = _chosen(choices, request.args.get("installation"))
    installation = chosen.installation
    tz = time_zone()
    span = dsmr_repo.statistics_days_span(installation.meter)
    first, last = _window(span)
    days = dsmr_repo.day_statistics_between(installation.meter, first, last) if span else []
    hour_first = max(first, last - timedelta(days=HOUR_CHART_DAYS - 1))
    hours_start, hours_end = day_bounds(hour_first, tz)[0], day_bounds(last, tz)[1]
    hours = dsmr_repo.hour_statistics_between(installation.meter, hours_start, hours_end) if span else []
    today = datetime.now(tz).date()
    return render_template(
        "dsmr/dashboard.html",
        installation=installation,
        choices=choices,
        time_zone=str(tz),
        first=first,
        last=last,
        hour_first=hour_first,
        span=span,
        today=today,
        today_statistic=dsmr_repo.today(installation.meter, today, tz),
        contracts=dsmr_repo.energy_prices(installation.meter),
        meter=dsmr_repo.meter_statistics(installation.meter),
        day_spec=_electricity_spec([(d.day.isoformat(), d) for d in days], "category", "day"),
        day_gas_spec=_gas_spec([(d.day.isoformat(), d.gas) for d in days], "category", "day"),
        day_cost_spec=_cost_spec(days),
        hour_spec=_electricity_spec([(epoch_ms(h.hour_start.timestamp()), h) for h in hours], "date", "hour"),
        hour_gas_spec=_gas_spec([(epoch_ms(h.hour_start.timestamp()), h.gas) for h in hours], "date", "hour"),
    )


def _chosen(choices: list, name: str | None):
    if not name:
        with_readings = [summary for summary in choices if summary.readings]
        return (with_readings or choices)[0]
    for summary in choices:
        if summary.installation.name == name:
            return summary
    abort(404, description="There is no such installation.")


def _window(span: tuple[date, date] | None) -> tuple[date, date]:
    """from/to of the query (local days, inclusive), else the last DEFAULT_DAYS days with statistics."""
    latest = span[1] if span else date.today()
    last = _day_arg("to") or latest
    first = _day_arg("from") or max(span[0] if span else last, last - timedelta(days=DEFAULT_DAYS - 1))
    if first > last:
        raise InvalidInput("from must not be after to", field="from")
    if (last - first).days + 1 > MAX_POINTS:
        raise InvalidInput(f"choose at most {MAX_POINTS} days", field="from")
    return first, last


def _day_arg(name: str) -> date | None:
    value = (request.args.get(name) or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{name}: give a day like 2026-11-30", field=name) from None


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _electricity_spec(rows: list, x_type: str, unit: str) -> dict:
    xs = [x for x, _ in rows]
    series = [
        Series("tariff 1 (low)", xs, [_number(s.electricity1) for _, s in rows]),
        Series("tariff 2 (normal)", xs, [_number(s.electricity2) for _, s in rows]),
        Series("returned", xs, [-_number(s.electricity1_returned + s.electricity2_returned) for _, s in rows]),
    ]
    return bar_chart(
        series,
        y_title="kWh (returned below zero)",
        y_unit="kWh",
        x_title=f"{unit} ({time_zone()})" if x_type == "category" else "hour (UTC)",
        x_type=x_type,
        stacked=True,
        empty_text=f"No {unit} statistics in this window.",
    )


def _gas_spec(rows: list, x_type: str, unit: str) -> dict:
    present = [(x, gas) for x, gas in rows if gas is not None]
    return bar_chart(
        [Series("gas", [x for x, _ in present], [_number(gas) for _, gas in present])] if present else [],
        y_title="m³",
        y_unit="m³",
        x_title=f"{unit} ({time_zone()})" if x_type == "category" else "hour (UTC)",
        x_type=x_type,
        empty_text=f"No gas {unit} statistics in this window.",
    )


def _cost_spec(days: list) -> dict:
    xs = [d.day.isoformat() for d in days]
    parts = [
        ("electricity tariff 1", "electricity1_cost"),
        ("electricity tariff 2", "electricity2_cost"),
        ("gas", "gas_cost"),
        ("fixed", "fixed_cost"),
    ]
    return bar_chart(
        [Series(label, xs, [_number(getattr(d, name)) for d in days]) for label, name in parts] if days else [],
        y_title="cost",
        x_title=f"day ({time_zone()})",
        stacked=True,
        empty_text="No day statistics in this window.",
    )
