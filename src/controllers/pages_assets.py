"""The chart library, served from the installed `chartkick` PyPI package, whose package data holds Chart.js with
its date adapter (chartkick/django/static/chartkick/Chart.bundle.js, MIT): no CDN at run time and no copy in the
repository. The URL names the package version, so browsers keep it for a year and a new version is a new URL.
The file (~0.95 MB) is kept in memory, also gzipped (~0.2 MB): one body, not a file streamed in 8 KiB chunks
through the ASGI bridge, which took half a second of a first visit on a loaded machine."""

from __future__ import annotations

import gzip
from functools import cache
from importlib import metadata, resources
from pathlib import Path

from flask import Blueprint, Response, abort, request, url_for

blueprint = Blueprint("pages_assets", __name__)

ONE_YEAR = 365 * 24 * 3600
PACKAGE = "chartkick"


@cache
def chart_package_version() -> str:
    return metadata.version(PACKAGE)


@cache
def chart_library_path() -> Path:
    return Path(str(resources.files(PACKAGE) / "django" / "static" / "chartkick" / "Chart.bundle.js"))


def chart_library_url() -> str:
    return url_for("pages_assets.chart_library", version=chart_package_version())


@cache
def _library_bodies() -> tuple[bytes, bytes]:
    """The library as it is and gzipped."""
    plain = chart_library_path().read_bytes()
    return plain, gzip.compress(plain, compresslevel=6, mtime=0)


@blueprint.get("/assets/chartkick-<version>/Chart.bundle.js")
def chart_library(version: str):
    if version != chart_package_version():
        abort(404, description=f"This server has {PACKAGE} {chart_package_version()}.")
    plain, packed = _library_bodies()
    gzipped = request.accept_encodings["gzip"] > 0
    response = Response(packed if gzipped else plain, mimetype="text/javascript")
    if gzipped:
        response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"
    response.headers["Cache-Control"] = f"public, max-age={ONE_YEAR}, immutable"
    response.set_etag(f"{PACKAGE}-{version}" + ("-gzip" if gzipped else ""))
    return response.make_conditional(request)


def _registered(state) -> None:
    # A Jinja global, not a context processor: macros.html (imported without context) calls it.
    state.app.jinja_env.globals.update(chart_library_url=chart_library_url)
    _library_bodies()  # gzipped once per process at start-up, not during a first visit


blueprint.record_once(_registered)
