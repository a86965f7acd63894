"""`cli.py import-readings FILE` and `cli.py export-readings` (run through src/cli.py).

    cli.py import-readings FILE [--format auto|csv|telegrams|oms] [--all-or-nothing] [--installation NAME]
    cli.py export-readings [--meter METER]... [--from T] [--to T] [--output FILE]

Formats: JOI CSV `smartMeterId,time,reading` (time in epoch seconds or ISO 8601), a file of DSMR P1 telegrams
(stored for one DSMR installation), or OMS JSON lines (one POST /commit body a line). The format is detected
from the file's first character (`/` telegrams, `{` OMS, else CSV) unless --format names it.

An import adds what is not stored yet and leaves what is: run again (after an interruption, or twice) it adds
nothing twice. Bad rows are listed with their line number; the good rows are stored, or with --all-or-nothing
nothing is when any row is bad. Exit status 0 when every row was good, 1 otherwise.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

from config import Config
from domain.dsmr import DEFAULT_INSTALLATION, check_telegram_meter, reading_from_telegram, telegram_facts
from domain.errors import DomainError, InvalidInput
from domain.imports import (
    CSV,
    FORMATS,
    TELEGRAMS,
    BadRow,
    CsvReader,
    OmsLine,
    TelegramText,
    csv_line,
    detect_format,
    oms_message,
    parse_time,
    split_telegrams,
)
from domain.telegram import parse_telegram
from repository import db
from repository import dsmr as dsmr_repo
from repository import imports as imports_repo
from repository import oms as oms_repo

IMPORT_COMMANDS = ("import-readings", "export-readings")
SHOWN_BAD_ROWS = 20
READ_BLOCK_BYTES = 4 << 20
SAMPLES_PER_TRANSACTION = 250_000
TELEGRAMS_PER_TRANSACTION = 200
OMS_PER_TRANSACTION = 500
CSV_HEADER_LINE = "smartMeterId,time,reading\n"
OMS_SPEC = Path(__file__).resolve().parent.parent / "openapi" / "oms.yaml"


def add_import_commands(commands: argparse._SubParsersAction) -> None:
    reading = commands.add_parser(
        "import-readings",
        help="import readings from FILE: JOI CSV, P1 telegrams or OMS JSON lines (resumable, with a summary)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    reading.add_argument("file", metavar="FILE", help="the file to read ('-' reads standard input)")
    reading.add_argument(
        "--format", choices=("auto", *FORMATS), default="auto", help="the file's format (default: detected)"
    )
    reading.add_argument(
        "--all-or-nothing", action="store_true", help="store nothing when any row is bad (default: keep the good ones)"
    )
    reading.add_argument(
        "--installation",
        default=DEFAULT_INSTALLATION,
        metavar="NAME",
        help=f"the DSMR installation telegrams belong to (default {DEFAULT_INSTALLATION!r}; others: make dsmr-key)",
    )
    reading.add_argument(
        "--show-bad", type=int, default=SHOWN_BAD_ROWS, metavar="N", help=f"list at most N bad rows ({SHOWN_BAD_ROWS})"
    )
    export = commands.add_parser(
        "export-readings",
        help="write JOI kW readings as CSV smartMeterId,time,reading (import-readings reads it back)",
        description="Writes a header line, then every reading of each meter in time order (meters by id), times "
        "in epoch seconds, readings exactly as stored. T is epoch seconds or ISO 8601 (naive means UTC).",
    )
    export.add_argument("--meter", action="append", metavar="METER", help="only this meter (repeat for more)")
    export.add_argument("--from", dest="start", metavar="T", help="first time (inclusive)")
    export.add_argument("--to", dest="end", metavar="T", help="last time (inclusive)")
    export.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")


def run_import_command(config: Config, args: argparse.Namespace) -> int:
    db.connect()
    try:
        if args.command == "export-readings":
            return _export(args)
        return _import(config, args)
    except KeyboardInterrupt:
        if args.command == "import-readings":
            print("\ninterrupted: what was committed stays; run the same import again to finish it", file=sys.stderr)
        return 130
    finally:
        db.close()


# --- progress and summary ------------------------------------------------------------------------------------------


class Progress:
    """A progress line on stderr when it is a terminal (nothing otherwise), redrawn at most ten times a second."""

    def __init__(self, stream: IO[str] = sys.stderr) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.drawn = 0.0

    def show(self, phase: str, done: int, total: int | None, unit: str) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.drawn < 0.1 and done != total):
            return
        self.drawn = now
        if total:
            width = 30
            filled = min(width, width * done // total)
            bar = f"[{'#' * filled}{'.' * (width - filled)}] {100 * done // total:3d}%"
        else:
            bar = ""
        self.stream.write(f"\r{phase:<8} {bar} {done:,} {unit}\x1b[K")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


class Tally:
    def __init__(self, unit: str, shown: int) -> None:
        self.unit = unit
        self.shown = shown
        self.read = self.stored = self.present = self.differing = 0
        self.bad: list[BadRow] = []
        self.started = time.monotonic()

    def add_bad(self, rows: Iterable[BadRow]) -> None:
        for row in rows:
            if len(self.bad) < self.shown:
                print(f"line {row.line}: {row.problem}", file=sys.stderr)
            self.bad.append(row)

    def report(self, *, rolled_back: bool) -> int:
        if len(self.bad) > self.shown:
            print(f"… and {len(self.bad) - self.shown} more bad rows", file=sys.stderr)
        seconds = time.monotonic() - self.started
        stored = 0 if rolled_back else self.stored
        line = (
            f"{self.read:,} {self.unit} read: {stored:,} stored, {self.present:,} already present, "
            f"{len(self.bad):,} bad ({seconds:.1f} s"
        )
        print(line + (f", {self.read / seconds:,.0f} {self.unit}/s)" if seconds > 0 else ")"))
        if self.differing:
            print(
                f"{self.differing:,} of those already present had another reading in the file; "
                "the stored readings were kept"
            )
        if rolled_back:
            print("--all-or-nothing: a row was bad, so nothing was stored")
        return 1 if self.bad else 0


class _RollBack(Exception):
    pass


# --- import --------------------------------------------------------------------------------------------------------


def _import(config: Config, args: argparse.Namespace) -> int:
    # Millions of small objects and no cycles: the collector would rescan them again and again.
    gc.disable()
    progress = Progress()
    try:
        with _open_binary(args.file) as source:
            size = _size(source)
            head = source.peek(64)[:64] if hasattr(source, "peek") else b""
            kind = detect_format(head.decode("utf-8", "replace")) if args.format == "auto" else args.format
            if kind == CSV:
                return _import_csv(config, args, source, size, progress)
            if kind == TELEGRAMS:
                return _import_telegrams(config, args, source, size, progress)
            return _import_oms(args, source, size, progress)
    except OSError as error:
        print(f"cannot read {args.file}: {error.strerror or error}", file=sys.stderr)
        return 2
    finally:
        progress.done()


def _open_binary(path: str):
    if path == "-":
        return open(sys.stdin.fileno(), "rb", closefd=False)  # noqa: SIM115 - closed by the caller's with
    return open(path, "rb")  # noqa: SIM115


def _size(source) -> int | None:
    try:
        return Path(source.name).stat().st_size if isinstance(source.name, str) else None
    except OSError:
        return None


def _text_blocks(source, size: int | None, progress: Progress, phase: str) -> Iterator[str]:
    """The file as text in blocks of whole lines (newlines normalised to \\n)."""
    rest = b""
    done = 0
    while True:
        block = source.read(READ_BLOCK_BYTES)
        if not block:
            break
        done += len(block)
        block = rest + block
        cut = block.rfind(b"\n") + 1
        if cut == 0:
            rest = block
            continue
        rest = block[cut:]
        yield block[:cut].decode("utf-8", "replace").replace("\r\n", "\n")
        progress.show(phase, done, size, "bytes")
    if rest:
        yield (rest.decode("utf-8", "replace") + "\n").replace("\r\n", "\n")


def _import_csv(config: Config, args: argparse.Namespace, source, size: int | None, progress: Progress) -> int:
    tally = Tally("rows", args.show_bad)
    reader = CsvReader(now=int(time.time()), max_future_skew=config.max_future_skew_seconds)
    for block in _text_blocks(source, size, progress, "reading"):
        reader.feed(block.removeprefix("\ufeff") if reader.result.rows == 0 else block)
    readings = reader.finish()
    tally.read, tally.present = readings.rows, readings.repeated
    tally.add_bad(readings.bad)
    if readings.bad and args.all_or_nothing:
        return tally.report(rolled_back=True)
    total = readings.good
    done = 0

    def store_meter(meter: str, times: list[int], values: list[float]) -> None:
        nonlocal done
        for start in range(0, len(times), SAMPLES_PER_TRANSACTION):
            stop = min(start + SAMPLES_PER_TRANSACTION, len(times))
            block_times, block_values = (
                (times, values) if stop - start == len(times) else (times[start:stop], values[start:stop])
            )
            with _transaction(not args.all_or_nothing):
                result = imports_repo.import_samples(meter, block_times, block_values, config.max_reading_gap_seconds)
            tally.stored += result.stored
            tally.present += result.present
            tally.differing += result.differing
            done += stop - start
            progress.show("storing", done, total, "readings")

    with _transaction(args.all_or_nothing):
        for meter, columns in readings.by_meter.items():
            store_meter(meter, columns.times, columns.values)
    return tally.report(rolled_back=False)


class _transaction:
    """A write transaction when `wanted`; otherwise nothing (the caller's transaction, or the inner ones)."""

    def __init__(self, wanted: bool) -> None:
        self.context = db.write_transaction() if wanted else None

    def __enter__(self):
        return self.context.__enter__() if self.context is not None else None

    def __exit__(self, *exc):
        return self.context.__exit__(*exc) if self.context is not None else False


def _import_telegrams(config: Config, args: argparse.Namespace, source, size: int | None, progress: Progress) -> int:
    tally = Tally("telegrams", args.show_bad)
    tz = ZoneInfo(config.dsmr_time_zone)
    now = datetime.now(UTC)
    parsed = []
    lines = _binary_lines(source, size, progress)
    for item in split_telegrams(lines):
        tally.read += 1
        if isinstance(item, BadRow):
            tally.add_bad([item])
            continue
        try:
            parsed.append((item.line, *_reading_of(item, config, now)))
        except DomainError as error:
            tally.add_bad([BadRow(item.line, error.detail)])
    if tally.bad and args.all_or_nothing:
        return tally.report(rolled_back=True)
    installation = _installation(args.installation)
    if installation is None:
        print(
            f"there is no DSMR installation {args.installation!r}; make it with "
            f"`cli.py dsmr-key --installation {args.installation}`; nothing was stored",
            file=sys.stderr,
        )
        return 1
    try:
        with _transaction(args.all_or_nothing):
            for start in range(0, len(parsed), TELEGRAMS_PER_TRANSACTION):
                with _transaction(not args.all_or_nothing):
                    for line, reading, facts in parsed[start : start + TELEGRAMS_PER_TRANSACTION]:
                        _store_telegram(installation, line, reading, facts, tz, config, tally)
                progress.show("storing", min(start + TELEGRAMS_PER_TRANSACTION, len(parsed)), len(parsed), "telegrams")
            if tally.bad and args.all_or_nothing:
                raise _RollBack
    except _RollBack:
        return tally.report(rolled_back=True)
    return tally.report(rolled_back=False)


def _binary_lines(source, size: int | None, progress: Progress) -> Iterator[str]:
    """Lines with their own endings: a telegram's CRC covers its \\r\\n."""
    done = 0
    for raw in source:
        done += len(raw)
        if done % 65_536 < len(raw):
            progress.show("reading", done, size, "bytes")
        yield (
            raw.decode("utf-8", "replace").removeprefix("\ufeff")
            if done == len(raw)
            else raw.decode("utf-8", "replace")
        )


def _reading_of(item: TelegramText, config: Config, now: datetime):
    telegram = parse_telegram(item.text, verify_crc=config.dsmr_verify_crc)
    if telegram.timestamp is None:
        raise InvalidInput("the telegram has no time (DSMR v2.2/v3); only telegrams that carry one can be imported")
    reading = reading_from_telegram(telegram, received_at=now, max_future_skew=config.max_future_skew_seconds)
    return reading, telegram_facts(telegram, reading, item.text)


def _installation(name: str):
    if name == DEFAULT_INSTALLATION:
        return dsmr_repo.default_installation()
    return dsmr_repo.installation_named(name)


def _store_telegram(installation, line: int, reading, facts, tz, config: Config, tally: Tally) -> None:
    try:
        check_telegram_meter(installation, reading.meter)
        stored = dsmr_repo.store_reading(
            installation, reading, tz, facts, telegram_meter=reading.meter, max_gap=config.dsmr_max_gap_seconds
        )
    except DomainError as error:
        tally.add_bad([BadRow(line, error.detail)])
        return
    if stored.created:
        tally.stored += 1
    else:
        tally.present += 1


def _import_oms(args: argparse.Namespace, source, size: int | None, progress: Progress) -> int:
    tally = Tally("messages", args.show_bad)
    shape_problem = _oms_shape_checker()
    messages: list[OmsLine] = []
    number = 0
    for block in _text_blocks(source, size, progress, "reading"):
        for text in block.split("\n")[:-1]:
            number += 1
            item = oms_message(number, text, shape_problem)
            if item is None:
                continue
            tally.read += 1
            if isinstance(item, BadRow):
                tally.add_bad([item])
            else:
                messages.append(item)
    if tally.bad and args.all_or_nothing:
        return tally.report(rolled_back=True)
    with _transaction(args.all_or_nothing):
        for start in range(0, len(messages), OMS_PER_TRANSACTION):
            chunk = [item.message for item in messages[start : start + OMS_PER_TRANSACTION]]
            new = oms_repo.store_messages(chunk)
            tally.stored += new
            tally.present += len(chunk) - new
            progress.show("storing", start + len(chunk), len(messages), "messages")
    return tally.report(rolled_back=False)


def _oms_shape_checker():
    """POST /commit's body schema from openapi/oms.yaml, checked as the API checks it (the spec is the rule)."""
    import jsonschema_rs
    import yaml

    from validation import describe, error_location, openapi_to_json_schema

    components = yaml.safe_load(OMS_SPEC.read_text())["components"]["schemas"]
    validator = jsonschema_rs.Draft4Validator(openapi_to_json_schema(_inlined(components["OmsMessage"], components)))

    def problem(payload: object) -> str | None:
        try:
            validator.validate(payload)
        except jsonschema_rs.ValidationError as error:
            location = error_location(error.instance_path)
            return f"{location}: {describe(error)}" if location else describe(error)
        return None

    return problem


def _inlined(node, components: dict):
    """The schema with its local `#/components/schemas/…` references replaced by what they name."""
    if isinstance(node, list):
        return [_inlined(item, components) for item in node]
    if not isinstance(node, dict):
        return node
    reference = node.get("$ref")
    if isinstance(reference, str) and reference.startswith("#/components/schemas/"):
        return _inlined(components[reference.rsplit("/", 1)[1]], components)
    return {key: _inlined(value, components) for key, value in node.items()}


# --- export --------------------------------------------------------------------------------------------------------


def _export(args: argparse.Namespace) -> int:
    try:
        start = None if args.start is None else parse_time(args.start)
        end = None if args.end is None else parse_time(args.end)
    except ValueError as error:
        print(f"--from/--to: {error}", file=sys.stderr)
        return 2
    if start is not None and end is not None and start > end:
        print(f"--from ({args.start}) is after --to ({args.end})", file=sys.stderr)
        return 2
    meters = imports_repo.exported_meters(args.meter)
    missing = sorted(set(args.meter or ()) - set(meters))
    if missing:
        print(f"no kW readings for meter(s) {', '.join(missing)}", file=sys.stderr)
    written = 0
    output = open(args.output, "w", encoding="utf-8", newline="\n") if args.output else sys.stdout  # noqa: SIM115
    try:
        output.write(CSV_HEADER_LINE)
        for meter in meters:
            page: list[str] = []
            for time_, reading in imports_repo.samples_for_export(meter, start, end):
                page.append(csv_line(meter, time_, reading))
                if len(page) >= 10_000:
                    output.writelines(page)
                    written += len(page)
                    page = []
            output.writelines(page)
            written += len(page)
    except BrokenPipeError:
        return 0  # the reader stopped (| head): not an error
    finally:
        if args.output:
            output.close()
    print(f"{written:,} readings of {len(meters):,} meters written", file=sys.stderr)
    return 0
