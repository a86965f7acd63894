"""Operator commands: `python src/cli.py COMMAND [options]`. `--help` lists every command with what it does
(read from the parsers below, so a command added anywhere is listed); `COMMAND --help` shows its options."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_access import ACCESS_COMMANDS, add_access_commands, run_access_command  # noqa: E402
from cli_backup import BACKUP_COMMANDS, add_backup_commands, run_backup_command  # noqa: E402
from cli_dsmr import DSMR_COMMANDS, add_dsmr_commands, run_dsmr_command  # noqa: E402
from cli_import import IMPORT_COMMANDS, add_import_commands, run_import_command  # noqa: E402
from cli_statistics import add_statistics_commands, verify_statistics  # noqa: E402
from config import Config  # noqa: E402
from database_setup import prepare_database  # noqa: E402
from demo import load_demo_when_wanted  # noqa: E402
from domain.accounts import new_user, username_key  # noqa: E402
from domain.errors import InvalidInput  # noqa: E402
from repository import db  # noqa: E402
from repository import readings as readings_repo  # noqa: E402
from repository import users as users_repo  # noqa: E402


def _admin_password() -> str | None:
    """ADMIN_PASSWORD when set, otherwise asked twice on the terminal (never echoed, never an argument:
    arguments show up in `ps` and shell history)."""
    password = os.environ.get("ADMIN_PASSWORD")
    if password:
        return password
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password (again): ") != first:
        print("The passwords differ; nothing was created.", file=sys.stderr)
        return None
    return first


def create_admin(username: str, email: str, *, promote: bool) -> int:
    """Make an admin account (admins are made here only, never through the API); --promote makes an
    existing user an admin instead."""
    db.connect()
    try:
        existing = users_repo.user_by_username(username_key(username))
        if existing is not None:
            if not promote:
                print(
                    f"User {username!r} exists; add --promote (make admin PROMOTE=1) to make them an admin.",
                    file=sys.stderr,
                )
                return 1
            users_repo.make_admin(existing.id)
            print(f"{existing.username} (id {existing.id}) is an admin now")
            return 0
        if not email:
            print("--email is needed to create an admin (ADMIN_EMAIL=... with make admin).", file=sys.stderr)
            return 1
        password = _admin_password()
        if password is None:
            return 1
        try:
            admin = users_repo.create_user(new_user(username, email, password, is_admin=True), int(time.time()))
        except InvalidInput as error:
            print(f"{error.field or 'input'}: {error.detail}", file=sys.stderr)
            return 1
    finally:
        db.close()
    print(f"admin {admin.username} (id {admin.id}) created; log in with POST /auth/login")
    return 0


class _OneLinePerCommand(argparse.RawDescriptionHelpFormatter):
    """Each command's help on one line, whatever the terminal's width (`make help` greps them)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30, width=10_000)
        self._action_max_length = 26  # room for the longest command names before their help


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cli.py", description=__doc__, formatter_class=_OneLinePerCommand)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")
    commands.add_parser("migrate", help="create or migrate the database (DATABASE_URL)")
    commands.add_parser(
        "prepare", help="migrate; load the demo week only into the default database (DEMO=1 anywhere, DEMO=0 never)"
    )
    commands.add_parser("demo", help="migrate, then load the demo readings once (idempotent; DEMO=0 skips it)")
    commands.add_parser("rebuild-rollups", help="recompute every meter's hourly energy")
    add_dsmr_commands(commands)
    add_access_commands(commands)
    admin_command = commands.add_parser(
        "create-admin", help="create an admin account (password from ADMIN_PASSWORD, or asked twice)"
    )
    admin_command.add_argument("--username", required=True)
    admin_command.add_argument("--email", default="", help="needed to create an admin, not to promote one")
    admin_command.add_argument("--promote", action="store_true", help="make an existing user an admin instead")
    add_statistics_commands(commands)
    add_import_commands(commands)
    add_backup_commands(commands)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    config = Config.from_env()
    if args.command in BACKUP_COMMANDS:  # before migrating: a restore needs the database empty
        return run_backup_command(config, args)
    prepare_database(config)
    if args.command in ("prepare", "demo"):
        print(load_demo_when_wanted(config, asked=args.command == "demo"))
    elif args.command == "verify-statistics":
        return verify_statistics(config, args)
    elif args.command in IMPORT_COMMANDS:
        return run_import_command(config, args)
    elif args.command in DSMR_COMMANDS:
        return run_dsmr_command(config, args)
    elif args.command == "create-admin":
        return create_admin(args.username, args.email, promote=args.promote)
    elif args.command in ACCESS_COMMANDS:
        return run_access_command(args)
    elif args.command == "rebuild-rollups":
        print(f"rebuilt {readings_repo.rebuild_rollups(config.max_reading_gap_seconds)} meters")
    else:
        print("database is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
