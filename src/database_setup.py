"""Opening and migrating the database at start (the web app, the CLI and the workers call it).

Apart from app.py so that the CLI starts without importing Connexion and Flask: a second of start-up is a
fifth of a million-reading import.
"""

from __future__ import annotations

import logging

from config import Config
from repository import db, migrations
from repository import dsmr as dsmr_repo
from repository import readings as readings_repo

log = logging.getLogger("joi")


def prepare_database(config: Config) -> None:
    """Open the database, apply pending migrations, and rebuild rollups if the gap rule changed."""
    db.open_database(config.database_url, sqlite_synchronous=config.sqlite_synchronous)
    try:
        applied = migrations.migrate()
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))
        if not readings_repo.rollups_match(config.max_reading_gap_seconds):
            rebuilt = readings_repo.rebuild_rollups(config.max_reading_gap_seconds)
            log.info("rebuilt hourly rollups of %d meters", rebuilt)
        # DSMR statistics are local hours and days by a gap rule: another zone or rule rebuilds them all.
        if not dsmr_repo.statistics_match(config.dsmr_time_zone, config.dsmr_max_gap_seconds):
            rebuilt = dsmr_repo.rebuild_all_statistics(config.dsmr_time_zone, config.dsmr_max_gap_seconds)
            log.info("rebuilt the DSMR statistics of %d installations", rebuilt)
    finally:
        db.close()
