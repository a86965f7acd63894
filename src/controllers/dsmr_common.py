"""What the DSMR-reader v1 and v2 controllers share: access (switch and key, which names the installation),
answers in DSMR-reader's shapes, and the JSON of readings, statistics and prices exactly as the seed prints them."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, tzinfo
from decimal import Decimal
from functools import lru_cache
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import orjson
from flask import Response, request

from config import Config
from controllers.context import settings
from controllers.responses import json_response
from domain.dsmr import (
    DEFAULT_INSTALLATION,
    DsmrReading,
    FieldErrors,
    Installation,
    PageRequest,
    hash_api_key,
    key_matches,
    page_link_params,
    presented_key,
)
from domain.errors import DomainError
from domain.statistics import DayStatistic, EnergyPrices, HourStatistic, decimal_str, local_iso, utc_iso_z
from repository import db
from repository import dsmr as dsmr_repo

log = logging.getLogger("joi.dsmr")
API_DISABLED = "API is disabled"
INVALID_KEY = "Invalid auth key"


@lru_cache(maxsize=8)
def _zone(name: str) -> tzinfo:
    return ZoneInfo(name)


def time_zone() -> tzinfo:
    return zone_of(settings())


def zone_of(config: Config) -> tzinfo:
    return _zone(config.dsmr_time_zone)


def _authenticated() -> Installation | tuple[int, str]:
    return authenticate(settings(), request.headers.get("X-AUTHKEY"), request.headers.get("Authorization"))


def authenticate(config: Config, x_authkey: str | None, authorization: str | None) -> Installation | tuple[int, str]:
    """The installation whose key the caller sent, or (status, text) of the refusal (0: the API is off).

    DSMR_API_KEY is the key of the installation named "default"; while it is set, a key stored for that
    installation is not accepted (the configured key wins). Flask-free: the v1 fast path calls it too."""
    if not config.dsmr_api_enabled:
        return 0, API_DISABLED
    key = presented_key(x_authkey, authorization)
    if key:
        if key_matches(key, config.dsmr_api_key):
            return dsmr_repo.default_installation()
        installation = dsmr_repo.installation_by_key_hash(hash_api_key(key))
        if installation is not None and not (config.dsmr_api_key and installation.name == DEFAULT_INSTALLATION):
            return installation
    return 403, INVALID_KEY


def warn_when_no_key_can_pass(config) -> None:
    """Called at start: an enabled API that no key can reach answers 403 to everything, so say so."""
    if not config.dsmr_api_enabled or config.dsmr_api_key:
        return
    db.connect()
    try:
        keyed = dsmr_repo.any_key_stored()
    finally:
        db.close()
    if not keyed:
        log.warning(
            "DSMR_API_ENABLED is set but there is no DSMR API key: every DSMR request will be answered 403. "
            "Make one with `make dsmr-key NAME=<installation>` (or set DSMR_API_KEY)."
        )


def accept_any_key(api_key: str, required_scopes=None) -> dict:
    """Connexion's security layer calls this for the DSMR key schemes (declared so that Swagger UI's
    Authorize button sends the key). It lets every request through to the operation, which checks the key
    itself: DSMR-reader answers a missing or wrong key with its own 403 (plain text on v1, {"detail"} on v2)
    and a disabled API with 405/403, where Connexion would answer 401 problem+json."""
    return {}


def plain_text(text: str, status: int, headers: dict | None = None) -> Response:
    return Response(text, status=status, headers=headers, mimetype="text/plain")


def v2_operation(handler: Callable) -> Callable:
    """v2 answers as Django REST framework: 403 {"detail"} for a disabled API or a bad key, 400 with
    {"field": ["message"]} for invalid fields, {"detail"} for other refusals."""

    @functools.wraps(handler)
    def answer(*args, **kwargs):
        access = _authenticated()
        if not isinstance(access, Installation):
            return json_response({"detail": access[1]}, 403)
        try:
            return handler(*args, installation=access, **kwargs)
        except FieldErrors as error:
            return json_response(error.errors, 400)
        except DomainError as error:
            return json_response({"detail": error.detail}, error.status)

    return answer


# --- pages ---------------------------------------------------------------------------------------------------


def _absolute(params: Mapping[str, str] | None) -> str | None:
    if params is None:
        return None
    query = urlencode(sorted(params.items()))
    return f"{request.base_url}?{query}" if query else request.base_url


def page_json(
    count: int, items: Sequence, page: PageRequest, key: Callable[[object], Sequence[int]], to_json: Callable
) -> Response:
    """DSMR-reader's {count, next, previous, results} with absolute links."""
    params = {name: request.args.get(name, "") for name in request.args}
    following, preceding = page_link_params(
        params, page, count, key(items[0]) if items else None, key(items[-1]) if items else None
    )
    return json_response(
        {
            "count": count,
            "next": _absolute(following),
            "previous": _absolute(preceding),
            "results": [to_json(item) for item in items],
        }
    )


# --- JSON ----------------------------------------------------------------------------------------------------


def _three(value: Decimal | None) -> str | None:
    return None if value is None else decimal_str(value, 3)


def _two(value: Decimal) -> str:
    return decimal_str(value, 2)


