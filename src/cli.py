"""Operator commands: `python src/cli.py migrate|demo|rebuild-rollups|dsmr-key|delete|verify-statistics`."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from app import prepare_database  # noqa: E402
from cli_dsmr import DSMR_COMMANDS, add_dsmr_commands, run_dsmr_command  # noqa: E402
from cli_statistics import add_statistics_commands, verify_statistics  # noqa: E402
from config import Config  # noqa: E402
from demo import load_demo_readings  # noqa: E402
from repository import readings as readings_repo  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="create or migrate the database (DATABASE_URL)")
    commands.add_parser("demo", help="migrate, then load the demo readings once (idempotent)")
    commands.add_parser("rebuild-rollups", help="recompute every meter's hourly energy")
    add_dsmr_commands(commands)
    add_statistics_commands(commands)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    config = Config.from_env()
    prepare_database(config)
    if args.command == "demo":
        loaded = load_demo_readings(int(time.time()), config.max_reading_gap_seconds)
        print("demo readings loaded" if loaded else "demo readings already present")
    elif args.command == "verify-statistics":
        return verify_statistics(config, args)
    elif args.command in DSMR_COMMANDS:
        return run_dsmr_command(config, args)
    elif args.command == "rebuild-rollups":
        print(f"rebuilt {readings_repo.rebuild_rollups(config.max_reading_gap_seconds)} meters")
    else:
        print("database is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
