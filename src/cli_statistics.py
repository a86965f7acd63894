"""`python src/cli.py verify-statistics [--fix]`: stored statistics against a full recomputation.

Compares every DSMR installation's hour and day statistics, gaps and hourly kWh for the price plans, and every
JOI meter's hourly rollups and hour pages, with what the readings give; prints each difference and exits 1
when any differs. `--fix` rebuilds what differs (pages that differ are dropped, for the queue worker to make
again) and then exits 0.
"""

from __future__ import annotations

import argparse
from zoneinfo import ZoneInfo

from config import Config
from repository import db
from repository import dsmr as dsmr_repo
from repository import readings as readings_repo

SHOWN_PER_METER = 20


def add_statistics_commands(commands) -> None:
    verify = commands.add_parser(
        "verify-statistics", help="compare stored statistics and rollups with a recomputation from the readings"
    )
    verify.add_argument("--fix", action="store_true", help="rebuild the statistics of meters that differ")


def verify_statistics(config: Config, args: argparse.Namespace) -> int:
    tz = ZoneInfo(config.dsmr_time_zone)
    db.connect()
    try:
        differing = 0
        for installation in dsmr_repo.statistics_meters():
            found = dsmr_repo.statistics_differences(installation, tz, config.dsmr_max_gap_seconds)
            if found:
                differing += 1
                _report(f"DSMR installation {installation.name} (meter {installation.joi_meter_id})", found)
                if args.fix:
                    dsmr_repo.rebuild_statistics(installation, tz, config.dsmr_max_gap_seconds)
        joi_differing = [
            meter_id
            for meter_id in readings_repo.sampled_meters()
            if _reported(meter_id, readings_repo.rollup_differences(meter_id, config.max_reading_gap_seconds))
        ]
        if joi_differing and args.fix:
            readings_repo.rebuild_rollups(config.max_reading_gap_seconds)
        paged_differing = [
            meter_id
            for meter_id in readings_repo.sampled_meters()
            if _reported(f"{meter_id} (hour pages)", readings_repo.page_differences(meter_id))
        ]
        if args.fix:
            for meter_id in paged_differing:
                readings_repo.drop_pages(meter_id)
        joi_differing = sorted(set(joi_differing) | set(paged_differing))
        total = differing + len(joi_differing)
        if not total:
            print("statistics agree with a recomputation from the readings")
            return 0
        print(f"{total} meters differ" + ("; rebuilt" if args.fix else "; run with --fix to rebuild them"))
        return 0 if args.fix else 1
    finally:
        db.close()


def _reported(meter_id: str, differences: list[str]) -> bool:
    if differences:
        _report(f"JOI meter {meter_id}", differences)
    return bool(differences)


def _report(what: str, differences: list[str]) -> None:
    print(f"{what}: {len(differences)} differences")
    for line in differences[:SHOWN_PER_METER]:
        print(f"  {line}")
    if len(differences) > SHOWN_PER_METER:
        print(f"  … and {len(differences) - SHOWN_PER_METER} more")
