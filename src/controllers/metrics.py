"""GET /metrics: the Prometheus text page (metrics.py), behind a scrape token when METRICS_TOKEN is set."""

from __future__ import annotations

import hmac

from connexion.problem import problem
from flask import Response, request

import metrics
import tasks  # noqa: F401 - importing it registers the task queue's depth (joi_task_queue_depth)
from controllers.access import may_scrape_as_admin
from controllers.context import settings


def scrape():
    config = settings()
    if not config.metrics_enabled:
        return problem(status=404, title="Not Found", detail="Metrics are switched off (METRICS_ENABLED=0).")
    if config.require_auth and config.metrics_token is None:
        if not may_scrape_as_admin(request.headers.get("Authorization")):
            return problem(
                status=401,
                title="Unauthorized",
                detail="REQUIRE_AUTH is on and METRICS_TOKEN is not set: the metrics are for an admin's token "
                "(Authorization: Token <token>); set METRICS_TOKEN for a scraper.",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    elif config.metrics_token is not None and not _bearer_matches(config.metrics_token):
        return problem(
            status=401,
            title="Unauthorized",
            detail="The metrics need the scrape token: Authorization: Bearer <METRICS_TOKEN>.",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    return Response(metrics.render(), status=200, mimetype=None, content_type=metrics.CONTENT_TYPE)


def _bearer_matches(token: str) -> bool:
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())
