"""Errors become HTTP here, and only here, as application/problem+json (RFC 9457)."""

from __future__ import annotations

import logging

import orjson
from connexion import FlaskApp
from connexion.exceptions import BadRequestProblem, UnsupportedMediaTypeProblem
from connexion.exceptions import Unauthorized as ConnexionUnauthorized
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from connexion.problem import problem

from controllers.access import DEVICE_CHALLENGE, challenge
from domain.errors import DomainError
from repository.db import UNAVAILABLE_ERRORS, unmasked

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
    headers = error.headers
    if error.status == 401 and "WWW-Authenticate" not in (headers or {}):
        headers = {**(headers or {}), "WWW-Authenticate": challenge(request.url.path)}
    return problem(status=error.status, title=error.title, detail=error.detail, ext=extra, headers=headers)


def missing_credentials(request: ConnexionRequest, error: ConnexionUnauthorized) -> ConnexionResponse:
    """Connexion's 401 for a request that sent none of the credentials the operation takes: a 401 names the
    scheme to use (WWW-Authenticate), and the detail says what to send."""
    path = request.url.path
    wanted = (
        "send the device key as X-API-Key (or a token as Authorization: Token <token>)"
        if challenge(path) == DEVICE_CHALLENGE
        else "send your token as Authorization: Token <token> (from POST /auth/login)"
    )
    return problem(
        status=401,
        title="Unauthorized",
        detail=bounded(f"{error.detail}: {wanted}"),
        headers={"WWW-Authenticate": challenge(path)},
    )


# SQLite's SQLITE_FULL, and PostgreSQL's disk_full (SQLSTATE 53100) as psycopg2 raises it inside peewee's error.
SQLITE_FULL_MESSAGE = "database or disk is full"
POSTGRES_DISK_FULL = "53100"


def storage_full(error: BaseException | None) -> bool:
    error = unmasked(error) if error is not None else None
    while error is not None:
        original = getattr(error, "orig", None) or error  # peewee keeps the driver's error there
        if SQLITE_FULL_MESSAGE in str(original) or getattr(original, "pgcode", None) == POSTGRES_DISK_FULL:
            return True
        error = error.__cause__ or error.__context__
    return False


def database_unavailable(request: ConnexionRequest, error: Exception) -> ConnexionResponse:
    if storage_full(error):  # 503, as every operation declares, with the reason an operator must act on
        log.error("database storage is full: %s", unmasked(error))
        return problem(
            status=503,
            title="Service Unavailable",
            detail="The database's storage is full; nothing was changed. Retry once space is freed.",
            headers={"Retry-After": "60"},
        )
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
    app.add_error_handler(ConnexionUnauthorized, missing_credentials)
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
