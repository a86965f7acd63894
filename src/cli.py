"""Operator commands: `python src/cli.py migrate|prepare|demo|rebuild-rollups|dsmr-key|delete`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from app import prepare_database  # noqa: E402
from cli_dsmr import DSMR_COMMANDS, add_dsmr_commands, run_dsmr_command  # noqa: E402
from config import Config  # noqa: E402
from demo import load_demo_when_wanted  # noqa: E402
from repository import readings as readings_repo  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="create or migrate the database (DATABASE_URL)")
    commands.add_parser(
        "prepare", help="migrate; load the demo week only into the default database (DEMO=1 anywhere, DEMO=0 never)"
    )
    commands.add_parser("demo", help="migrate, then load the demo readings once (idempotent; DEMO=0 skips it)")
    commands.add_parser("rebuild-rollups", help="recompute every meter's hourly energy")
    add_dsmr_commands(commands)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    config = Config.from_env()
    prepare_database(config)
    if args.command in ("prepare", "demo"):
        print(load_demo_when_wanted(config, asked=args.command == "demo"))
    elif args.command in DSMR_COMMANDS:
        return run_dsmr_command(config, args)
    elif args.command == "rebuild-rollups":
        print(f"rebuilt {readings_repo.rebuild_rollups(config.max_reading_gap_seconds)} meters")
    else:
        print("database is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
