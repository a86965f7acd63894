"""DSMR-reader style statistics from cumulative meter registers (DSMR-reader's hour and day statistics).

A meter position holds cumulative registers: kWh delivered and returned per tariff (1 = low, 2 = normal) and
m³ of gas. What was used in a period is what the registers rose by from reading to reading in it; an interval
in which a register decreased is a reset (a meter swap, a test reading) and books nothing.
Hour statistics are per local hour and day statistics per local calendar day, so a day has 23 or 25 hours
when the clocks change. Costs follow DSMR-reader: used × delivered price − returned × returned price per
tariff, rounded half-up to cents; the total adds gas and the contract's fixed daily cost.

Outages: between two readings at most a maximum gap apart (DSMR_MAX_GAP_SECONDS) each register's rise is
spread linearly over the hours the interval covers; across a longer gap it is booked nowhere and reported as
a gap. Each interval's booking (`book_electricity`, `book_gas`) depends on its two readings only, so a new
reading changes exactly the bookings of the interval it splits: the repository keeps the statistics current
by taking that interval's booking back and adding the two new ones, and `book` recomputes them all.

Energy and money are Decimal throughout; instants are aware datetimes stored in UTC.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

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

# Readings further apart than this book nothing between them: the rise is reported as a gap (an outage).
DEFAULT_MAX_GAP_SECONDS = 3600
USE_FIELDS = ("electricity1", "electricity2", "electricity1_returned", "electricity2_returned")


@dataclass(frozen=True)
class HourStatistic:
    hour_start: datetime  # UTC
    electricity1: Decimal
    electricity2: Decimal
    electricity1_returned: Decimal
    electricity2_returned: Decimal
    gas: Decimal | None  # None when no gas interval covers this hour (yet)


@dataclass(frozen=True)
class Gap:
    """Two consecutive readings further apart than the maximum gap: what the registers rose by between them
    is booked to no hour and no day. For gas, only `gas` is set; for electricity, the four registers."""

    start: datetime
    end: datetime
    electricity1: Decimal | None = None
    electricity2: Decimal | None = None
    electricity1_returned: Decimal | None = None
    electricity2_returned: Decimal | None = None
    gas: Decimal | None = None


# Per hour (epoch second of its UTC start): [electricity1, electricity2, electricity1_returned,
# electricity2_returned, gas or None]. What intervals add to hours, and what hours hold.
HourValues = list


def is_reset(before: MeterPosition, after: MeterPosition) -> bool:
    """A register that decreases from one reading to the next was reset (a meter swap, a test reading)."""
    return any(getattr(after, name) < getattr(before, name) for name in _ELECTRICITY_REGISTERS)


@lru_cache(maxsize=8192)
def _day_edges(day: date, tz: tzinfo) -> tuple[int, ...]:
    """Epoch seconds of the local hour starts of `day` and of the next local midnight."""
    start, end = day_bounds(day, tz)
    edges = []
    moment = start
    while moment < end:
        edges.append(int(moment.timestamp()))
        moment += HOUR
    edges.append(int(end.timestamp()))
    return tuple(edges)


def _epoch_day(epoch: int, tz: tzinfo) -> date:
    return datetime.fromtimestamp(epoch, tz).date()


def hour_edges(start: int, end: int, tz: tzinfo) -> list[int]:
    """The local hour edges e0 <= start < e1 < … < ek >= end (epoch seconds): the starts of every hour that
    (start, end] reaches into, and the end of the last one."""
    day = _epoch_day(start, tz)
    edges: list[int] = []
    while True:
        for edge in _day_edges(day, tz)[:-1]:
            if edge <= start:
                edges = [edge]
            else:
                edges.append(edge)
                if edge >= end:
                    return edges
        day += DAY


def _spread(start: int, end: int, rise: Decimal, edges: Sequence[int]) -> list[tuple[int, Decimal]]:
    """The rise over (start, end] cut at the hour edges in proportion to time. Each hour gets the rounded
    cumulative rise at its end minus that at its start, so the pieces are thousandths that add up to the
    rise exactly (no Wh lost or made by rounding)."""
    if len(edges) == 2:
        return [(edges[0], rise)]
    duration = end - start
    pieces = []
    booked_before = ZERO
    for hour_start, hour_end in itertools.pairwise(edges):
        upto = min(hour_end, end)
        booked = rise if upto == end else _thousandths(rise * (upto - start) / duration)
        pieces.append((hour_start, booked - booked_before))
        booked_before = booked
    return pieces


@dataclass(frozen=True)
class IntervalBooking:
    """What one interval between consecutive readings contributes: per hour (the hours it covers, zero
    for a reset) and, across a gap, the gap instead. `delivered_quarters` is the delivered kWh (both
    tariffs) per UTC quarter hour, for the JOI price plans' rollups."""

    hours: dict[int, tuple[Decimal, ...]]
    gap: Gap | None = None
    delivered_quarters: dict[int, float] = field(default_factory=dict)


