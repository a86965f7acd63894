"""The served OpenAPI document in either access mode (README "Closed mode").

The spec files declare, on each JOI, OMS and mailing operation that REQUIRE_AUTH=1 closes, the security that
closed mode asks for, marked `x-require-auth: true`. In the default open mode those operations take no
credentials (the seeds document none), so their requirements are dropped here before Connexion reads the
document: the security middleware asks nothing, and the served document says so.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

from connexion.spec import Specification

MARKER = "x-require-auth"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def specification(path: Path, require_auth: bool) -> dict:
    """The document with every reference resolved; in open mode without the marked operations' security.

    Resolving the files takes as long as Connexion's own checks of the result, so it is done once per
    process and mode (the test suite builds an app per test); each app gets its own copy."""
    return copy.deepcopy(_resolved(str(path), require_auth))


@functools.lru_cache(maxsize=4)
def _resolved(path: str, require_auth: bool) -> dict:
    document = Specification.load(path).spec
    if not require_auth:
        for path_item in document.get("paths", {}).values():
            for method in METHODS:
                operation = path_item.get(method)
                if operation and operation.get(MARKER):
                    operation.pop("security", None)
    return document