def reading_json(row_id: int, reading: DsmrReading, tz: tzinfo, *, local: bool, meter: str) -> dict:
    """The seed's reading; `local` writes instants with the local offset (POST answer), else in UTC with Z."""

    def instant(moment: datetime | None) -> str | None:
        if moment is None:
            return None
        return local_iso(moment, tz) if local else utc_iso_z(moment)

    return {
        "id": row_id,
        "timestamp": instant(reading.timestamp),
        "electricity_delivered_1": _three(reading.electricity_delivered_1),
        "electricity_returned_1": _three(reading.electricity_returned_1),
        "electricity_delivered_2": _three(reading.electricity_delivered_2),
        "electricity_returned_2": _three(reading.electricity_returned_2),
        "electricity_currently_delivered": _three(reading.electricity_currently_delivered),
        "electricity_currently_returned": _three(reading.electricity_currently_returned),
        "phase_currently_delivered_l1": _three(reading.phase_currently_delivered_l1),
        "phase_currently_delivered_l2": _three(reading.phase_currently_delivered_l2),
        "phase_currently_delivered_l3": _three(reading.phase_currently_delivered_l3),
        "extra_device_timestamp": instant(reading.extra_device_timestamp),
        "extra_device_delivered": _three(reading.extra_device_delivered),
        "phase_currently_returned_l1": _three(reading.phase_currently_returned_l1),
        "phase_currently_returned_l2": _three(reading.phase_currently_returned_l2),
        "phase_currently_returned_l3": _three(reading.phase_currently_returned_l3),
        "meter": meter,
    }


def hour_json(row_id: int, statistic: HourStatistic, meter: str | None) -> dict:
    return {
        "id": row_id,
        "hour_start": utc_iso_z(statistic.hour_start),
        "electricity1": _three(statistic.electricity1),
        "electricity2": _three(statistic.electricity2),
        "electricity1_returned": _three(statistic.electricity1_returned),
        "electricity2_returned": _three(statistic.electricity2_returned),
        "gas": _three(statistic.gas),
        "meter": meter,
    }


def day_json(row_id: int, statistic: DayStatistic, meter: str | None) -> dict:
    return {
        "id": row_id,
        "day": statistic.day.isoformat(),
        "total_cost": _two(statistic.total_cost),
        "electricity1": _three(statistic.electricity1),
        "electricity2": _three(statistic.electricity2),
        "electricity1_returned": _three(statistic.electricity1_returned),
        "electricity2_returned": _three(statistic.electricity2_returned),
        "electricity1_cost": _two(statistic.electricity1_cost),
        "electricity2_cost": _two(statistic.electricity2_cost),
        "gas": _three(statistic.gas),
        "gas_cost": _two(statistic.gas_cost),
        "fixed_cost": _two(statistic.fixed_cost),
        "lowest_temperature": None,
        "highest_temperature": None,
        "average_temperature": None,
        "meter": meter,
    }


def _number(value: Decimal) -> orjson.Fragment:
    """A JSON number written from the Decimal's own digits (never through a float): 0.716, 0.9, 0."""
    text = f"{value.normalize():f}"
    return orjson.Fragment("0" if text in ("-0", "0") else text)


def today_json(statistic: DayStatistic, meter: str | None) -> dict:
    """The seed's numbers (not strings); gas counts 0 before the first gas reading, as in DSMR-reader."""
    return {
        "day": statistic.day.isoformat(),
        "electricity1": _number(statistic.electricity1),
        "electricity1_cost": _number(statistic.electricity1_cost),
        "electricity1_returned": _number(statistic.electricity1_returned),
        "electricity2": _number(statistic.electricity2),
        "electricity2_cost": _number(statistic.electricity2_cost),
        "electricity2_returned": _number(statistic.electricity2_returned),
        "gas": _number(statistic.gas or Decimal(0)),
        "gas_cost": _number(statistic.gas_cost),
        "fixed_cost": _number(statistic.fixed_cost),
        "total_cost": _number(statistic.total_cost),
        "meter": meter,
    }


def prices_json(row_id: int, contract: EnergyPrices) -> dict:
    return {
        "id": row_id,
        "start": contract.start.isoformat(),
        "end": contract.end.isoformat() if contract.end else None,
        "description": contract.description,
        "electricity_delivered_1_price": decimal_str(contract.electricity_delivered_1_price, 6),
        "electricity_delivered_2_price": decimal_str(contract.electricity_delivered_2_price, 6),
        "electricity_returned_1_price": decimal_str(contract.electricity_returned_1_price, 6),
        "electricity_returned_2_price": decimal_str(contract.electricity_returned_2_price, 6),
        "gas_price": decimal_str(contract.gas_price, 6),
        "fixed_daily_cost": decimal_str(contract.fixed_daily_cost, 6),
    }


def meter_statistics_json(statistics: dsmr_repo.MeterStatistics, tz: tzinfo, meter: str) -> dict:
    return {
        "id": statistics.id,
        "timestamp": local_iso(statistics.timestamp, tz) if statistics.timestamp else None,
        "dsmr_version": statistics.dsmr_version,
        "electricity_tariff": statistics.electricity_tariff,
        **statistics.counters,
        "rejected_telegrams": statistics.rejected_telegrams,
        "latest_telegram": statistics.latest_telegram,
        "meter": meter,
        "accepted_telegrams": statistics.accepted_telegrams,
        "duplicate_telegrams": statistics.duplicate_telegrams,
        "resets": statistics.resets,
        "latest_reset": local_iso(statistics.latest_reset, tz) if statistics.latest_reset else None,
        "gaps": _gaps_json(statistics.gaps, tz),
        "gas_gaps": _gaps_json(statistics.gas_gaps, tz),
    }


def _gaps_json(summary: dsmr_repo.GapSummary, tz: tzinfo) -> dict:
    names = list(summary.totals)
    return {
        "count": summary.count,
        "totals": {name: _three(value) for name, value in summary.totals.items()},
        "latest": [
            {
                "start": local_iso(gap.start, tz),
                "end": local_iso(gap.end, tz),
                **{name: _three(getattr(gap, name)) for name in names},
            }
            for gap in summary.latest
        ],
    }
