"""DSMR-reader style statistics from cumulative meter registers (DESIGN.md §3, seed dsmr-reader-api.rst).

A meter position holds cumulative registers: kWh delivered and returned per tariff (1 = low, 2 = normal) and
m³ of gas. What was used in a period is what the registers rose by from reading to reading in it; an interval
in which a register decreased is a reset (a meter swap, a test reading) and books nothing.
Hour statistics are per local hour and day statistics per local calendar day, so a day has 23 or 25 hours
when the clocks change. Costs follow DSMR-reader: used × delivered price − returned × returned price per
tariff, rounded half-up to cents; the total adds gas and the contract's fixed daily cost.

Incremental use: a late reading only changes the hours around it. `affected_local_days` names the days to
recompute, `statistics_window` the positions to load for them, and the `days=` argument of `hour_statistics`
and `day_statistics` limits the answer to those days.

Energy and money are Decimal throughout; instants are aware datetimes stored in UTC.
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Generic, TypeVar

from domain.errors import InvalidInput

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
ZERO = Decimal(0)
CENT = Decimal("0.01")
THOUSANDTH = Decimal("0.001")
# A v4 meter reports the gas reading of an hour's end only in the telegrams that follow it, so recomputing a
# day needs the positions of up to this long after its end.
GAS_REPORT_DELAY = HOUR

_ELECTRICITY_REGISTERS = (
    "electricity_delivered_1",
    "electricity_delivered_2",
    "electricity_returned_1",
    "electricity_returned_2",
)
PRICE_FIELDS = (  # DSMR-reader's names for a contract's prices, shared by the API and storage
    "electricity_delivered_1_price",
    "electricity_delivered_2_price",
    "electricity_returned_1_price",
    "electricity_returned_2_price",
    "gas_price",
    "fixed_daily_cost",
)


# --- values --------------------------------------------------------------------------------------------------


def _thousandths(value: Decimal) -> Decimal:
    return value.quantize(THOUSANDTH, rounding=ROUND_HALF_UP)


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _as_utc(moment: datetime, field: str) -> datetime:
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise InvalidInput(f"{field} must be a date and time with a UTC offset, got {moment!r}", field=field)
    return moment.astimezone(UTC)


def _as_decimal(value: object, field: str) -> Decimal:
    """Decimal as is; int exactly; float through its shortest text, so 0.1 becomes Decimal("0.1")."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float | str):
        raise InvalidInput(f"{field} must be a number, got {value!r}", field=field)
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise InvalidInput(f"{field} must be a number, got {value!r}", field=field) from None
    if not number.is_finite():
        raise InvalidInput(f"{field} must be a finite number, got {value!r}", field=field)
    return number


def _as_register(value: object, field: str) -> Decimal:
    number = _as_decimal(value, field)
    if number < 0:
        raise InvalidInput(f"{field} is a meter register and cannot be negative, got {number}", field=field)
    return number


@dataclass(frozen=True)
class MeterPosition:
    """The registers of one stored reading. Instants given in any zone are kept in UTC."""

    timestamp: datetime
    electricity_delivered_1: Decimal
    electricity_delivered_2: Decimal
    electricity_returned_1: Decimal
    electricity_returned_2: Decimal
    gas_timestamp: datetime | None = None  # when the gas meter captured gas_delivered
    gas_delivered: Decimal | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "timestamp", _as_utc(self.timestamp, "timestamp"))
        for name in _ELECTRICITY_REGISTERS:
            object.__setattr__(self, name, _as_register(getattr(self, name), name))
        if (self.gas_timestamp is None) != (self.gas_delivered is None):
            raise InvalidInput(
                "gas_timestamp and gas_delivered go together: give both or neither", field="gas_delivered"
            )
        if self.gas_timestamp is not None:
            object.__setattr__(self, "gas_timestamp", _as_utc(self.gas_timestamp, "gas_timestamp"))
            object.__setattr__(self, "gas_delivered", _as_register(self.gas_delivered, "gas_delivered"))


