"""The SilesiaSolar dashboard's view of a user's sites: each host's poll state in words, the chart window,
how finely a series is bucketed so that no line has more than MAX_POINTS points, and the charts' data.

Pure: takes what the repository read (domain objects, BucketSummary rows) and returns plain values a
template renders or a chart script draws. Times are epoch milliseconds, shown in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from domain import modbus
from domain.errors import InvalidInput
from domain.modbus import BucketSummary, PollStatus
from domain.silesia import Host, Location
from domain.tariffs import PlanComparison, PricePlan

MAX_POINTS = 2000  # per line: what a browser draws smoothly, and more than a chart is wide in pixels
SECOND, MINUTE, HOUR, DAY = 1_000, 60_000, 3_600_000, 86_400_000
DEFAULT_WINDOW_MS = 7 * DAY
MAX_WINDOW_MS = 366 * DAY
# Bucket widths a reader can name ("one point per 10 minutes"); each divides the next larger day.
LINE_STEPS_MS = (
    SECOND,
    2 * SECOND,
    5 * SECOND,
    10 * SECOND,
    15 * SECOND,
    30 * SECOND,
    MINUTE,
    2 * MINUTE,
    5 * MINUTE,
    10 * MINUTE,
    15 * MINUTE,
    30 * MINUTE,
    HOUR,
    2 * HOUR,
    3 * HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
)
ENERGY_PERIODS = {"hour": HOUR, "day": DAY}
# Energy per hour for a window of up to a week (168 bars), per day beyond.
HOURLY_ENERGY_UP_TO_MS = 7 * DAY


@dataclass(frozen=True)
class HostSummary:
    """A host as the dashboard lists it: where it stands, its meter model, what it measures, how polling goes."""

    host: Host
    meter_name: str
    measurements: tuple[str, ...]
    status: PollStatus | None
    owner_name: str


@dataclass(frozen=True)
class Site:
    location: Location
    hosts: tuple[HostSummary, ...]
    owner_name: str


@dataclass(frozen=True)
class ChartSpec:
    """One assigned measurement of a host, as its meter model's register describes it."""

    measurement: str
    measurement_type: int
    unit: str


@dataclass(frozen=True)
class PollState:
    state: str  # "ok", "failing" or "never" (not polled yet)
    summary: str
    last_poll: str | None
    last_error: str | None
    last_error_at: str | None


@dataclass(frozen=True)
class Window:
    start_ms: int
    end_ms: int

    @property
    def span_ms(self) -> int:
        return self.end_ms - self.start_ms


