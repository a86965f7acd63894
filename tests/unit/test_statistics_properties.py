"""The DSMR bookkeeping a calculator checks: whatever the readings, hours add up to days, and days add up
to the meter's rise minus the reported gaps and resets, per register, to the Wh."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.statistics import (
    MeterPosition,
    book,
    day_statistics,
    gas_captures,
    hour_statistics,
    is_reset,
)

REGISTERS = ("electricity_delivered_1", "electricity_delivered_2", "electricity_returned_1", "electricity_returned_2")
USE = ("electricity1", "electricity2", "electricity1_returned", "electricity2_returned")
ZONES = ["Europe/Amsterdam", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Adelaide", "UTC"]
MILLI = Decimal("0.001")

steps = st.lists(
    st.tuples(
        st.one_of(st.integers(1, 900), st.integers(900, 4 * 3600)),  # seconds since the previous reading
        st.lists(st.integers(0, 3000), min_size=4, max_size=4),  # Wh each register rose by
        st.integers(0, 40),  # 0: a reset (a register starts again from a low value)
        st.one_of(st.none(), st.integers(0, 500)),  # None: no new gas capture; else litres risen
    ),
    min_size=1,
    max_size=60,
)


def positions_of(start: datetime, plan) -> list[MeterPosition]:
    registers = [Decimal(1000)] * 4
    gas = Decimal(100)
    moment = start
    gas_at = start
    positions = [MeterPosition(moment, *registers, gas_timestamp=gas_at, gas_delivered=gas)]
    for seconds, rises, reset, gas_rise in plan:
        moment += timedelta(seconds=seconds)
        registers = [value + rise * MILLI for value, rise in zip(registers, rises, strict=True)]
        if reset == 0:
            registers[seconds % 4] = Decimal(seconds % 7)
            gas = Decimal(0)
        if gas_rise is not None:
            gas_at = moment - timedelta(seconds=seconds // 2)
            gas += gas_rise * MILLI
        positions.append(MeterPosition(moment, *registers, gas_timestamp=gas_at, gas_delivered=gas))
    return positions


@settings(max_examples=150, deadline=None)
@given(
    plan=steps,
    zone=st.sampled_from(ZONES),
    max_gap=st.sampled_from([600, 3600, 7200]),
    start=st.integers(0, 3 * 365 * 86400),
)
def test_hours_sum_to_days_and_days_to_the_rise_less_gaps_and_resets(plan, zone, max_gap, start):
    tz = ZoneInfo(zone)
    positions = positions_of(datetime(2023, 1, 1, tzinfo=UTC) + timedelta(seconds=start), plan)

    hours = hour_statistics(positions, tz, max_gap=max_gap)
    days = day_statistics(positions, tz, [], max_gap=max_gap)
    booked = book(positions, tz, max_gap)

    for use, register in zip(USE, REGISTERS, strict=True):
        in_hours = sum(getattr(hour, use) for hour in hours)
        in_days = sum(getattr(day, use) for day in days)
        in_gaps = sum(getattr(gap, use) for gap in booked.gaps)
        in_resets = sum(
            getattr(after, register) - getattr(before, register)
            for before, after in pairwise(positions)
            if is_reset(before, after)
        )
        rise = getattr(positions[-1], register) - getattr(positions[0], register)
        assert in_hours == in_days
        assert in_days == rise - in_gaps - in_resets
        assert all(getattr(gap, use) >= 0 for gap in booked.gaps)
    captures = gas_captures(positions)
    gas_in_days = sum(day.gas or 0 for day in days)
    gas_in_gaps = sum(gap.gas for gap in booked.gas_gaps)
    gas_resets = sum(after[1] - before[1] for before, after in pairwise(captures) if after[1] < before[1])
    assert sum(hour.gas or 0 for hour in hours) == gas_in_days
    assert gas_in_days == captures[-1][1] - captures[0][1] - gas_in_gaps - gas_resets
    # Every booked hour is one of the zone's local hour starts.
    assert all(hour.hour_start.astimezone(tz).minute == 0 for hour in hours)
