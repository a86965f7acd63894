"""Errors become HTTP here, and only here, as application/problem+json (RFC 9457)."""

from __future__ import annotations

import logging

import orjson
from connexion import FlaskApp
from connexion.exceptions import BadRequestProblem
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from connexion.problem import problem

from domain.errors import DomainError
from repository.db import UNAVAILABLE_ERRORS

log = logging.getLogger(__name__)


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
    if path.startswith("/api/v1/datalogger/"):
        return ConnexionResponse(status_code=400, mimetype="text/plain", body=str(error.detail))
    if path.startswith("/api/v2/"):
        return ConnexionResponse(
            status_code=400, mimetype="application/json", body=orjson.dumps({"detail": error.detail})
        )
    return error.to_problem()


def register(app: FlaskApp) -> None:
    app.add_error_handler(DomainError, domain_error)
    app.add_error_handler(BadRequestProblem, bad_request)
    for error_type in UNAVAILABLE_ERRORS:
        app.add_error_handler(error_type, database_unavailable)
