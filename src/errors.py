"""Errors become HTTP here, and only here, as application/problem+json (RFC 9457)."""

from __future__ import annotations

import logging

import orjson
from connexion import FlaskApp
from connexion.exceptions import BadRequestProblem, UnsupportedMediaTypeProblem
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from connexion.problem import problem

from domain.errors import DomainError
from repository.db import UNAVAILABLE_ERRORS

log = logging.getLogger(__name__)

# No refusal repeats more of the request than this (validation.py already words its messages; this
# bounds whatever else Connexion or a library puts in a detail).
MAX_DETAIL_CHARS = 500
V1_PREFIX = "/api/v1/datalogger/"


def bounded(detail: str | None) -> str:
    detail = str(detail or "")
    return detail if len(detail) <= MAX_DETAIL_CHARS else detail[: MAX_DETAIL_CHARS - 3] + "..."


def domain_error(request: ConnexionRequest, error: DomainError) -> ConnexionResponse:
    extra = {"field": error.field} if error.field else None
    return problem(status=error.status, title=error.title, detail=error.detail, ext=extra, headers=error.headers)


def database_unavailable(request: ConnexionRequest, error: Exception) -> ConnexionResponse:
    log.warning("database unavailable: %s", error)
    return problem(
        status=503,
        title="Service Unavailable",
        detail="The database cannot be reached right now; nothing was changed. Retry shortly.",
        headers={"Retry-After": "5"},
    )


def bad_request(request: ConnexionRequest, error: BadRequestProblem) -> ConnexionResponse:
    """Requests Connexion refuses before a controller runs: DSMR-reader's paths answer in DSMR-reader's
    shapes (v1 plain text, v2 {"detail"}), every other path problem+json as usual."""
    path = request.url.path
    detail = bounded(error.detail)
    if path.startswith(V1_PREFIX):
        return ConnexionResponse(status_code=400, mimetype="text/plain", body=detail)
    if path.startswith("/api/v2/"):
        return ConnexionResponse(status_code=400, mimetype="application/json", body=orjson.dumps({"detail": detail}))
    return problem(status=400, title=error.title, detail=detail)


def unsupported_media_type(request: ConnexionRequest, error: UnsupportedMediaTypeProblem) -> ConnexionResponse:
    """DSMR-reader's v1 answers plain text, its 415 too; elsewhere problem+json."""
    if request.url.path.startswith(V1_PREFIX):
        return ConnexionResponse(status_code=415, mimetype="text/plain", body=bounded(error.detail))
    return problem(status=415, title=error.title, detail=bounded(error.detail))


def register(app: FlaskApp) -> None:
    app.add_error_handler(DomainError, domain_error)
    app.add_error_handler(BadRequestProblem, bad_request)
    app.add_error_handler(UnsupportedMediaTypeProblem, unsupported_media_type)
    for error_type in UNAVAILABLE_ERRORS:
        app.add_error_handler(error_type, database_unavailable)


def refusal(path: str, status: int, title: str, detail: str) -> tuple[bytes, bytes]:
    """The content type and body of a refusal made outside Connexion (src/limits.py answers before any
    handler runs), in the same shape per area as bad_request: DSMR-reader v1 plain text, v2 {"detail"},
    problem+json elsewhere."""
    detail = bounded(detail)
    if path.startswith(V1_PREFIX):
        return b"text/plain; charset=utf-8", detail.encode()
    if path.startswith("/api/v2/"):
        return b"application/json", orjson.dumps({"detail": detail})
    problem_body = {"type": "about:blank", "title": title, "detail": detail, "status": status}
    return b"application/problem+json", orjson.dumps(problem_body)
