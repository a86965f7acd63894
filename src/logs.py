"""Logging: request ids on every line, readable text or one JSON object per line, and no secrets.

The request id lives in a context variable, set by the HTTP middleware (observability.py) for the time
of a request. Threads that serve the request inherit it: a2wsgi (Flask's views) and anyio (the store
fast path) run their work in a copy of the caller's context. Work handed to the task queue carries it
explicitly: enqueue with `task(..., request_id=current_request_id())` and decorate the task's function
with `@runs_with_request_id` (see its docstring).

Ids a line is about are passed with `extra=`: meter, device, host, mailing, message_id, client. Both
formats show them; JSON lines also carry every other extra field.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

_request_id: ContextVar[str | None] = ContextVar("joi_request_id", default=None)

# What a caller may send as X-Request-ID; anything else is replaced by a new id.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")
SUBJECT_IDS = ("meter", "device", "host", "mailing", "message_id", "client")
HANDLER_NAME = "joi"

# Attributes every LogRecord has; the others came from `extra=`.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def current_request_id() -> str | None:
    return _request_id.get()


def new_request_id() -> str:
    return os.urandom(16).hex()


def accepted_request_id(sent: str | None) -> str:
    """The caller's X-Request-ID when it is 1-128 safe characters (letters, digits, ._:/+=@-), else a new one."""
    if sent is not None and _SAFE_REQUEST_ID.fullmatch(sent):
        return sent
    return new_request_id()


def bind_request_id(request_id: str | None):
    """Set the request id of this context; returns the token that `unbind_request_id` takes."""
    return _request_id.set(request_id)


def unbind_request_id(token) -> None:
    _request_id.reset(token)


@contextlib.contextmanager
def request_id_scope(request_id: str | None) -> Iterator[str]:
    """Every line logged inside carries `request_id` (a new one when None)."""
    request_id = request_id or new_request_id()
    token = _request_id.set(request_id)
    try:
        yield request_id
    finally:
        _request_id.reset(token)


def runs_with_request_id(function: Callable) -> Callable:
    """For task-queue functions: the task runs under the request id it was enqueued with.

        @huey.task()
        @logs.runs_with_request_id
        def dispatch_mailing(mailing_id): ...

        dispatch_mailing(mailing_id, request_id=logs.current_request_id())   # in the request

    The keyword is taken off before the function runs; a task enqueued outside a request (a periodic
    one) gets a fresh id, so that its lines still belong together.
    """

    @functools.wraps(function)
    def run(*args: Any, request_id: str | None = None, **kwargs: Any) -> Any:
        with request_id_scope(request_id):
            return function(*args, **kwargs)

    return run


# --- redaction ----------------------------------------------------------------------------------------------

_SECRET_WORDS = r"(?:authorization|x-authkey|x-api-key|api[_-]?key|authkey|token|secret|password|passwd|pwd|key)"
_REDACTIONS = (
    # Authorization: Bearer abc / Token abc / Basic abc - the whole header value
    (re.compile(r"""(?i)\b(authorization\s*[:=]\s*)(?:[A-Za-z]+\s+)?[^\s"',;]+"""), r"\1[REDACTED]"),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"), "Bearer [REDACTED]"),
    # "password": "x"  'token': 'x'  (JSON, Python reprs)
    (
        re.compile(rf"""(?i)(["']?[\w-]*{_SECRET_WORDS}[\w-]*["']?\s*[:=]\s*)(["'])(?:\\.|(?!\2).)*\2"""),
        r"\1\2[REDACTED]\2",
    ),
    # password=x, X-AUTHKEY: x, ?token=x  (query strings, headers, key=value)
    (re.compile(rf"""(?i)(\b[\w-]*{_SECRET_WORDS}[\w-]*\s*[:=]\s*)(?!["'\[])[^\s&,;"'}}\]]+"""), r"\1[REDACTED]"),
    # user:password@host in URLs
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@"), r"\1[REDACTED]@"),
)
_SECRET_FIELD = re.compile(rf"(?i){_SECRET_WORDS}")


# Every secret the patterns find contains one of these: a line without any (most lines, e.g. every access
# line) skips the patterns, which cost ~0.2 ms per line.
_HINTS = ("auth", "key", "token", "secret", "passw", "pwd", "bearer", "://")


def redact(text: str) -> str:
    """The text with every token, key, password and credential replaced by [REDACTED]."""
    lowered = text.lower()
    if not any(hint in lowered for hint in _HINTS):
        return text
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def _safe_field(name: str, value: Any) -> Any:
    if _SECRET_FIELD.search(name) and name not in SUBJECT_IDS:
        return "[REDACTED]"
    return redact(value) if isinstance(value, str) else value


# --- formats ------------------------------------------------------------------------------------------------


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {name: value for name, value in vars(record).items() if name not in _RECORD_FIELDS}


_second: list = [None, ""]  # the last whole second formatted, and its text: most lines share one


def _timestamp(record: logging.LogRecord) -> str:
    whole = int(record.created)
    if _second[0] != whole:
        _second[:] = [whole, datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")]
    return f"{_second[1]}.{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    """`2025-01-01T12:00:00.000Z INFO joi.access [<request id>] message meter=... device=...`"""

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None) or current_request_id() or "-"
        line = f"{_timestamp(record)} {record.levelname} {record.name} [{request_id}] {record.getMessage()}"
        ids = " ".join(
            f"{name}={_safe_field(name, getattr(record, name))}"
            for name in SUBJECT_IDS
            if getattr(record, name, None) is not None
        )
        if ids:
            line = f"{line} {ids}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        elif record.exc_text:
            line = f"{line}\n{record.exc_text}"
        return redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, request_id, message, the extras, and exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", None) or current_request_id(),
            "message": redact(record.getMessage()),
        }
        for name, value in _extras(record).items():
            if name != "request_id":
                entry[name] = _safe_field(name, value)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a line is logged (test runners swap it), not at creation."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure_logging(log_format: str = "text", level: str = "INFO") -> logging.Handler:
    """Send every logger's lines to stderr in the chosen format. Idempotent: a second call replaces the
    format and level, never adds a second handler. uvicorn's own loggers are routed here too, so that a
    JSON log holds only JSON lines (its access log stays off: ours replaces it)."""
    root = logging.getLogger()
    handler = next((existing for existing in root.handlers if existing.get_name() == HANDLER_NAME), None)
    if handler is None:
        handler = _StderrHandler()
        handler.set_name(HANDLER_NAME)
        root.addHandler(handler)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    return handler
