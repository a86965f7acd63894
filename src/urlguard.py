"""Paths with control characters answer 404 before routing.

Starlette matches the API's mount with a `$` that also matches before a final newline, so
`/readings/read/abc%0A` was routed to an operation with the wrong base path: security, validation and the
operation context were all skipped and the view failed with a 500. No resource name here holds a control
character, so such a path names nothing.
"""

from __future__ import annotations

import re

from connexion.exceptions import ProblemException
from starlette.types import ASGIApp, Receive, Scope, Send

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class RejectControlCharactersInPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _CONTROL.search(scope.get("path", "")):
            raise ProblemException(
                status=404, title="Not Found", detail="No such resource: a URL path never contains control characters."
            )
        await self.app(scope, receive, send)
