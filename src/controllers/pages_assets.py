"""The chart library, served from the installed `plotly` PyPI package (its package data holds plotly.min.js):
no CDN at run time and no copy in the repository. The URL names the package version, so browsers keep it for
a year and a new version is a new URL."""

from __future__ import annotations

from functools import cache
from importlib import metadata, resources
from pathlib import Path

from flask import Blueprint, abort, send_file, url_for

blueprint = Blueprint("pages_assets", __name__)

ONE_YEAR = 365 * 24 * 3600


@cache
def plotly_version() -> str:
    return metadata.version("plotly")


@cache
def plotly_js_path() -> Path:
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


def chart_library_url() -> str:
    return url_for("pages_assets.chart_library", version=plotly_version())


@blueprint.get("/assets/plotly-<version>.min.js")
def chart_library(version: str):
    if version != plotly_version():
        abort(404, description=f"This server has plotly {plotly_version()}.")
    response = send_file(plotly_js_path(), mimetype="text/javascript", max_age=ONE_YEAR, conditional=True)
    response.headers["Cache-Control"] = f"public, max-age={ONE_YEAR}, immutable"
    return response


# A Jinja global, not a context processor: macros.html (imported without context) calls it.
blueprint.record_once(lambda state: state.app.jinja_env.globals.update(chart_library_url=chart_library_url))
