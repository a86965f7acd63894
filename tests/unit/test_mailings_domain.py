import random
from datetime import UTC, datetime, time

import pytest

from domain.errors import InvalidInput
from domain.mailings import (
    Client,
    Mailing,
    ReportLine,
    SendWindow,
    client_from_json,
    client_matches,
    in_window,
    judge_answer,
    mailing_from_json,
    message_data,
    next_window_opening,
    parse_moment,
    report_day,
    report_message,
    retry_delay_seconds,
    window_closing,
)

START, END = "2022-12-02T16:50:00Z", "2028-11-20"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_the_seed_client_example_is_refused_only_for_its_placeholder_timezone():
    with pytest.raises(InvalidInput, match="IANA") as error:
        client_from_json({"phone": "78218173218", "operator_code": "123", "timezone": "timezone"})
    assert error.value.field == "timezone"
    client = client_from_json({"phone": "78218173218", "operator_code": "123", "timezone": "Europe/Moscow"})
    assert client.tag is None


@pytest.mark.parametrize(
    "field, value",
    [
        ("phone", "88218173218"),
        ("phone", "7821817321"),
        ("phone", "78218173218\n"),
        ("operator_code", "12"),
        ("timezone", "Mars/Olympus"),
        ("timezone", "../../etc/passwd"),
        ("timezone", "UTC\n"),
        ("tag", "a\nb"),
    ],
)
def test_a_client_field_that_breaks_a_rule_is_refused_with_its_name(field, value):
    body = {"phone": "78218173218", "operator_code": "123", "timezone": "UTC", field: value}
    with pytest.raises(InvalidInput) as error:
        client_from_json(body)
    assert error.value.field == field


def test_the_seed_mailing_example_ends_at_midnight_utc_of_its_date():
    mailing = mailing_from_json({"start_time": START, "text": "hello", "client_tag_filter": "VIP", "end_time": END})
    assert mailing.end_time == datetime(2028, 11, 20, tzinfo=UTC)
    assert mailing.start_time == datetime(2022, 12, 2, 16, 50, tzinfo=UTC)
    assert mailing.client_operator_code_filter is None and mailing.window is None


def test_a_naive_time_means_utc_and_an_offset_is_converted():
    assert parse_moment("2026-01-01T10:00:00", "x") == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert parse_moment("2026-01-01T10:00:00+03:00", "x") == datetime(2026, 1, 1, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"end_time": "2022-12-02T16:50:00Z"}, "end_time"),
        ({"end_time": "2021-01-01"}, "end_time"),
        ({"start_time": "yesterday"}, "start_time"),
        ({"text": "   "}, "text"),
        ({"send_window_start": "22:00"}, "send_window_end"),
        ({"send_window_start": "24:00", "send_window_end": "06:00"}, "send_window_start"),
        ({"send_window_start": "09:00", "send_window_end": "09:00"}, "send_window_end"),
        ({"client_operator_code_filter": "12a"}, "client_operator_code_filter"),
    ],
)
def test_a_mailing_that_breaks_a_rule_is_refused_with_the_field(changes, field):
    with pytest.raises(InvalidInput) as error:
        mailing_from_json({"start_time": START, "text": "hello", "end_time": END, **changes})
    assert error.value.field == field


def test_a_client_matches_only_when_it_matches_every_filter_given():
    client = Client("79000000000", "900", "UTC", "VIP")
    base = dict(start_time=at(START), end_time=at("2028-11-20T00:00:00Z"), text="t")
    assert client_matches(Mailing(**base), client)
    assert client_matches(Mailing(**base, client_tag_filter="VIP", client_operator_code_filter="900"), client)
    assert not client_matches(Mailing(**base, client_tag_filter="VIP", client_operator_code_filter="901"), client)
    assert not client_matches(Mailing(**base, client_tag_filter="vip"), client)
    assert not client_matches(Mailing(**base, client_tag_filter="VIP"), Client("79000000001", "900", "UTC", None))


NIGHT = SendWindow(time(22, 0), time(6, 0))
DAY = SendWindow(time(9, 0), time(18, 0))


@pytest.mark.parametrize(
    "moment, inside",
    [
        ("2026-06-01T21:59:59+03:00", False),
        ("2026-06-01T22:00:00+03:00", True),
        ("2026-06-02T02:00:00+03:00", True),
        ("2026-06-02T05:59:59+03:00", True),
        ("2026-06-02T06:00:00+03:00", False),
        ("2026-06-02T12:00:00+03:00", False),
    ],
)
def test_a_window_crossing_midnight_is_open_from_its_start_to_its_end_in_local_time(moment, inside):
    assert in_window(at(moment), NIGHT, "Europe/Moscow") is inside


