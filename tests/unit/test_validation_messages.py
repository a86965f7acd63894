"""Validation messages say what is wrong in a few words and quote a value only when it is short."""

import jsonschema_rs
import pytest

from validation import describe, has_control_character

SCHEMA = {
    "type": "object",
    "required": ["id"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 60},
        "kind": {"enum": ["a", "b"]},
        "items": {"type": "array", "minItems": 1},
        "size": {"type": "integer", "minimum": 0, "maximum": 10},
    },
}


def message(instance) -> str:
    errors = list(jsonschema_rs.Draft4Validator(SCHEMA).iter_errors(instance))
    assert len(errors) == 1
    return describe(errors[0])


@pytest.mark.parametrize(
    "instance, expected",
    [
        ({}, "'id' is required"),
        ({"id": "a", "x": 1, "y": 2}, "unknown field(s) 'x', 'y'"),
        ({"id": "a", "kind": "c"}, "must be one of 'a', 'b' (got \"c\")"),
        ({"id": "A"}, 'must match ^[a-z]+$ (got "A")'),
        ({"id": "A" * 50}, "must match ^[a-z]+$"),
        ({"id": "a", "items": []}, "too few items: 0, at least 1"),
        ({"id": "a", "size": 11}, "must be at most 10 (got 11)"),
        ({"id": "a", "size": 10**40}, "must be at most 10"),
        ({"id": "a", "size": "x" * 100}, "must be an integer (got a string)"),
        ({"id": "a", "size": 1.5}, "must be an integer (got 1.5)"),
    ],
)
def test_each_kind_of_error_is_described_in_words(instance, expected):
    assert message(instance) == expected


def test_a_newline_in_a_quoted_value_is_escaped():
    assert message({"id": "a\n"}) == 'must match ^[a-z]+$ (got "a\\n")'


@pytest.mark.parametrize(
    "text, expected", [("abc", False), ("a\nb", True), ("\x00", True), ("\x7f", True), ("é", False)]
)
def test_control_characters_are_recognised(text, expected):
    assert has_control_character(text) is expected
