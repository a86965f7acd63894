"""Operator commands: `python src/cli.py migrate|prepare|demo|rebuild-rollups|dsmr-key`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from app import prepare_database  # noqa: E402
from config import Config  # noqa: E402
from demo import load_demo_when_wanted  # noqa: E402
from domain.dsmr import generate_api_key, hash_api_key  # noqa: E402
from repository import db  # noqa: E402
from repository import dsmr as dsmr_repo  # noqa: E402
from repository import readings as readings_repo  # noqa: E402


def dsmr_key(config: Config, *, rotate: bool) -> int:
    """Generate the DSMR-reader API key, store only its hash, and print the key this once."""
    if config.dsmr_api_key:
        print("DSMR_API_KEY is set, so that key is used; unset it to use a generated one.", file=sys.stderr)
        return 1
    db.connect()
    try:
        if dsmr_repo.api_key_hash() and not rotate:
            print(
                "A DSMR API key exists; only its hash is stored, so it cannot be shown again. "
                "Replace it with --rotate (make dsmr-key ROTATE=1); the old key then stops working.",
                file=sys.stderr,
            )
            return 1
        key = generate_api_key()
        dsmr_repo.replace_api_key_hash(hash_api_key(key))
    finally:
        db.close()
    print(key)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="create or migrate the database (DATABASE_URL)")
    commands.add_parser(
        "prepare", help="migrate; load the demo week only into the default database (DEMO=1 anywhere, DEMO=0 never)"
    )
    commands.add_parser("demo", help="migrate, then load the demo readings once (idempotent; DEMO=0 skips it)")
    commands.add_parser("rebuild-rollups", help="recompute every meter's hourly energy")
    key_command = commands.add_parser("dsmr-key", help="generate the DSMR API key, store its hash, print it once")
    key_command.add_argument("--rotate", action="store_true", help="replace the stored key (the old one stops working)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    config = Config.from_env()
    prepare_database(config)
    if args.command in ("prepare", "demo"):
        print(load_demo_when_wanted(config, asked=args.command == "demo"))
    elif args.command == "dsmr-key":
        return dsmr_key(config, rotate=args.rotate)
    elif args.command == "rebuild-rollups":
        print(f"rebuilt {readings_repo.rebuild_rollups(config.max_reading_gap_seconds)} meters")
    else:
        print("database is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