def shown_time(time_ms: int | None) -> str | None:
    """2026-12-01 07:00:05 UTC (seconds only when they are not zero)."""
    if time_ms is None:
        return None
    moment = datetime.fromtimestamp(time_ms / 1000, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC" if moment.second else "%Y-%m-%d %H:%M UTC")


def poll_state(status: PollStatus | None) -> PollState:
    """ok / failing since / last error, in words. A host whose latest poll had any error is failing (a
    partial poll too: some of its measurements were not read)."""
    if status is None:
        return PollState("never", "not polled yet", None, None, None)
    last_poll = shown_time(status.last_poll_at_ms)
    error = (status.last_error, shown_time(status.last_error_at_ms))
    if status.consecutive_failures == 0:
        return PollState("ok", f"ok (last poll {last_poll})", last_poll, *error)
    polls = "1 poll" if status.consecutive_failures == 1 else f"{status.consecutive_failures} polls"
    if status.failing_since_ms is not None:
        since = f"since {shown_time(status.failing_since_ms)}"
    elif status.last_success_at_ms is not None:
        since = f"since after its last success at {shown_time(status.last_success_at_ms)}"
    else:
        since = "since its first poll"
    partly = ""
    if status.last_outcome == "partial":
        read = status.measurements_read
        partly = f", latest poll read {read} of {read + status.measurements_failed} measurements"
    return PollState("failing", f"failing {since} ({polls}{partly})", last_poll, *error)


def chart_window(from_text: str | None, to_text: str | None, latest_ms: int | None, now_ms: int) -> Window:
    """The window the charts show: `from`/`to` as given (ISO 8601, naive = UTC, or epoch seconds); a side
    left out is a week from the other; neither: the week up to the host's latest sample (or now), so a
    host that stopped answering still shows its last week. At most MAX_WINDOW_MS long."""
    start = modbus.parse_instant(from_text, "from") if from_text else None
    end = modbus.parse_instant(to_text, "to") if to_text else None
    if start is None and end is None:
        end = latest_ms if latest_ms is not None else now_ms
    if start is None:
        start = max(0, end - DEFAULT_WINDOW_MS)
    if end is None:
        end = start + DEFAULT_WINDOW_MS
    if start >= end:
        raise InvalidInput("from must be before to", field="from")
    if end - start > MAX_WINDOW_MS:
        raise InvalidInput("the window may be at most 366 days long: move from or to closer", field="to")
    return Window(start, end)


def buckets_in(window: Window, bucket_ms: int) -> int:
    """How many epoch-aligned buckets the window (both ends inclusive) touches."""
    return window.end_ms // bucket_ms - window.start_ms // bucket_ms + 1


def line_bucket_ms(window: Window, max_points: int = MAX_POINTS) -> int:
    """The finest bucket width that keeps a line over the window at `max_points` points or fewer (with
    one-minute samples, a week is drawn per 10 minutes: 1,009 points)."""
    for step in LINE_STEPS_MS:
        if buckets_in(window, step) <= max_points:
            return step
    return DAY * -(-window.span_ms // (DAY * (max_points - 1)))


def energy_period(window: Window, asked: str | None = None) -> str:
    """ "hour" or "day": as asked when the window allows it (no more than MAX_POINTS bars), else hourly
    for a window of up to a week and daily beyond."""
    if asked == "day" or (asked == "hour" and buckets_in(window, HOUR) <= MAX_POINTS):
        return asked
    if asked not in (None, "hour"):
        raise InvalidInput("energy must be hour or day", field="energy")
    return "hour" if window.span_ms <= HOURLY_ENERGY_UP_TO_MS else "day"


@dataclass(frozen=True)
class SeriesData:
    label: str
    x: tuple  # epoch ms (a bucket's start), or plan ids
    y: tuple


@dataclass(frozen=True)
class ChartData:
    """What one chart shows: `kind` "line" (an instantaneous measurement) or "bar" (a counter's energy)."""

    chart_id: str
    measurement: str
    kind: str
    title: str
    unit: str
    series: tuple[SeriesData, ...]


def _series_label(measurement: str, unit: str) -> str:
    return f"{measurement} ({unit})" if unit else measurement


def _grouped(buckets: list[BucketSummary], value, unit_of) -> list[SeriesData]:
    """One series per stored series (a measurement stored in two units is two lines), in bucket order."""
    points: dict[int, tuple[str, list, list]] = {}
    for bucket in buckets:
        label, xs, ys = points.setdefault(
            bucket.series_id, (_series_label(bucket.measurement, unit_of(bucket.unit)), [], [])
        )
        xs.append(bucket.start_ms)
        ys.append(value(bucket))
    return [SeriesData(label, tuple(xs), tuple(ys)) for label, xs, ys in points.values()]


def line_chart(spec: ChartSpec, buckets: list[BucketSummary], bucket_ms: int) -> ChartData:
    """An instantaneous measurement as a line per series: the mean of each bucket, at the bucket's start."""
    series = _grouped(buckets, lambda bucket: bucket.mean, lambda unit: unit)
    return ChartData(
        f"chart-{spec.measurement}",
        spec.measurement,
        "line",
        f"{spec.measurement}, mean per {_width_text(bucket_ms)}",
        spec.unit,
        tuple(series) or (SeriesData(_series_label(spec.measurement, spec.unit), (), ()),),
    )


def _energy_unit(unit: str) -> str:
    return "kWh" if modbus.kwh_factor(unit) is not None else unit


def energy_chart(spec: ChartSpec, buckets: list[BucketSummary], period: str) -> ChartData:
    """A counter as bars of what it rose per UTC hour or day, in kWh when its unit is an energy unit."""
    series = _grouped(
        buckets,
        lambda bucket: (bucket.increase or 0.0) * (modbus.kwh_factor(bucket.unit) or 1.0),
        _energy_unit,
    )
    unit = _energy_unit(buckets[-1].unit if buckets else spec.unit)
    return ChartData(
        f"chart-{spec.measurement}",
        spec.measurement,
        "bar",
        f"{spec.measurement}, {unit} per {period} (UTC)",
        unit,
        tuple(series) or (SeriesData(_series_label(spec.measurement, unit), (), ()),),
    )


def _width_text(bucket_ms: int) -> str:
    for size, name in ((DAY, "day"), (HOUR, "hour"), (MINUTE, "minute"), (SECOND, "second")):
        if bucket_ms % size == 0:
            count = bucket_ms // size
            return name if count == 1 else f"{count} {name}s"
    return f"{bucket_ms} ms"  # pragma: no cover - every step is a whole number of seconds


@dataclass(frozen=True)
class PlanCost:
    plan_id: str
    supplier: str
    cost: float
    recommended: bool


def plan_costs(comparison: PlanComparison, plans: list[PricePlan]) -> list[PlanCost]:
    """Every plan's cost, cheapest first; the cheapest is the recommendation (a host has no current plan)."""
    suppliers = {plan.plan_id: plan.supplier for plan in plans}
    return [
        PlanCost(plan_id, suppliers.get(plan_id, ""), cost, index == 0)
        for index, (plan_id, cost) in enumerate(comparison.costs)
    ]
