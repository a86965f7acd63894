"""A compiled JSON body validator for Connexion's `validator_map`.

Connexion's default builds a pure-Python jsonschema validator per request (~15 ms for a 1,000-reading
body here). This one compiles each operation's schema once with jsonschema-rs and parses with orjson,
which also refuses NaN and Infinity (the standard library would let them through). The schemas still
come from the OpenAPI document: the spec stays the single source of truth.
"""

from __future__ import annotations

import typing as t
import unicodedata

import jsonschema_rs
import orjson
from connexion.exceptions import BadRequestProblem
from connexion.utils import is_null, is_nullable
from connexion.validators import (
    VALIDATOR_MAP,
    FormDataValidator,
    JSONRequestBodyValidator,
    MediaTypeDict,
    ParameterValidator,
)
from starlette.types import ASGIApp, Receive, Scope, Send

_compiled: dict[int, tuple[dict, jsonschema_rs.Draft4Validator]] = {}

# The validator leaves the body it parsed in the ASGI scope under this key, and the Flask side hands
# it to the view (app.py) instead of reading and parsing the body a second time.
PARSED_BODY_KEY = "joi.parsed_json_body"
# The same for form bodies (the fields as Connexion resolved them against the schema).
PARSED_FORM_KEY = "joi.parsed_form_body"


def openapi_to_json_schema(schema: t.Any) -> t.Any:
    """OpenAPI 3.0 `nullable: true` becomes a JSON Schema type list that admits null."""
    if isinstance(schema, list):
        return [openapi_to_json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: openapi_to_json_schema(value) for key, value in schema.items() if key != "nullable"}
    if schema.get("nullable") is True and "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        converted["type"] = [*types, "null"]
    return converted


def compiled_validator(schema: dict) -> jsonschema_rs.Draft4Validator:
    # Keyed by identity and holding the schema itself, so the id cannot be reused by another dict.
    entry = _compiled.get(id(schema))
    if entry is None or entry[0] is not schema:
        entry = (schema, jsonschema_rs.Draft4Validator(openapi_to_json_schema(schema)))
        _compiled[id(schema)] = entry
    return entry[1]


def error_location(path: t.Sequence[t.Any]) -> str:
    location = ""
    for part in path:
        location += f"[{part}]" if isinstance(part, int) else (f".{part}" if location else str(part))
    return location


# What an error message may quote of the input. jsonschema-rs' own messages repeat the whole instance
# (380 KB for a 10,001-reading batch, a 24-digit float for a huge number): ours say what was wrong in
# words and quote a value only when it is this short.
MAX_QUOTED = 40
MAX_NAMES = 5
_JSON_TYPES = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "a boolean",
               "array": "an array", "object": "an object", "null": "null"}  # fmt: skip


def quoted(value: t.Any) -> str | None:
    """The value as JSON (control characters escaped), or None when it is too long to repeat."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        return None
    return text if len(text) <= MAX_QUOTED else None


def _kind_of(value: t.Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _names(names: t.Iterable[t.Any], at_most: int = MAX_NAMES) -> str:
    names = [str(name) for name in names]
    listed = ", ".join(repr(name[:MAX_QUOTED]) for name in names[:at_most])
    return listed + (f" and {len(names) - at_most} more" if len(names) > at_most else "")


def _bound(upper: bool) -> str:
    return "at most" if upper else "at least"


def describe(error: jsonschema_rs.ValidationError) -> str:
    """One bounded sentence that says what is wrong with the value at the error's location."""
    kind, value = error.kind, error.instance
    name = type(kind).__name__
    shown = quoted(value)
    if name == "Type":
        wanted = " or ".join(_JSON_TYPES.get(type_name, type_name) for type_name in kind.types)
        return f"must be {wanted} (got {shown if shown is not None else _kind_of(value)})"
    if name == "Required":
        return f"{kind.property[:MAX_QUOTED]!r} is required"
    if name == "AdditionalProperties":
        return f"unknown field(s) {_names(kind.unexpected)}"
    if name in ("MaxItems", "MinItems", "MaxProperties", "MinProperties", "MaxLength", "MinLength"):
        upper = name.startswith("Max")
        if name.endswith("Length"):
            return f"{'too long' if upper else 'too short'}: {len(value)} characters, {_bound(upper)} {kind.limit}"
        what = "items" if name.endswith("Items") else "properties"
        return f"{'too many' if upper else 'too few'} {what}: {len(value)}, {_bound(upper)} {kind.limit}"
    if name in ("Minimum", "Maximum", "ExclusiveMinimum", "ExclusiveMaximum"):
        relation = {"Minimum": "at least", "Maximum": "at most",
                    "ExclusiveMinimum": "more than", "ExclusiveMaximum": "less than"}[name]  # fmt: skip
        return f"must be {relation} {kind.limit}" + (f" (got {shown})" if shown is not None else "")
    if name == "Pattern":
        return f"must match {kind.pattern}" + (f" (got {shown})" if shown is not None else "")
    if name == "Enum":
        return f"must be one of {_names(kind.options)}" + (f" (got {shown})" if shown is not None else "")
    message = error.message
    return message if len(message) <= 200 else message[:200] + "..."


