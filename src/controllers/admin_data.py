"""Data administration for admins: DSMR installations and their keys, and removing test data.

The same domain and repository functions as `make dsmr-key` and `cli.py delete …` (src/cli_dsmr.py) do the
work; non-admins are refused (403) by the security function before anything here runs.
"""

from __future__ import annotations

from datetime import UTC
from zoneinfo import ZoneInfo

from controllers.context import settings
from controllers.responses import json_response
from domain.dsmr import deletion_window, new_installation_key
from domain.errors import NotFound
from repository import dsmr as dsmr_repo
from repository import readings as readings_repo
from repository.dsmr import InstallationSummary


def _installation_json(summary: InstallationSummary) -> dict:
    installation = summary.installation
    return {
        "name": installation.name,
        "meter": installation.meter,
        "equipment_id": installation.equipment_id,
        "joi_meter_id": installation.joi_meter_id,
        "has_key": summary.has_key,
        "key_created_at": summary.key_created_at,
        "readings": summary.readings,
        "latest_reading": summary.latest_reading,
    }


def list_installations():
    return json_response([_installation_json(summary) for summary in dsmr_repo.installations()])


def make_key(body: dict, rotate: bool = False):
    key, key_hash = new_installation_key(body["name"], environment_key_set=bool(settings().dsmr_api_key))
    installation, created = dsmr_repo.set_key(body["name"], key_hash, replace=rotate)
    return json_response({"name": installation.name, "key": key, "created": created}, 201)


def revoke_key(name: str):
    dsmr_repo.revoke_key(name)
    return "", 204


def delete_installation(name: str):
    dsmr_repo.delete_installation(name)
    return "", 204


def delete_dsmr_readings(name: str, from_: str | None = None, to: str | None = None, all_: bool = False):
    config = settings()
    tz = ZoneInfo(config.dsmr_time_zone)
    window = deletion_window(from_, to, all_, tz)
    deleted = dsmr_repo.delete_readings(name, window, tz, config.dsmr_max_gap_seconds)
    return json_response({"deleted": deleted})


def delete_contract(name: str, contract_id: int):
    dsmr_repo.delete_energy_prices(name, contract_id, ZoneInfo(settings().dsmr_time_zone))
    return "", 204


def delete_joi_readings(meter_id: str, from_: int | None = None, to: int | None = None, all_: bool = False):
    window = deletion_window(_text(from_), _text(to), all_, UTC)
    _must_have_samples(meter_id)
    start = None if window.start is None else int(window.start.timestamp())
    end = None if window.end is None else int(window.end.timestamp())
    deleted = readings_repo.delete_samples(meter_id, start, end, settings().max_reading_gap_seconds)
    return json_response({"deleted": deleted})


def delete_joi_meter(meter_id: str):
    _must_have_samples(meter_id)
    readings_repo.delete_meter(meter_id)
    return "", 204


def _must_have_samples(meter_id: str) -> None:
    if not readings_repo.has_samples(meter_id):
        raise NotFound(f"JOI meter {meter_id} has no readings")


def _text(epoch: int | None) -> str | None:
    return None if epoch is None else str(epoch)
