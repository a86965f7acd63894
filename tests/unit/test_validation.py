import asyncio

import pytest
from connexion.exceptions import BadRequestProblem

from validation import CompiledJSONBodyValidator, compiled_validator, error_location, openapi_to_json_schema

SCHEMA = {
    "type": "object",
    "required": ["items"],
    "additionalProperties": False,
    "properties": {
        "items": {"type": "array", "items": {"type": "object", "properties": {"v": {"type": "number", "minimum": 0}}}},
        "note": {"type": "string", "nullable": True},
    },
}


def validator() -> CompiledJSONBodyValidator:
    return CompiledJSONBodyValidator(schema=SCHEMA, encoding="utf-8", strict_validation=False)


def parse(body: bytes):
    async def stream():
        yield body

    return asyncio.run(validator()._parse(stream(), scope={}))


def test_nullable_becomes_a_type_that_admits_null():
    assert openapi_to_json_schema({"type": "string", "nullable": True}) == {"type": ["string", "null"]}
    compiled_validator(SCHEMA).validate({"items": [], "note": None})


def test_the_compiled_validator_is_built_once_per_schema():
    assert compiled_validator(SCHEMA) is compiled_validator(SCHEMA)


def test_an_error_names_the_path_to_the_offending_value():
    with pytest.raises(BadRequestProblem) as error:
        validator()._validate({"items": [{"v": 1}, {"v": -1}]})
    assert error.value.detail == "items[1].v: must be at least 0 (got -1)"


def test_an_unknown_property_is_refused():
    with pytest.raises(BadRequestProblem, match="unknown field\\(s\\) .surprise."):
        validator()._validate({"items": [], "surprise": 1})


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_numbers_are_not_json(literal):
    with pytest.raises(BadRequestProblem, match="not valid JSON"):
        parse(b'{"items": [{"v": ' + literal + b"}]}")


def test_error_locations_read_like_the_request_body():
    assert error_location(["electricityReadings", 3, "time"]) == "electricityReadings[3].time"
    assert error_location([]) == ""