class CompiledJSONBodyValidator(JSONRequestBodyValidator):
    async def _parse(self, stream: t.AsyncGenerator[bytes, None], scope) -> t.Any:
        body = b"".join([message async for message in stream])
        if not body:
            return None
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise BadRequestProblem(detail=f"Request body is not valid JSON: {error}") from None
        scope[PARSED_BODY_KEY] = parsed
        return parsed

    def _validate(self, body: t.Any) -> None:
        if not self._nullable and body is None:
            raise BadRequestProblem(detail="Request body must not be empty")
        try:
            compiled_validator(self._schema).validate(body)
        except jsonschema_rs.ValidationError as error:
            location = error_location(error.instance_path)
            raise BadRequestProblem(detail=f"{location}: {describe(error)}" if location else describe(error)) from None


def has_control_character(text: str) -> bool:
    return any(unicodedata.category(char) == "Cc" for char in text)


def unknown_names_message(where: str, unknown: t.Iterable[str], known: t.Iterable[str]) -> str:
    known = sorted(known)
    # The operation's own names are few (the spec's), so all of them are listed.
    takes = f"it takes {_names(known, at_most=30)}" if known else "it takes none"
    return f"unknown {where} parameter(s) {_names(sorted(unknown))}: {takes}"


class ConciseParameterValidator(ParameterValidator):
    """Path, query, header and cookie parameters, checked with the same compiled validators and the
    same one-line messages as bodies. Unknown query parameters are refused when Connexion's
    strict_validation is on (`?frm=` must not price the whole history). Control characters are refused
    in every path and query value: a value like `smart-meter-0\n` reached the view and failed there."""

    @staticmethod
    def validate_parameter(parameter_type, value, param, param_name=None):
        name = param_name or param.get("name")
        if is_nullable(param) and is_null(value):
            return None
        if value is None:
            return f"Missing {parameter_type} parameter '{name}'" if param.get("required") else None
        if parameter_type in ("path", "query") and isinstance(value, str) and has_control_character(value):
            return f"{parameter_type} parameter '{name}': must not contain control characters"
        try:
            compiled_validator(param.get("schema", param)).validate(value)
        except jsonschema_rs.ValidationError as error:
            location = error_location(error.instance_path)
            return f"{parameter_type} parameter '{name}{location}': {describe(error)}"
        return None

    def validate_request(self, request):
        if self.strict_validation:
            known = [param["name"] for param in self.parameters.get("query", [])]
            unknown = self.validate_query_parameter_list(request, security_params=self.security_query_params)
            if unknown:
                raise BadRequestProblem(detail=unknown_names_message("query", unknown, known))
        for location, check in (
            ("query", self.validate_query_parameter),
            ("path", self.validate_path_parameter),
            ("header", self.validate_header_parameter),
            ("cookie", self.validate_cookie_parameter),
        ):
            for param in self.parameters.get(location, []):
                error = check(param, request)
                if error:
                    raise BadRequestProblem(detail=error)


class LenientFormDataValidator(FormDataValidator):
    """Form bodies keep DSMR-reader's rule under strict_validation: a field the form does not take is
    ignored, as Django REST framework ignores it (a reading read from the API, `id` and all, can be
    posted back) and as the same operations' JSON bodies ignore it. Only query parameters are strict."""

    def _validate_params_strictly(self, data: dict) -> None:
        return None

    async def _parse(self, stream: t.AsyncGenerator[bytes, None], scope) -> dict:
        parsed = await super()._parse(stream, scope)
        scope[PARSED_FORM_KEY] = parsed
        return parsed

    def _validate(self, body: t.Any) -> None:
        # Connexion builds a pure-Python jsonschema validator per request here (about a third of a
        # telegram's validation time); the compiled one checks the same schema.
        if not isinstance(body, dict):
            raise BadRequestProblem(detail="the form could not be read")
        try:
            compiled_validator(self._schema).validate(body)
        except jsonschema_rs.ValidationError as error:
            location = error_location(error.instance_path)
            raise BadRequestProblem(detail=f"{location}: {describe(error)}" if location else describe(error)) from None


def validator_map() -> dict:
    body = dict(VALIDATOR_MAP["body"])
    body["*/*json"] = CompiledJSONBodyValidator
    body["application/x-www-form-urlencoded"] = LenientFormDataValidator
    return {**VALIDATOR_MAP, "parameter": ConciseParameterValidator, "body": MediaTypeDict(body)}


class ControlCharacterPathGuard:
    """Refuses a request whose path holds a control character, before routing. The router's path
    patterns end in `$`, which in Python also matches before a final newline: `/readings/read/m-1%0A`
    was routed as meter `m-1` with a stray newline and failed inside the view. No path here may hold
    one, so the request answers 400 (in the shape of the area it aimed at, see errors.py)."""

    def __init__(self, next_app: ASGIApp) -> None:
        self.next_app = next_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and has_control_character(scope.get("path", "")):
            raise BadRequestProblem(detail="the request path must not contain control characters")
        await self.next_app(scope, receive, send)
