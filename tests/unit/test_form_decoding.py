"""The front door reads a telegram form itself (fastpath._single_telegram_field): whatever the body, it must
give what urllib's parse_qsl gives, the decoding Connexion's form parser uses."""

from __future__ import annotations

import random
import urllib.parse
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from fastpath import _single_telegram_field
from tests.support.telegrams import make_telegram


def parse_qsl_value(body: bytes) -> str | None:
    if b";" in body:
        return None
    values = [
        v for name, v in urllib.parse.parse_qsl(body.decode("latin-1"), keep_blank_values=True) if name == "telegram"
    ]
    return values[0] if len(values) == 1 else None


# Pieces that try the decoder's edges: stray and doubled percent signs, escapes in either case, an escaped
# percent sign followed by hex digits, plus signs, non-ASCII and control characters, and what the C decoder
# (quoted-printable's) would read as its own escapes and soft line breaks: `=41`, `=` at a line end.
PIECES = st.sampled_from(
    [
        *("%", "%%", "%2", "%25", "%41", "%4", "%0D", "%0d", "%fA", "%3D", "%3d", "+", " ", "A", "f", "1", "("),
        *("é", "\r\n", "\n", "&", "=", "=41", "=\r\n", "==", "_", "\t "),
    ]
)
VALUES = st.lists(PIECES | st.text(max_size=3), max_size=20).map("".join)


@given(VALUES)
def test_a_raw_form_value_decodes_as_parse_qsl_decodes_it(value):
    body = ("telegram=" + value).encode()
    assert _single_telegram_field(body) == parse_qsl_value(body)


@given(VALUES)
def test_an_encoded_form_value_decodes_as_parse_qsl_decodes_it(value):
    for encode in (urllib.parse.quote, urllib.parse.quote_plus):
        body = ("telegram=" + encode(value)).encode()
        assert _single_telegram_field(body) == parse_qsl_value(body) == value


def test_a_telegram_posted_by_a_data_logger_comes_back_exactly_as_it_was_sent():
    text = make_telegram(
        "v5", random.Random(3), timestamp=datetime(2024, 3, 1, tzinfo=UTC), equipment_id="E0025123456789012"
    )
    assert _single_telegram_field(urllib.parse.urlencode({"telegram": text}).encode()) == text
    assert _single_telegram_field(("telegram=" + urllib.parse.quote(text)).encode()) == text


def test_a_form_with_other_fields_or_several_telegrams_is_read_as_parse_qsl_reads_it():
    for body in (b"telegram=a&telegram=b", b"x=1&telegram=%41", b"telegram=%41&x", b"telegram=a;b", b"other=1"):
        assert _single_telegram_field(body) == parse_qsl_value(body)
