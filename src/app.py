"""Builds the service: `create_app(config)` returns a connexion.FlaskApp (an ASGI app).

Serve it with uvicorn (`make run`), or `python src/app.py` for a single process on port 5000.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import warnings
from pathlib import Path

from starlette.exceptions import StarletteDeprecationWarning

# Connexion imports starlette.testclient at import time (for FlaskApp.test_client), and Starlette warns
# there that its test client wants httpx2 instead of httpx. The service never runs that client, so a
# normal start must not print it; the tests use it with httpx, which works.
warnings.filterwarnings("ignore", message=".*starlette.testclient.*httpx2", category=StarletteDeprecationWarning)

import connexion  # noqa: E402
import flask  # noqa: E402
import orjson  # noqa: E402
from connexion.frameworks.flask import FlaskJSONProvider  # noqa: E402
from connexion.middleware import MiddlewarePosition  # noqa: E402
from connexion.options import SwaggerUIOptions  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import closed_mode  # noqa: E402
import errors  # noqa: E402
import limits  # noqa: E402
import mqtt_publisher  # noqa: E402
import observability  # noqa: E402
from config import Config  # noqa: E402
from controllers import pages  # noqa: E402
from controllers.dsmr_common import warn_when_no_key_can_pass  # noqa: E402
from database_setup import prepare_database  # noqa: E402
from fastpath import DsmrTelegramFastPath, FrontDoor, MeterReadsFastPath, ReadingsStoreFastPath  # noqa: E402
from jsonify import jsonifier  # noqa: E402
from paths import PathAliases  # noqa: E402
from repository import db  # noqa: E402
from validation import PARSED_BODY_KEY, ControlCharacterPathGuard, validator_map  # noqa: E402

SPEC_DIR = Path(__file__).resolve().parent.parent / "openapi"
log = logging.getLogger("joi")


class _Request(flask.Request):
    """The JSON body the validator parsed (left in the ASGI scope, which a2wsgi passes on as
    environ["asgi.scope"]) is the body the view gets: a 1,000-reading body was read from the ASGI
    channel and parsed twice, the second time costing about a tenth of the request's GIL time."""

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True):
        scope = self.environ.get("asgi.scope")
        if scope is not None and PARSED_BODY_KEY in scope:
            return scope[PARSED_BODY_KEY]
        return super().get_json(force=force, silent=silent, cache=cache)


class _OrjsonBodyProvider(FlaskJSONProvider):
    """Connexion hands the body to the view via Flask's request.get_json(), a second parse after the
    validator's: orjson makes it ~2x cheaper (it refuses NaN and 64-bit overflow, like the validator).
    Everything else is Connexion's provider, which create_app replaces."""

    def loads(self, s, **kwargs):
        return orjson.loads(s)


class _DropContentTypeNotice(logging.Filter):
    """Connexion warns on every request to an operation that accepts several body types (the DSMR
    form-or-JSON endpoints), although choosing by Content-Type is exactly what it should do."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "accepts multiple content types" not in str(record.msg)


logging.getLogger("connexion.operations.openapi3").addFilter(_DropContentTypeNotice())


def create_app(config: Config | None = None) -> connexion.FlaskApp:
    config = config or Config.from_env()
    observability.configure_logging(config)
    if config.auto_migrate:
        prepare_database(config)
    else:
        db.open_database(config.database_url, sqlite_synchronous=config.sqlite_synchronous)
    app = connexion.FlaskApp(__name__, specification_dir=SPEC_DIR, jsonifier=jsonifier())
    specification = closed_mode.specification(SPEC_DIR / "openapi.yaml", config.require_auth)
    app.add_api(
        specification,  # Connexion works on copies of it
        pythonic_params=True,
        # Unknown query parameters answer 400 naming them (form fields stay lenient: validation.py).
        strict_validation=True,
        validate_responses=config.validate_responses,
        validator_map=validator_map(),
        swagger_ui_options=SwaggerUIOptions(swagger_ui_path="/ui"),
    )
    app.app.config["SETTINGS"] = config
    app.app.json = _OrjsonBodyProvider(app.app)
    app.app.request_class = _Request
    app.app.before_request(db.connect)
    app.app.teardown_request(lambda _error: db.close())
    # The hot writes and the meter reads skip Flask and a2wsgi (fastpath.py), after request validation.
    app.add_middleware(ControlCharacterPathGuard, position=MiddlewarePosition.BEFORE_SWAGGER)
    app.add_middleware(ReadingsStoreFastPath, position=MiddlewarePosition.BEFORE_CONTEXT, config=config)
    app.add_middleware(DsmrTelegramFastPath, position=MiddlewarePosition.BEFORE_CONTEXT, config=config)
    app.add_middleware(MeterReadsFastPath, position=MiddlewarePosition.BEFORE_CONTEXT, config=config)
    app.add_middleware(PathAliases, position=MiddlewarePosition.BEFORE_SWAGGER)
    if not config.validate_responses:  # its answers would pass no response validation (tests/api/test_front_door.py)
        app.add_middleware(
            FrontDoor, position=MiddlewarePosition.BEFORE_SWAGGER, config=config, specification=specification
        )
    errors.register(app)
    pages.install(app.app, config)  # the web pages: plain Flask routes beside the API (controllers/pages.py)
    warn_when_no_key_can_pass(config)
    observability.install(app, config)  # request ids, metrics and the access log (the outermost middleware)
    limits.install(app, config)  # body size and time, requests at once (README "Limits"), inside the observation
    mqtt_publisher.configure(config)
    return app


SWITCH_INTERVAL_SECONDS = 0.0005


def create_served_app(config: Config | None = None) -> connexion.FlaskApp:
    """create_app for a server process (serve.py, `python src/app.py`): the objects made at start-up are
    then frozen out of the cyclic garbage collector's view. A full collection walked all ~100,000 of them
    and took ~45 ms; it ran in the middle of requests, and when a DSMR or JOI store was holding the write
    lock then, the other processes' writers waited those 45 ms (p99 of the P1 fleet, bench section 10,
    233-844 ms with two web workers writing; 61-90 ms after).

    The writer holding that lock also needs its own process's GIL back after every SQLite call, and at
    Python's default 5 ms switch interval it waited behind the event loop and the threads parsing the
    next requests, while the other process waited for the lock (the fleet's p99 463 ms in one run): at
    0.5 ms, 10 and 27 ms."""
    application = create_app(config)
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    return application


if __name__ == "__main__":
    # The seed's run command: like `make run` in one process (the demo week as `make run` decides).
    import uvicorn

    from demo import load_demo_when_wanted

    settings = Config.from_env()
    application = create_served_app(settings)
    log.info(load_demo_when_wanted(settings))
    uvicorn.run(
        application,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "5000")),
        http=limits.HeaderTimeoutHttpToolsProtocol,  # as serve.py runs it: trickled headers are cut off
    )
