"""The chart library, served from the installed `chartkick` PyPI package, whose package data holds Chart.js with
its date adapter (chartkick/django/static/chartkick/Chart.bundle.js, MIT): no CDN at run time and no copy in the
repository. The URL names the package version, so browsers keep it for a year and a new version is a new URL."""

from __future__ import annotations

from functools import cache
from importlib import metadata, resources
from pathlib import Path

from flask import Blueprint, abort, send_file, url_for

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


@blueprint.get("/assets/chartkick-<version>/Chart.bundle.js")
def chart_library(version: str):
    if version != chart_package_version():
        abort(404, description=f"This server has {PACKAGE} {chart_package_version()}.")
    response = send_file(chart_library_path(), mimetype="text/javascript", max_age=ONE_YEAR, conditional=True)
    response.headers["Cache-Control"] = f"public, max-age={ONE_YEAR}, immutable"
    return response


# A Jinja global, not a context processor: macros.html (imported without context) calls it.
blueprint.record_once(lambda state: state.app.jinja_env.globals.update(chart_library_url=chart_library_url))