def test_the_window_is_the_clients_local_time_not_utc():
    noon_utc = at("2026-06-01T12:00:00Z")
    assert in_window(noon_utc, DAY, "Europe/Moscow")  # 15:00 there
    assert not in_window(noon_utc, DAY, "Asia/Tokyo")  # 21:00 there
    assert not in_window(noon_utc, DAY, "America/New_York")  # 08:00 there


def test_outside_its_window_a_message_waits_for_the_next_opening():
    evening = at("2026-06-01T19:00:00+03:00")
    assert next_window_opening(evening, DAY, "Europe/Moscow") == at("2026-06-02T09:00:00+03:00")
    assert next_window_opening(evening, NIGHT, "Europe/Moscow") == at("2026-06-01T22:00:00+03:00")
    inside = at("2026-06-01T23:30:00+03:00")
    assert next_window_opening(inside, NIGHT, "Europe/Moscow") == inside
    assert window_closing(inside, NIGHT, "Europe/Moscow") == at("2026-06-02T06:00:00+03:00")
    assert next_window_opening(inside, None, "Europe/Moscow") == inside and window_closing(inside, None, "UTC") is None


def test_windows_follow_daylight_saving_time():
    # Amsterdam: 09:00 local is 08:00 UTC in winter and 07:00 UTC in summer.
    assert next_window_opening(at("2026-03-28T20:00:00Z"), DAY, "Europe/Amsterdam") == at("2026-03-29T07:00:00Z")
    assert next_window_opening(at("2026-10-24T20:00:00Z"), DAY, "Europe/Amsterdam") == at("2026-10-25T08:00:00Z")


def test_retries_back_off_exponentially_with_jitter_up_to_the_maximum():
    rng = random.Random(1)
    delays = [retry_delay_seconds(n, 5, 600, rng) for n in range(1, 12)]
    for attempt, delay in enumerate(delays, start=1):
        full = min(600, 5 * 2 ** (attempt - 1))
        assert full / 2 <= delay <= full
    assert len({round(d, 6) for d in delays}) == len(delays)  # jittered, not a fixed ladder
    assert retry_delay_seconds(10_000, 5, 600, rng) <= 600


@pytest.mark.parametrize(
    "status, body, ok",
    [
        (200, b'{"code": 0, "message": "OK"}', True),
        (200, b'{"code": 0}', True),
        (200, b'{"code": 1}', False),
        (200, b'{"code": false}', False),
        (200, b'{"code": "0"}', False),
        (200, b'{"code": 0.0}', False),
        (200, b"[0]", False),
        (200, b'{"code": 0, "mess', False),
        (200, b"", False),
        (201, b'{"code": 0}', False),
        (500, b'{"code": 0}', False),
        (200, b"\xff\xfe", False),
    ],
)
def test_only_http_200_with_integer_code_0_is_a_success(status, body, ok):
    assert judge_answer(status, body).ok is ok


def test_statistics_list_every_status_in_lifecycle_order():
    assert message_data({"SENT": 3}) == [
        {"status": "PENDING", "count": 0},
        {"status": "SENT", "count": 3},
        {"status": "FAILED", "count": 0},
        {"status": "EXPIRED", "count": 0},
    ]


def test_the_report_for_yesterday_is_due_from_the_report_time_on():
    assert report_day(at("2026-12-01T07:59:00Z"), "08:00") is None
    assert report_day(at("2026-12-01T08:00:00Z"), "08:00").isoformat() == "2026-11-30"


def test_the_report_has_a_line_per_mailing_with_its_counts():
    mailing = Mailing(at("2026-11-30T10:00:00Z"), at("2026-12-01T00:00:00Z"), "hello", id=7)
    subject, body = report_message(
        report_day(at("2026-12-01T09:00:00Z"), "08:00"), [ReportLine(mailing, {"SENT": 5, "EXPIRED": 1}, 5)]
    )
    assert subject == "Mailings on 2026-11-30: 1 mailings, 5 messages sent"
    assert "mailing 7 'hello'" in body and "sent that day 5; now PENDING 0, SENT 5, FAILED 0, EXPIRED 1" in body