UTC_QUARTER = 900


def _utc_quarters(start: int, end: int, kwh: float) -> dict[int, float]:
    pieces = {}
    edge = start - start % UTC_QUARTER
    while edge < end:
        pieces[edge] = kwh * (min(edge + UTC_QUARTER, end) - max(edge, start)) / (end - start)
        edge += UTC_QUARTER
    return pieces


def book_electricity(before: MeterPosition, after: MeterPosition, tz: tzinfo, max_gap: int) -> IntervalBooking:
    """The interval from `before` to `after` (consecutive readings): within `max_gap` seconds each register's
    rise is spread over the hours it covers; a reset covers its hours with nothing; a longer interval books
    nothing and is a gap (unless it is a reset too, which is reported as a reset)."""
    start, end = int(before.timestamp.timestamp()), int(after.timestamp.timestamp())
    reset = is_reset(before, after)
    if end - start > max_gap:
        if reset:
            return IntervalBooking({})
        rises = [getattr(after, name) - getattr(before, name) for name in _ELECTRICITY_REGISTERS]
        return IntervalBooking({}, Gap(before.timestamp, after.timestamp, *rises))
    edges = hour_edges(start, end, tz)
    if reset:
        return IntervalBooking(
            {edge: (ZERO, ZERO, ZERO, ZERO) for edge in edges[:-1]}, delivered_quarters=_utc_quarters(start, end, 0.0)
        )
    rises = [getattr(after, name) - getattr(before, name) for name in _ELECTRICITY_REGISTERS]
    columns = [_spread(start, end, rise, edges) for rise in rises]
    return IntervalBooking(
        {pieces[0][0]: tuple(piece[1] for piece in pieces) for pieces in zip(*columns, strict=True)},
        delivered_quarters=_utc_quarters(start, end, float(rises[0] + rises[1])),
    )


def book_gas(
    before: tuple[datetime, Decimal], after: tuple[datetime, Decimal], tz: tzinfo, max_gap: int
) -> IntervalBooking:
    """The same for two consecutive gas captures (time, m³): the hours get a 1-tuple of gas."""
    start, end = int(before[0].timestamp()), int(after[0].timestamp())
    rise = after[1] - before[1]
    if end - start > max_gap:
        return IntervalBooking({}, None if rise < 0 else Gap(before[0], after[0], gas=rise))
    edges = hour_edges(start, end, tz)
    if rise < 0:
        return IntervalBooking({edge: (ZERO,) for edge in edges[:-1]})
    return IntervalBooking({hour: (piece,) for hour, piece in _spread(start, end, rise, edges)})


def add_quarters(quarters: dict[int, float], booking: IntervalBooking, sign: int = 1) -> None:
    for quarter, kwh in booking.delivered_quarters.items():
        quarters[quarter] = quarters.get(quarter, 0.0) + sign * kwh


def add_booking(hours: dict[int, HourValues], booking: IntervalBooking, *, gas: bool, sign: int = 1) -> None:
    """Add (sign 1) or take back (sign -1) an interval's booking into `hours`."""
    for hour, pieces in booking.hours.items():
        values = hours.get(hour)
        if values is None:
            values = hours[hour] = [ZERO, ZERO, ZERO, ZERO, None]
        if gas:
            values[4] = (values[4] or ZERO) + sign * pieces[0]
        else:
            for index in range(4):
                values[index] += sign * pieces[index]


def gas_captures(positions: Iterable[MeterPosition]) -> list[tuple[datetime, Decimal]]:
    """The distinct gas captures (time, m³) in time order. Many telegrams repeat a capture; where two carry
    different values for one capture time, the later telegram's value counts."""
    captured: dict[datetime, tuple[datetime, Decimal]] = {}
    for position in positions:
        if position.gas_timestamp is None or position.gas_delivered is None:
            continue
        known = captured.get(position.gas_timestamp)
        if known is None or known[0] <= position.timestamp:
            captured[position.gas_timestamp] = (position.timestamp, position.gas_delivered)
    return [(moment, captured[moment][1]) for moment in sorted(captured)]


@dataclass(frozen=True)
class Booked:
    hours: dict[int, HourValues]
    gaps: list[Gap]  # electricity, in time order
    gas_gaps: list[Gap]
    delivered_quarters: dict[int, float]


def book(positions: Iterable[MeterPosition], tz: tzinfo, max_gap: int = DEFAULT_MAX_GAP_SECONDS) -> Booked:
    """Every interval of the readings booked: the hours and the gaps (a full recomputation)."""
    ordered = sorted(positions, key=lambda position: position.timestamp)
    return book_in_order(ordered, gas_captures(ordered), tz, max_gap)