@dataclass(frozen=True)
class EnergyPrices:
    """A supplier contract: prices per kWh and m³ from `start` through `end` (inclusive; None = open ended)."""

    start: date
    end: date | None
    description: str
    electricity_delivered_1_price: Decimal = ZERO
    electricity_delivered_2_price: Decimal = ZERO
    electricity_returned_1_price: Decimal = ZERO
    electricity_returned_2_price: Decimal = ZERO
    gas_price: Decimal = ZERO
    fixed_daily_cost: Decimal = ZERO

    def __post_init__(self) -> None:
        if self.end is not None and self.end < self.start:
            raise InvalidInput(f"end {self.end} is before start {self.start}", field="end")
        for name in PRICE_FIELDS:
            object.__setattr__(self, name, _as_decimal(getattr(self, name), name))

    def covers(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


def prices_for_day(contracts: Iterable[EnergyPrices], day: date) -> EnergyPrices | None:
    """The contract covering `day`; of overlapping ones the latest start wins (on a tie, the first given).

    None means no contract covers the day, and the day costs nothing.
    """
    covering = [contract for contract in contracts if contract.covers(day)]
    return max(covering, key=lambda contract: contract.start, default=None)


@dataclass(frozen=True)
class Consumption:
    electricity1: Decimal
    electricity2: Decimal
    electricity1_returned: Decimal
    electricity2_returned: Decimal
    gas: Decimal | None  # None when there is no gas data


# --- local time ----------------------------------------------------------------------------------------------


def day_bounds(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """The UTC instants of local midnight starting `day` and of the next local midnight."""
    return _local_midnight(day, tz), _local_midnight(day + DAY, tz)


def local_hours(day: date, tz: tzinfo) -> list[datetime]:
    """UTC starts of the local hours of `day`: 23 on the spring-forward day, 25 on the fall-back day."""
    start, end = day_bounds(day, tz)
    hours = []
    hour = start
    while hour < end:
        hours.append(hour)
        hour += HOUR
    return hours


def _local_midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)


def _local_date(instant: datetime, tz: tzinfo) -> date:
    return instant.astimezone(tz).date()


def _hour_spans(day: date, tz: tzinfo) -> list[tuple[datetime, datetime]]:
    starts = local_hours(day, tz)
    ends = [*starts[1:], day_bounds(day, tz)[1]]
    return list(zip(starts, ends, strict=True))


# --- hour statistics -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HourStatistic:
    hour_start: datetime  # UTC
    electricity1: Decimal
    electricity2: Decimal
    electricity1_returned: Decimal
    electricity2_returned: Decimal
    gas: Decimal | None  # None when no gas reading closes this hour (yet)


_Value = TypeVar("_Value")


class _Timeline(Generic[_Value]):
    """Values in time order, read as 'the last value known at or before an instant'."""

    def __init__(self, times: list[datetime], values: list[_Value]):
        self._times = times
        self._values = values

    def span(self, start: datetime, end: datetime) -> list[_Value] | None:
        """The value known at `start` and every value that arrived in (start, end], in order; None when
        nothing arrived in (start, end]. When nothing is known at `start` (the meter's first hour) the first
        value that arrived is where the span starts, so the first hour counts from the first reading on; a
        lone first value is None too (nothing can be measured from one reading)."""
        known_at_start = bisect_right(self._times, start)
        known_at_end = bisect_right(self._times, end)
        if known_at_end == known_at_start:
            return None
        values = self._values[max(known_at_start - 1, 0) : known_at_end]
        return values if len(values) >= 2 else None


def is_reset(before: MeterPosition, after: MeterPosition) -> bool:
    """A register that decreases from one reading to the next was reset (a meter swap, a test reading)."""
    return any(getattr(after, name) < getattr(before, name) for name in _ELECTRICITY_REGISTERS)


def booked_between(positions: Sequence[MeterPosition]) -> Consumption:
    """What consecutive readings add up to: every rise between two readings, except across a reset, where
    nothing is booked (a negative use would pay back; the new meter's position is not a use either). Later
    intervals count from the new position. The readings need not be every reading in between: where none was
    reset the registers only rise, so two readings far apart book what every reading between them would."""
    totals = dict.fromkeys(_ELECTRICITY_REGISTERS, ZERO)
    for before, after in itertools.pairwise(positions):
        if is_reset(before, after):
            continue
        for name in _ELECTRICITY_REGISTERS:
            totals[name] += getattr(after, name) - getattr(before, name)
    return Consumption(
        electricity1=totals["electricity_delivered_1"],
        electricity2=totals["electricity_delivered_2"],
        electricity1_returned=totals["electricity_returned_1"],
        electricity2_returned=totals["electricity_returned_2"],
        gas=None,
    )


def _gas_booked(readings: Sequence[Decimal]) -> Decimal:
    return sum((after - before for before, after in itertools.pairwise(readings) if after >= before), ZERO)


def _position_timeline(ordered: Sequence[MeterPosition]) -> _Timeline[MeterPosition]:
    return _Timeline([position.timestamp for position in ordered], list(ordered))


def _gas_timeline(ordered: Sequence[MeterPosition]) -> _Timeline[Decimal]:
    # Many telegrams repeat the same gas reading; keep each capture once (a later telegram wins on a clash).
    captured = {
        position.gas_timestamp: position.gas_delivered
        for position in ordered
        if position.gas_timestamp is not None and position.gas_delivered is not None
    }
    times = sorted(captured)
    return _Timeline(times, [captured[moment] for moment in times])


def hour_statistics(
    positions: Iterable[MeterPosition], tz: tzinfo, *, days: Iterable[date] | None = None
) -> list[HourStatistic]:
    """Use per local hour, in time order, for `days` (default: every local day the positions span).

    An hour's use is the last position at or before its end minus the last position at or before its
    start. DSMR-reader takes the first and last reading *within* the hour instead, which drops whatever was
    used between the last reading of one hour and the first of the next (a quarter of everything with
    readings every 15 minutes). Measuring from boundary to boundary books every kWh exactly once, so the
    hours of a day add up to the meter's own rise over that day. A reading exactly on the hour closes the
    hour that ends there.

    An hour gets a statistic when a reading lies inside it and another at or before its start, or, in the
    meter's first hour, when two readings lie inside it (it counts from the first one). After a gap, the
    first hour with a reading carries what was used during the gap. Across a reset (a register that went
    down: a meter swap, a test reading) nothing is booked; later intervals count from the new position.

    Gas is measured the same way on the gas meter's own capture times, from the distinct
    (gas_timestamp, gas_delivered) pairs: the gas of an hour is the reading captured at or before its end
    minus the one captured at or before its start. A v4 meter captures hourly, stamped with the hour's end,
    so that capture lands in the previous hour; a v5 meter captures every 5 minutes and each rise lands in
    the hour its interval lies in.

    To recompute a few days only, pass `days` and the positions of `statistics_window(days, tz)`.
    """
    ordered = sorted(positions, key=lambda position: position.timestamp)
    if not ordered:
        return []
    electricity = _position_timeline(ordered)
    gas = _gas_timeline(ordered)
    statistics = []
    for day in _days_to_compute(ordered, tz, days):
        for start, end in _hour_spans(day, tz):
            statistic = _hour_statistic(start, end, electricity, gas)
            if statistic is not None:
                statistics.append(statistic)
    return statistics


def _days_to_compute(ordered: Sequence[MeterPosition], tz: tzinfo, days: Iterable[date] | None) -> list[date]:
    if days is not None:
        return sorted(set(days))
    first = _local_date(ordered[0].timestamp, tz)
    last = _local_date(ordered[-1].timestamp, tz)
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def _hour_statistic(
    start: datetime, end: datetime, electricity: _Timeline[MeterPosition], gas: _Timeline[Decimal]
) -> HourStatistic | None:
    positions = electricity.span(start, end)
    if positions is None:
        return None
    used = booked_between(positions)
    gas_readings = gas.span(start, end)
    return HourStatistic(
        hour_start=start,
        electricity1=_thousandths(used.electricity1),
        electricity2=_thousandths(used.electricity2),
        electricity1_returned=_thousandths(used.electricity1_returned),
        electricity2_returned=_thousandths(used.electricity2_returned),
        gas=None if gas_readings is None else _thousandths(_gas_booked(gas_readings)),
    )


# --- day statistics ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayStatistic:
    day: date  # local calendar day
    electricity1: Decimal
    electricity2: Decimal
    electricity1_returned: Decimal
    electricity2_returned: Decimal
    gas: Decimal | None  # None when no hour of the day has gas data
    electricity1_cost: Decimal
    electricity2_cost: Decimal
    gas_cost: Decimal
    fixed_cost: Decimal
    total_cost: Decimal


def day_statistics(
    positions: Iterable[MeterPosition],
    tz: tzinfo,
    contracts: Iterable[EnergyPrices],
    *,
    days: Iterable[date] | None = None,
) -> list[DayStatistic]:
    """Use and cost per local calendar day, in date order: the sum of the day's hour statistics, so days of
    23 and 25 hours come out right. A day without any hour statistic is left out. `days` as for
    `hour_statistics`."""
    contracts = list(contracts)
    hours_by_day: dict[date, list[HourStatistic]] = {}
    for hour in hour_statistics(positions, tz, days=days):
        hours_by_day.setdefault(_local_date(hour.hour_start, tz), []).append(hour)
    return [
        _priced_day(day, _total_of(hours), prices_for_day(contracts, day))
        for day, hours in sorted(hours_by_day.items())
    ]


def consumption_today(
    positions_of_today: Iterable[MeterPosition],
    tz: tzinfo,
    contracts: Iterable[EnergyPrices],
    today: date,
) -> DayStatistic | None:
    """Today's use and cost so far (/api/v2/consumption/today); None when there is no reading today yet.

    Pass the last position before today as well when there is one: then today so far is measured from
    midnight exactly as the day statistic will be. Without it, today's first reading is taken as the
    starting point (DSMR-reader's first reading of the day), as if nothing was used before it.
    """
    ordered = sorted(positions_of_today, key=lambda position: position.timestamp)
    start, _ = day_bounds(today, tz)
    if ordered and ordered[0].timestamp > start:
        ordered.insert(0, _moved_back_to(ordered[0], start))
    statistics = day_statistics(ordered, tz, contracts, days=[today])
    return statistics[0] if statistics else None


def _moved_back_to(position: MeterPosition, start: datetime) -> MeterPosition:
    gas_timestamp = position.gas_timestamp
    if gas_timestamp is not None:
        gas_timestamp = min(gas_timestamp, start)
    return replace(position, timestamp=start, gas_timestamp=gas_timestamp)


def _total_of(hours: Sequence[HourStatistic]) -> Consumption:
    gas_hours = [hour.gas for hour in hours if hour.gas is not None]
    return Consumption(
        electricity1=sum((hour.electricity1 for hour in hours), ZERO),
        electricity2=sum((hour.electricity2 for hour in hours), ZERO),
        electricity1_returned=sum((hour.electricity1_returned for hour in hours), ZERO),
        electricity2_returned=sum((hour.electricity2_returned for hour in hours), ZERO),
        gas=sum(gas_hours, ZERO) if gas_hours else None,
    )


_NO_CONTRACT = EnergyPrices(start=date.min, end=None, description="no contract: everything costs nothing")


def _priced_day(day: date, used: Consumption, contract: EnergyPrices | None) -> DayStatistic:
    """Costs per DSMR-reader, each rounded half-up to cents; a negative cost means more was returned."""
    prices = contract or _NO_CONTRACT
    electricity1_cost = _cents(
        used.electricity1 * prices.electricity_delivered_1_price
        - used.electricity1_returned * prices.electricity_returned_1_price
    )
    electricity2_cost = _cents(
        used.electricity2 * prices.electricity_delivered_2_price
        - used.electricity2_returned * prices.electricity_returned_2_price
    )
    gas_cost = _cents((used.gas or ZERO) * prices.gas_price)
    total_cost = _cents(electricity1_cost + electricity2_cost + gas_cost + prices.fixed_daily_cost)
    return DayStatistic(
        day=day,
        electricity1=_thousandths(used.electricity1),
        electricity2=_thousandths(used.electricity2),
        electricity1_returned=_thousandths(used.electricity1_returned),
        electricity2_returned=_thousandths(used.electricity2_returned),
        gas=None if used.gas is None else _thousandths(used.gas),
        electricity1_cost=electricity1_cost,
        electricity2_cost=electricity2_cost,
        gas_cost=gas_cost,
        fixed_cost=_cents(prices.fixed_daily_cost),
        total_cost=total_cost,
    )


# --- incremental recomputation -------------------------------------------------------------------------------


def affected_local_days(timestamps: Iterable[datetime], tz: tzinfo) -> set[date]:
    """The local days whose statistics a reading at these instants can change.

    Pass, for each late or corrected reading, its timestamp and gas_timestamp, and those of the stored
    reading that follows it: that reading's hour now starts from the late one, and it may lie in the next
    day. An instant exactly at local midnight closes the previous day's last hour, so both days count.
    """
    days = set()
    for timestamp in timestamps:
        instant = _as_utc(timestamp, "timestamp")
        day = _local_date(instant, tz)
        days.add(day)
        if instant == day_bounds(day, tz)[0]:
            days.add(day - DAY)
    return days


def statistics_window(days: Iterable[date], tz: tzinfo) -> tuple[datetime, datetime]:
    """(start, end) in UTC of the positions needed to recompute `days`: load the last position at or before
    `start` and every position with start < timestamp <= end, then pass `days` along. `end` lies
    GAS_REPORT_DELAY past the last day so that a v4 meter's gas reading for its last hour is included."""
    chosen = sorted(set(days))
    if not chosen:
        raise InvalidInput("no days to recompute", field="days")
    return day_bounds(chosen[0], tz)[0], day_bounds(chosen[-1], tz)[1] + GAS_REPORT_DELAY


# --- formatting for DSMR-reader's JSON -----------------------------------------------------------------------


def decimal_str(value: Decimal | int | float, places: int) -> str:
    """Fixed-point text rounded half-up, as DSMR-reader prints it: "2000.000", "0.12", "0.000000"."""
    rounded = _as_decimal(value, "value").quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if rounded.is_zero():
        rounded = abs(rounded)  # no "-0.00"
    return f"{rounded:f}"


def local_iso(moment: datetime, tz: tzinfo) -> str:
    """ISO 8601 in local time with its offset: "2017-04-15T00:00:00+02:00"."""
    return _as_utc(moment, "timestamp").astimezone(tz).isoformat(timespec="seconds")


def utc_iso_z(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z: "2015-12-11T21:25:05Z"."""
    return _as_utc(moment, "timestamp").strftime("%Y-%m-%dT%H:%M:%SZ")
