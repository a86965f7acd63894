"""Path aliases, resolved before Connexion routes a request (an ASGI middleware):

- the mailing service's paths answer with or without their trailing slash (its clients call
  `/api/v1/clients/` and `/api/v1/clients/4`; Starlette would otherwise answer the other spelling with a
  307 redirect, which curl and many HTTP clients do not follow for a POST);
- Swagger UI also answers at `/docs/` (where the mailing service's users look for it), as at `/ui/`.
"""

from __future__ import annotations

import re

_COLLECTION = re.compile(r"/api/v1/(clients|mailings)")
_ITEM_WITH_SLASH = re.compile(r"(/api/v1/(?:clients|mailings)/[^/]+(?:/messages)?)/")
_DOCS = re.compile(r"/docs(/.*)?")


def canonical_path(path: str) -> str:
    if _COLLECTION.fullmatch(path):
        return path + "/"
    if match := _ITEM_WITH_SLASH.fullmatch(path):
        return match[1]
    if match := _DOCS.fullmatch(path):
        return "/ui" + (match[1] or "/")
    return path


class PathAliases:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            path = scope["path"]
            canonical = canonical_path(path)
            if canonical != path:
                scope = {**scope, "path": canonical, "raw_path": canonical.encode()}
        await self.app(scope, receive, send)