def book_in_order(
    positions: Iterable[MeterPosition],
    captures: Iterable[tuple[datetime, Decimal]],
    tz: tzinfo,
    max_gap: int = DEFAULT_MAX_GAP_SECONDS,
) -> Booked:
    """`book` for positions in time order and distinct gas captures in time order, read one at a time (a
    meter's readings need not fit in memory)."""
    hours: dict[int, HourValues] = {}
    quarters: dict[int, float] = {}
    gaps, gas_gaps = [], []
    for before, after in itertools.pairwise(positions):
        booking = book_electricity(before, after, tz, max_gap)
        add_booking(hours, booking, gas=False)
        add_quarters(quarters, booking)
        if booking.gap is not None:
            gaps.append(booking.gap)
    for before, after in itertools.pairwise(captures):
        booking = book_gas(before, after, tz, max_gap)
        add_booking(hours, booking, gas=True)
        if booking.gap is not None:
            gas_gaps.append(booking.gap)
    return Booked(hours, gaps, gas_gaps, quarters)


def hour_statistic(hour_start: int, values: HourValues) -> HourStatistic:
    gas = values[4]
    return HourStatistic(
        datetime.fromtimestamp(hour_start, UTC),
        *(_thousandths(value) for value in values[:4]),
        gas=None if gas is None else _thousandths(gas),
    )


def hour_statistics(
    positions: Iterable[MeterPosition],
    tz: tzinfo,
    *,
    max_gap: int = DEFAULT_MAX_GAP_SECONDS,
    days: Iterable[date] | None = None,
) -> list[HourStatistic]:
    """Use per local hour, in time order (only of `days` when given).

    Between two consecutive readings at most `max_gap` seconds apart, the rise of each register is spread
    linearly over the hours the interval covers (a reading exactly on the hour closes the hour that ends
    there), so hour edges need no reading of their own, and no energy is lost between the last reading of
    one hour and the first of the next, nor lumped into the hour after an outage. The pieces are rounded
    cumulatively, to whole Wh that add up to the rise exactly. Across a longer gap nothing is booked (see
    `book`: the gap is reported); across a reset (a register that went down: a meter swap) nothing is
    booked either. An hour has a statistic when an interval within `max_gap` covers part of it.

    Gas is booked the same way between the gas meter's own distinct captures: a v4 meter's hourly capture
    is stamped with the hour's end, so its rise lands in the hour before; a v5 meter captures every 5 minutes.
    """
    wanted = None if days is None else set(days)
    statistics = [
        hour_statistic(hour, values)
        for hour, values in sorted(book(positions, tz, max_gap).hours.items())
        if wanted is None or _epoch_day(hour, tz) in wanted
    ]
    return statistics


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
    max_gap: int = DEFAULT_MAX_GAP_SECONDS,
    days: Iterable[date] | None = None,
) -> list[DayStatistic]:
    """Use and cost per local calendar day, in date order: the sum of the day's hour statistics, so days of
    23 and 25 hours come out right. A day without any hour statistic is left out."""
    contracts = list(contracts)
    hours_by_day: dict[date, list[HourStatistic]] = {}
    for hour in hour_statistics(positions, tz, max_gap=max_gap, days=days):
        hours_by_day.setdefault(_local_date(hour.hour_start, tz), []).append(hour)
    return [
        _priced_day(day, _total_of(hours), prices_for_day(contracts, day))
        for day, hours in sorted(hours_by_day.items())
    ]


def consumption_today(
    positions: Iterable[MeterPosition],
    tz: tzinfo,
    contracts: Iterable[EnergyPrices],
    today: date,
    *,
    max_gap: int = DEFAULT_MAX_GAP_SECONDS,
) -> DayStatistic | None:
    """Today's use and cost so far (/api/v2/consumption/today): today's day statistic as it stands, from
    local midnight by the same rule (pass the last position before today too). After an outage that
    reaches into today, it counts from today's first reading. None when there is no reading today yet;
    zero (with the fixed cost) when the only reading today is its first."""
    start, end = day_bounds(today, tz)
    positions = list(positions)
    if not any(start < position.timestamp <= end for position in positions):
        return None
    days = day_statistics(positions, tz, contracts, max_gap=max_gap, days=[today])
    return days[0] if days else zero_day(today, contracts)


def zero_day(day: date, contracts: Iterable[EnergyPrices]) -> DayStatistic:
    """A day with nothing used, priced (the fixed daily cost still counts)."""
    return priced_day(day, Consumption(ZERO, ZERO, ZERO, ZERO, None), contracts)


def priced_day(day: date, used: Consumption, contracts: Iterable[EnergyPrices]) -> DayStatistic:
    """The day statistic of these totals, priced by the contract that covers the day."""
    return _priced_day(day, used, prices_for_day(contracts, day))


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
