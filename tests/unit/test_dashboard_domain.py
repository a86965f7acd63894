"""What the dashboard pages compute without I/O: bucket widths, line breaks, energy per local day, window edges."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.dashboard import MAX_POINTS, bucket_seconds, energy_by_local_day, parse_moment, with_breaks
from domain.errors import InvalidInput
from domain.usage import HourRollup

WEEK = 7 * 86_400


def test_a_week_is_bucketed_in_ten_minutes_so_a_line_keeps_under_two_thousand_points():
    assert bucket_seconds(0, WEEK) == 600  # 302.4 s needed: 600 is the next readable width up
    assert WEEK // 600 <= MAX_POINTS


def test_a_short_window_keeps_every_second():
    assert bucket_seconds(0, 1000) == 1


@given(st.integers(0, 10**10), st.integers(0, 10**9))
def test_no_window_ever_has_more_buckets_than_the_maximum(start, length):
    width = bucket_seconds(start, start + length)
    assert (length + 1 + width - 1) // width <= MAX_POINTS


def test_a_line_breaks_where_neighbours_are_further_apart_than_the_longest_join():
    xs, ys = with_breaks([(0, 1.0), (60, 2.0), (10_000, 3.0)], longest_join=3600)
    assert xs == [0, 60, 61, 10_000]
    assert ys == [1.0, 2.0, None, 3.0]


def test_energy_per_day_follows_local_midnight():
    # 22:00 and 23:00 UTC on 1 June are already 2 June in Amsterdam (UTC+2).
    rollups = {1717279200: HourRollup(1.0, 0.25, 0.5, 0.75), 1717282800: HourRollup(2.0, 0.5, 1.0, 1.5)}
    assert energy_by_local_day(rollups, ZoneInfo("UTC")) == {date(2024, 6, 1): 3.0}
    assert energy_by_local_day(rollups, ZoneInfo("Europe/Amsterdam")) == {date(2024, 6, 2): 3.0}


def test_an_hour_that_a_half_hour_zones_midnight_cuts_is_split_by_its_first_thirty_minutes():
    # 18:00 UTC is 23:30 in Asia/Kolkata: its first 30 minutes belong to that day, the rest to the next.
    rollups = {1717264800: HourRollup(1.0, 0.1, 0.4, 0.7)}
    assert energy_by_local_day(rollups, ZoneInfo("Asia/Kolkata")) == pytest.approx(
        {date(2024, 6, 1): 0.4, date(2024, 6, 2): 0.6}
    )


def test_window_edges_are_epoch_seconds_or_iso_times_in_utc_unless_they_say_a_zone():
    assert parse_moment("1606636800", "from") == 1606636800
    assert parse_moment("2020-11-29T08:00", "from") == 1606636800
    assert parse_moment("2020-11-29T09:00+01:00", "from") == 1606636800
    assert parse_moment("", "from") is None


@pytest.mark.parametrize("bad", ["yesterday", "²", "99999999999999", "0001-01-01T00:00+01:00", "2020-13-01"])
def test_a_window_edge_that_is_no_moment_is_refused_naming_the_field(bad):
    with pytest.raises(InvalidInput, match="^to: "):
        parse_moment(bad, "to")
