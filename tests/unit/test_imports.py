"""Reading import files (domain.imports): the CSV fast and slow paths agree, bad rows are named by line, and the
bulk rollups equal the rollups POST /readings/store computes."""

import random

import pytest

from domain.imports import (
    CSV,
    OMS,
    TELEGRAMS,
    BadRow,
    CsvReader,
    TelegramText,
    bulk_hour_rollups,
    detect_format,
    parse_time,
    split_telegrams,
)
from domain.usage import QUARTER, energy_by_hour_of, hour_rollups

NOW = 1_700_000_000


def read(*blocks: str):
    reader = CsvReader(now=NOW, max_future_skew=86_400)
    for block in blocks:
        reader.feed(block)
    return reader.finish()


def test_plain_rows_and_the_same_rows_with_quotes_and_spaces_read_alike():
    plain = read("smartMeterId,time,reading\nm1,100,0.5\nm2,50,1\nm1,160,0.25\n")
    quoted = read('"m1", 100 ,"0.5"\nm2,1970-01-01T00:00:50Z,1\nm1,160,0.25\n')
    for result in (plain, quoted):
        assert result.rows == 3 and not result.bad
        assert {meter: (c.times, c.values) for meter, c in result.by_meter.items()} == {
            "m1": ([100, 160], [0.5, 0.25]),
            "m2": ([50], [1.0]),
        }


def test_rows_out_of_order_are_sorted_and_an_identical_repeat_counts_once():
    result = read("m1,300,3\nm1,100,1\n", "m1,200,2\nm1,100,1\n")
    columns = result.by_meter["m1"]
    assert (columns.times, columns.values) == ([100, 200, 300], [1.0, 2.0, 3.0])
    assert result.repeated == 1 and result.rows == 4


@pytest.mark.parametrize(
    "row, problem",
    [
        ("m1,100", "expected 3 fields"),
        ("m1,100,0.5,7", "expected 3 fields"),
        ("m/1,100,0.5", "smartMeterId"),
        ("m1,soon,0.5", "neither epoch seconds nor an ISO 8601"),
        ("m1,2020-01-01T00:00:00.5Z,1", "fraction of a second"),
        ("m1,1_000,0.5", "neither epoch seconds"),
        ("m1,-5,0.5", "neither epoch seconds"),
        (f"m1,{NOW + 86_401},0.5", "in the future"),
        ("m1,100,nan", "reading 'nan'"),
        ("m1,100,inf", "reading 'inf'"),
        ("m1,100,-0.1", "reading '-0.1'"),
        ("m1,100,1e10", "reading '1e10'"),
    ],
)
def test_each_bad_row_is_named_by_its_line(row, problem):
    result = read(f"m1,10,0.5\n{row}\nm1,20,0.5\n")
    assert [bad.line for bad in result.bad] == [2]
    assert problem in result.bad[0].problem
    assert result.by_meter["m1"].times == [10, 20]


def test_another_reading_at_a_time_already_in_the_file_names_both_lines():
    result = read("m1,10,0.5\nm1,20,0.5\n", "m2,1,1\nm1,10,0.7\n")
    assert [str(bad) for bad in result.bad] == [
        "line 4: meter m1 has another reading at time 10 on line 1 (0.5 and 0.7); give one reading per time"
    ]


def test_formats_are_told_apart_by_their_first_character():
    assert detect_format("\ufeff/KFM5KAIFA-METER\r\n") == TELEGRAMS
    assert detect_format('\n{"data": []}') == OMS
    assert detect_format("smartMeterId,time,reading") == CSV


def test_iso_times_without_an_offset_are_utc():
    assert parse_time("2020-11-29T08:00:00") == parse_time("2020-11-29T09:00:00+01:00") == 1_606_636_800


def test_telegrams_are_split_at_their_header_and_end_lines_and_stray_lines_are_bad():
    lines = ["/A\r\n", "1-0:1.8.1(1)\r\n", "!1234\r\n", "noise\n", "/B\r\n", "/C\r\n", "!\r\n", "\n", "/D\r\n"]
    items = list(split_telegrams(lines))
    assert items[0] == TelegramText(1, "/A\r\n1-0:1.8.1(1)\r\n!1234\r\n")
    assert [(type(item), item.line) for item in items[1:]] == [
        (BadRow, 4),
        (BadRow, 5),
        (TelegramText, 6),
        (BadRow, 9),
    ]


def test_bulk_rollups_equal_the_store_paths_rollups():
    rng = random.Random(13)
    for _ in range(300):
        step = rng.choice([1, 10, 60, 899, 900, 1000, 3600])
        regular = rng.random() < 0.5
        times, moment = [], rng.randrange(1_600_000_000, 1_600_100_000)
        for _ in range(rng.randint(2, 300)):
            times.append(moment)
            moment += step if regular else rng.randint(1, step)
        if rng.random() < 0.1:
            times[-1] += 5000  # a gap longer than max_gap
        values = [rng.uniform(0, 5) for _ in times]
        start = times[0] - times[0] % 3600 + rng.choice([-7200, 0, 3600])
        end = max(start + 3600, times[-1] - times[-1] % 3600 + rng.choice([-3600, 3600, 7200]))
        bulk = bulk_hour_rollups(times, values, 3600, start, end)
        expected = hour_rollups(energy_by_hour_of(times, values, 3600, start, end, QUARTER))
        for hour in set(bulk) | set(expected):
            got, want = bulk.get(hour, (0.0,) * 4), expected.get(hour, (0.0,) * 4)
            assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
