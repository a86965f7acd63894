"""The operator commands of closed mode (REQUIRE_AUTH=1), run through `src/cli.py`.

cli.py create-device-key [--name LABEL] [--meter ID ...] [--oms-device MAN:IDENTNR ...] [--any-oms-device]
                                            make a device key, print it once on stdout
cli.py list-device-keys                     every key: id, prefix, name, what it may write
cli.py revoke-device-key ID                 the key stops working at once
cli.py link-meter --user NAME METER...      NAME may read these JOI meters (--list: what NAME may read)
cli.py unlink-meter --user NAME METER...    NAME may no longer read them
"""

from __future__ import annotations

import argparse
import sys
import time

from domain.access import (
    check_bindings,
    issue_device_key,
    oms_device_text,
    valid_key_name,
    valid_meter_ids,
    valid_oms_devices,
)
from domain.accounts import username_key
from domain.errors import DomainError
from repository import access as access_repo
from repository import db
from repository import users as users_repo

ACCESS_COMMANDS = ("create-device-key", "list-device-keys", "revoke-device-key", "link-meter", "unlink-meter")


def add_access_commands(commands: argparse._SubParsersAction) -> None:
    create = commands.add_parser(
        "create-device-key",
        help="make a device key bound to JOI meters and/or OMS devices; print it once (closed mode)",
        description="A meter or gateway sends the key as X-API-Key when REQUIRE_AUTH=1. Only its hash is "
        "stored: the key is printed once, on stdout. Bind at least one --meter, --oms-device or --any-oms-device.",
    )
    create.add_argument("--name", default="", help="a label for people, e.g. where the device is")
    create.add_argument("--meter", action="append", default=[], metavar="ID", help="a JOI meter id it may write")
    create.add_argument(
        "--oms-device",
        action="append",
        default=[],
        metavar="MAN:IDENTNR",
        help="an OMS device it may write, e.g. EFE:83251076 or 5317:83251076",
    )
    create.add_argument(
        "--any-oms-device", action="store_true", help="it may write for every OMS device (a gateway's key)"
    )
    commands.add_parser("list-device-keys", help="list the device keys and what each may write (never a key)")
    revoke = commands.add_parser("revoke-device-key", help="revoke a device key (it stops working at once)")
    revoke.add_argument("key_id", metavar="ID", type=int, help="the key's id, as list-device-keys shows it")
    link = commands.add_parser(
        "link-meter", help="let a user read JOI meters in closed mode (--list shows what they may read)"
    )
    link.add_argument("--user", required=True, metavar="NAME", help="the user's username")
    link.add_argument("meters", nargs="*", metavar="METER", help="JOI meter ids")
    link.add_argument("--list", action="store_true", help="print the meters linked to the user")
    unlink = commands.add_parser("unlink-meter", help="stop a user reading JOI meters in closed mode")
    unlink.add_argument("--user", required=True, metavar="NAME", help="the user's username")
    unlink.add_argument("meters", nargs="+", metavar="METER", help="JOI meter ids")


def run_access_command(args: argparse.Namespace) -> int:
    db.connect()
    try:
        return _COMMANDS[args.command](args)
    except DomainError as error:
        print(error.detail, file=sys.stderr)
        return 1
    finally:
        db.close()


def _create_device_key(args: argparse.Namespace) -> int:
    name = valid_key_name(args.name)
    meter_ids = valid_meter_ids(args.meter, "--meter")
    oms_devices = valid_oms_devices(args.oms_device, "--oms-device")
    check_bindings(meter_ids, oms_devices, args.any_oms_device)
    issued = issue_device_key()
    key_id = access_repo.create_device_key(issued, name, meter_ids, oms_devices, args.any_oms_device, int(time.time()))
    print(f"device key {key_id} made ({_bound_to(access_repo.device_key(key_id))})", file=sys.stderr)
    print(issued.key)
    return 0


def _list_device_keys(args: argparse.Namespace) -> int:
    print(f"{'id':>5}  {'prefix':<12}  {'name':<24}  may write")
    for summary in access_repo.device_keys():
        grant = summary.grant
        print(f"{grant.key_id:>5}  joi_{summary.key_lookup:<8}  {grant.name:<24}  {_bound_to(summary)}")
    return 0


def _bound_to(summary: access_repo.DeviceKeySummary) -> str:
    grant = summary.grant
    parts = [f"meter {meter_id}" for meter_id in sorted(grant.meter_ids)]
    parts += [f"OMS device {oms_device_text(device)}" for device in sorted(grant.oms_devices)]
    if grant.any_oms_device:
        parts.append("any OMS device")
    return ", ".join(parts)


def _revoke_device_key(args: argparse.Namespace) -> int:
    if not access_repo.revoke_device_key(args.key_id):
        print(f"there is no device key {args.key_id}", file=sys.stderr)
        return 1
    print(f"device key {args.key_id} is revoked", file=sys.stderr)
    return 0


def _user_id(username: str) -> int | None:
    found = users_repo.user_by_username(username_key(username))
    if found is None:
        print(f"there is no user {username!r}", file=sys.stderr)
        return None
    return found.id


def _link_meter(args: argparse.Namespace) -> int:
    user_id = _user_id(args.user)
    if user_id is None:
        return 1
    if not args.meters and not args.list:
        print("name at least one METER (or --list)", file=sys.stderr)
        return 2
    added = access_repo.link_meters(user_id, valid_meter_ids(args.meters, "METER"))
    if args.meters:
        print(f"{added} meters newly linked to {args.user}", file=sys.stderr)
    if args.list:
        for meter_id in access_repo.meter_ids_linked_to(user_id):
            print(meter_id)
    return 0


def _unlink_meter(args: argparse.Namespace) -> int:
    user_id = _user_id(args.user)
    if user_id is None:
        return 1
    removed = access_repo.unlink_meters(user_id, valid_meter_ids(args.meters, "METER"))
    print(f"{removed} meters unlinked from {args.user}", file=sys.stderr)
    return 0


_COMMANDS = {
    "create-device-key": _create_device_key,
    "list-device-keys": _list_device_keys,
    "revoke-device-key": _revoke_device_key,
    "link-meter": _link_meter,
    "unlink-meter": _unlink_meter,
}
