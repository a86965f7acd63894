"""The mailings admin forms obey the API's rules and say which field is wrong; progress per status."""

from datetime import UTC, datetime, time

import pytest

from domain.errors import InvalidInput
from domain.mailings import Client, Mailing
from domain.mailings_admin import (
    CLIENT_FIELDS,
    MAILING_FIELDS,
    FormError,
    StatusShare,
    client_form_values,
    client_from_form,
    filters_text,
    form_error,
    has_started,
    mailing_form_values,
    mailing_from_form,
    progress,
    window_text,
)

CLIENT_FORM = {"phone": "78218173218", "operator_code": "123", "tag": "", "timezone": "Europe/Moscow"}
MAILING_FORM = {
    "start_time": "2030-01-01T09:00",
    "end_time": "2030-01-03T00:00",
    "text": "night owls",
    "client_operator_code_filter": "123",
    "client_tag_filter": "",
    "send_window_start": "22:00",
    "send_window_end": "06:00",
}


def refusal(make, form) -> tuple[str | None, str]:
    with pytest.raises(InvalidInput) as refused:
        make(form)
    return refused.value.field, refused.value.detail


def test_a_client_form_makes_the_client_the_api_would_with_an_empty_tag_as_none():
    assert client_from_form(CLIENT_FORM) == Client("78218173218", "123", "Europe/Moscow", None)
    assert client_from_form({**CLIENT_FORM, "tag": " VIP "}, client_id=4) == Client(
        "78218173218", "123", "Europe/Moscow", "VIP", 4
    )


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"phone": ""}, "phone", "phone is required"),
        ({"phone": "88218173218"}, "phone", "7 followed by 10 digits"),
        ({"operator_code": "12"}, "operator_code", "3 digits"),
        ({"timezone": "timezone"}, "timezone", "IANA time zone"),
        ({"timezone": "Europe/" + "x" * 60}, "timezone", "at most 64 characters"),
        ({"tag": "x" * 65}, "tag", "at most 64"),
    ],
)
def test_a_bad_client_form_is_refused_naming_the_field(changes, field, words):
    refused_field, detail = refusal(client_from_form, {**CLIENT_FORM, **changes})
    assert refused_field == field and words in detail


def test_a_mailing_form_reads_datetime_local_fields_as_utc():
    mailing = mailing_from_form(MAILING_FORM, mailing_id=2)
    assert mailing == Mailing(
        start_time=datetime(2030, 1, 1, 9, tzinfo=UTC),
        end_time=datetime(2030, 1, 3, tzinfo=UTC),
        text="night owls",
        client_operator_code_filter="123",
        send_window_start=time(22),
        send_window_end=time(6),
        id=2,
    )
    assert mailing_form_values(mailing) == {**MAILING_FORM, "client_tag_filter": ""}


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"text": "   "}, "text", "text is required"),
        ({"start_time": ""}, "start_time", "start_time is required"),
        ({"end_time": "2029-12-31"}, "end_time", "must be after start_time"),
        ({"start_time": "soon"}, "start_time", "ISO 8601"),
        ({"send_window_end": ""}, "send_window_end", "go together"),
        ({"send_window_start": "24:00"}, "send_window_start", "HH:MM"),
        ({"client_operator_code_filter": "12a"}, "client_operator_code_filter", "3 digits"),
        ({"text": "x" * 4097}, "text", "at most 4096"),
    ],
)
def test_a_bad_mailing_form_is_refused_naming_the_field(changes, field, words):
    refused_field, detail = refusal(mailing_from_form, {**MAILING_FORM, **changes})
    assert refused_field == field and words in detail


def test_a_form_error_goes_next_to_its_field_or_above_the_form():
    assert form_error(InvalidInput("phone taken", field="phone"), CLIENT_FIELDS) == FormError("phone", "phone taken")
    assert form_error(InvalidInput("started", field=None), MAILING_FIELDS) == FormError("", "started")


def test_form_values_round_trip_a_client():
    client = Client("78218173218", "123", "UTC", None, 1)
    assert client_from_form(client_form_values(client), client_id=1) == client


def test_a_mailing_has_started_once_its_start_time_has_come():
    mailing = mailing_from_form(MAILING_FORM)
    assert not has_started(mailing, datetime(2030, 1, 1, 8, 59, tzinfo=UTC))
    assert has_started(mailing, datetime(2030, 1, 1, 9, tzinfo=UTC))


def test_progress_lists_every_status_in_order_with_its_share():
    shares, total = progress({"SENT": 3, "FAILED": 1})
    assert total == 4
    assert shares == [
        StatusShare("PENDING", 0, 0.0),
        StatusShare("SENT", 3, 75.0),
        StatusShare("FAILED", 1, 25.0),
        StatusShare("EXPIRED", 0, 0.0),
    ]
    assert progress({}) == ([StatusShare(status, 0, 0.0) for status in ("PENDING", "SENT", "FAILED", "EXPIRED")], 0)


def test_filters_and_window_in_words():
    mailing = mailing_from_form(MAILING_FORM)
    assert (filters_text(mailing), window_text(mailing)) == ("operator 123", "22:00–06:00 local")
    plain = mailing_from_form(
        {**MAILING_FORM, "client_operator_code_filter": "", "send_window_start": "", "send_window_end": ""}
    )
    assert (filters_text(plain), window_text(plain)) == ("every client", "any time")
