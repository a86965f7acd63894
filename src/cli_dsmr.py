"""The operator commands of the DSMR-reader area and of removing test data (run through `src/cli.py`).

    cli.py dsmr-key [--installation NAME] [--rotate]   make NAME's key (and NAME), print it once on stdout
    cli.py dsmr-key --list                            installations, whether each has a key, their readings
    cli.py dsmr-key --revoke NAME                     NAME's key stops working; its data stays
    cli.py delete dsmr-readings NAME --from T --to T  an installation's readings in a window (inclusive)
    cli.py delete dsmr-installation NAME              an installation with its key and all its data
    cli.py delete dsmr-contract NAME ID               one of an installation's supplier contracts
    cli.py delete joi-readings METER --from T --to T  a JOI meter's kW readings in a window (inclusive)
    cli.py delete joi-meter METER                     every reading of a JOI meter

Statistics, costs and the hourly kWh the price plans read are recomputed in the same transaction.
T is epoch seconds or ISO 8601; an ISO time without an offset is DSMR_TIME_ZONE's local time for DSMR data
and UTC for JOI meters.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC
from zoneinfo import ZoneInfo

from config import Config
from domain.dsmr import DEFAULT_INSTALLATION, TimeWindow, deletion_window, new_installation_key
from domain.errors import DomainError
from repository import db
from repository import dsmr as dsmr_repo
from repository import readings as readings_repo

DSMR_COMMANDS = ("dsmr-key", "delete")


def add_dsmr_commands(commands: argparse._SubParsersAction) -> None:
    key = commands.add_parser(
        "dsmr-key",
        help="make an installation's DSMR API key and print it once (--list, --revoke NAME)",
        description="Each key belongs to one installation (one electricity meter with its gas meter). Only the "
        "key's hash is stored: the key is printed once, on stdout.",
    )
    key.add_argument(
        "--installation",
        default=DEFAULT_INSTALLATION,
        metavar="NAME",
        help=f"the installation (made when new; default {DEFAULT_INSTALLATION!r}, which DSMR_API_KEY also names)",
    )
    key.add_argument("--rotate", action="store_true", help="replace the installation's key (the old one stops working)")
    key.add_argument("--list", action="store_true", help="list the installations")
    key.add_argument("--revoke", metavar="NAME", help="revoke NAME's key; its data stays")

    delete = commands.add_parser("delete", help="remove test data (statistics and rollups are recomputed)")
    what = delete.add_subparsers(dest="what", required=True)
    readings = what.add_parser("dsmr-readings", help="an installation's readings in a time window")
    readings.add_argument("name", metavar="NAME")
    _window_arguments(readings)
    what.add_parser("dsmr-installation", help="an installation, its key and all its data").add_argument(
        "name", metavar="NAME"
    )
    contract = what.add_parser("dsmr-contract", help="one of an installation's supplier contracts")
    contract.add_argument("name", metavar="NAME")
    contract.add_argument("contract_id", metavar="ID", type=int, help="the contract's id (as the API lists it)")
    joi = what.add_parser("joi-readings", help="a JOI meter's readings in a time window")
    joi.add_argument("meter", metavar="METER")
    _window_arguments(joi)
    what.add_parser("joi-meter", help="every reading of a JOI meter").add_argument("meter", metavar="METER")


def _window_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="start", metavar="T", help="first instant (inclusive)")
    parser.add_argument("--to", dest="end", metavar="T", help="last instant (inclusive)")
    parser.add_argument("--all", action="store_true", help="every reading (no window)")


def run_dsmr_command(config: Config, args: argparse.Namespace) -> int:
    db.connect()
    try:
        if args.command == "dsmr-key":
            return _dsmr_key(config, args)
        return _delete(config, args)
    except (DomainError, ValueError) as error:
        print(getattr(error, "detail", None) or str(error), file=sys.stderr)
        return 1
    finally:
        db.close()


def _dsmr_key(config: Config, args: argparse.Namespace) -> int:
    if args.list:
        _print_installations()
        return 0
    if args.revoke:
        dsmr_repo.revoke_key(args.revoke)
        print(f"the key of installation {args.revoke} is revoked; its data stays", file=sys.stderr)
        return 0
    key, key_hash = new_installation_key(args.installation, environment_key_set=bool(config.dsmr_api_key))
    installation, created = dsmr_repo.set_key(args.installation, key_hash, replace=args.rotate)
    print(f"{'new installation' if created else 'installation'} {installation.name}: key made", file=sys.stderr)
    print(key)
    return 0


def _print_installations() -> None:
    print(f"{'installation':<24} {'key':<22} {'meter':<20} {'readings':>9}  latest reading")
    for summary in dsmr_repo.installations():
        key = f"since {summary.key_created_at:%Y-%m-%d %H:%M}" if summary.key_created_at else "none"
        latest = f"{summary.latest_reading:%Y-%m-%d %H:%M:%S}Z" if summary.latest_reading else "-"
        print(
            f"{summary.installation.name:<24} {key:<22} {summary.installation.joi_meter_id:<20} "
            f"{summary.readings:>9}  {latest}"
        )


def _delete(config: Config, args: argparse.Namespace) -> int:
    tz = ZoneInfo(config.dsmr_time_zone)
    if args.what == "dsmr-readings":
        window = _window(args, tz)
        deleted = dsmr_repo.delete_readings(args.name, window, tz, config.dsmr_max_gap_seconds)
        print(f"deleted {deleted} readings of installation {args.name}; its statistics are recomputed")
    elif args.what == "dsmr-installation":
        deleted = dsmr_repo.delete_installation(args.name)
        print(f"deleted installation {args.name} (its key, contracts and {deleted} readings)")
    elif args.what == "dsmr-contract":
        contract = dsmr_repo.delete_energy_prices(args.name, args.contract_id, tz)
        print(f"deleted contract {args.contract_id} {contract.description!r}; its days are repriced")
    elif args.what == "joi-readings":
        window = _window(args, UTC)
        start = None if window.start is None else int(window.start.timestamp())
        end = None if window.end is None else int(window.end.timestamp())
        deleted = readings_repo.delete_samples(args.meter, start, end, config.max_reading_gap_seconds)
        print(f"deleted {deleted} readings of meter {args.meter}; its hourly rollups are recomputed")
    else:
        deleted = readings_repo.delete_meter(args.meter)
        print(f"deleted meter {args.meter} ({deleted} readings and its hourly rollups)")
    return 0


def _window(args: argparse.Namespace, tz) -> TimeWindow:
    return deletion_window(args.start, args.end, args.all, tz)
