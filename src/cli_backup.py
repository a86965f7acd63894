"""Backups of the database at DATABASE_URL, made while the service runs (run through `src/cli.py`).

    cli.py backup PATH    a consistent copy: SQLite's online backup API, or pg_dump --format=custom
    cli.py restore PATH   that copy into an EMPTY database (a database with any table is refused)

A backup is one snapshot: every write committed before it began is in it, none half. SQLite copies the
database in one step under a read transaction (WAL lets the service go on writing meanwhile), checks the
copy (PRAGMA quick_check) and renames it into place, so PATH is never a partial file; PostgreSQL's pg_dump
reads in one repeatable-read snapshot. A restore runs in one transaction (pg_restore --single-transaction,
SQLite writes the file through the same backup API): it is all there or not at all. The huey queue file
(tasks waiting to run) is not part of the backup; the schedule and the data are.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse, urlunparse

from playhouse import db_url

from config import Config

BACKUP_COMMANDS = ("backup", "restore")
SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"


class BackupRefused(Exception):
    pass


def add_backup_commands(commands: argparse._SubParsersAction) -> None:
    backup = commands.add_parser(
        "backup", help="write a consistent copy of the database to PATH while the service runs"
    )
    backup.add_argument("path", metavar="PATH", help="the file to write (replaced when it exists)")
    restore = commands.add_parser("restore", help="bring a backup back into an empty database (DATABASE_URL)")
    restore.add_argument("path", metavar="PATH", help="a file made by `cli.py backup`")


def run_backup_command(config: Config, args: argparse.Namespace) -> int:
    try:
        if args.command == "backup":
            print(backup(config.database_url, Path(args.path)))
        else:
            print(restore(config.database_url, Path(args.path)))
        return 0
    except BackupRefused as error:
        print(str(error), file=sys.stderr)
        return 1


def backup(database_url: str, path: Path) -> str:
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        if _is_sqlite(database_url):
            _sqlite_backup(_sqlite_path(database_url), partial)
        else:
            _pg_dump(_libpq_url(database_url), partial)
        _fsync(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return f"backup written to {path} ({path.stat().st_size:,} bytes)"


def restore(database_url: str, path: Path) -> str:
    if not path.is_file():
        raise BackupRefused(f"{path} is not a file")
    with path.open("rb") as file:
        magic = file.read(len(SQLITE_MAGIC))
    if _is_sqlite(database_url):
        if not magic.startswith(SQLITE_MAGIC):
            raise BackupRefused(f"{path} is not a SQLite backup, and DATABASE_URL is a SQLite database")
        target = _sqlite_path(database_url)
        _refuse_unless_sqlite_empty(target)
        _sqlite_restore(path, target)
        where = target
    else:
        if not magic.startswith(PG_DUMP_MAGIC):
            raise BackupRefused(f"{path} is not a PostgreSQL backup (pg_dump custom format), and DATABASE_URL is one")
        url = _libpq_url(database_url)
        _refuse_unless_postgres_empty(url)
        _pg_restore(url, path)
        where = f"the PostgreSQL database {urlparse(url).path.lstrip('/')!r}"
    return f"restored {path} into {where}; starting the service (or `cli.py migrate`) applies newer migrations"


# ------------------------------------------------------------------------------------------- SQLite


def _is_sqlite(database_url: str) -> bool:
    return urlparse(database_url).scheme.startswith("sqlite")


def _sqlite_path(database_url: str) -> str:
    path = db_url.parse(database_url).get("database") or ""
    if not path or path == ":memory:":
        raise BackupRefused("DATABASE_URL names no SQLite file")
    return path


def _sqlite_backup(source_path: str, destination: Path) -> None:
    if not Path(source_path).is_file():
        raise BackupRefused(f"there is no database at {source_path}")
    source = sqlite3.connect(source_path, timeout=30)
    copy = sqlite3.connect(destination)
    try:
        source.backup(copy)  # all pages in one step: one read transaction, one snapshot
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file (the service turns WAL on again)
        verdict = copy.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            raise BackupRefused(f"the copy failed its check ({verdict}); nothing was written to the backup path")
    finally:
        copy.close()
        source.close()


def _refuse_unless_sqlite_empty(target: str) -> None:
    if not Path(target).exists():
        return
    connection = sqlite3.connect(target, timeout=30)
    try:
        tables = connection.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
    finally:
        connection.close()
    if tables:
        raise BackupRefused(
            f"{target} is not empty ({tables} tables): a backup is restored only into an empty database. "
            "Point DATABASE_URL at a new file, or move this one aside first; nothing was changed."
        )


def _sqlite_restore(backup_path: Path, target: str) -> None:
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{backup_path}?mode=ro", uri=True)
    destination = sqlite3.connect(target, timeout=30)
    try:
        source.backup(destination)
    finally:
        destination.close()
        source.close()


def _fsync(path: Path) -> None:
    with path.open("rb") as file:
        os.fsync(file.fileno())


# --------------------------------------------------------------------------------------- PostgreSQL


def _libpq_url(database_url: str) -> str:
    """The URL as libpq reads it: playhouse's postgresql+pool:// or postgresext:// become postgresql://."""
    parsed = urlparse(database_url)
    return urlunparse(parsed._replace(scheme="postgresql"))


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupRefused(f"{name} is not installed (Debian: apt-get install postgresql-client)")
    return found


def _pg_dump(url: str, destination: Path) -> None:
    _run([_tool("pg_dump"), "--format=custom", "--file", str(destination), "--dbname", url], "pg_dump")


def _pg_restore(url: str, backup_path: Path) -> None:
    command = [_tool("pg_restore"), "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges"]
    _run([*command, "--dbname", url, str(backup_path)], "pg_restore")


def _run(command: list[str], name: str) -> None:
    finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode != 0:
        raise BackupRefused(f"{name} failed (nothing was changed): {finished.stderr.strip()[:2000]}")


def _refuse_unless_postgres_empty(url: str) -> None:
    import psycopg2

    try:
        connection = psycopg2.connect(url, connect_timeout=10)
    except psycopg2.OperationalError as error:
        raise BackupRefused(f"the database cannot be reached: {str(error).strip()}") from None
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') "
                "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'"
            )
            relations = cursor.fetchone()[0]
    finally:
        connection.close()
    if relations:
        raise BackupRefused(
            f"the database is not empty ({relations} tables, views or sequences): a backup is restored only into "
            "an empty database. Create one (createdb NAME) and point DATABASE_URL at it; nothing was changed."
        )
