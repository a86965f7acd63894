"""`cli.py import-readings` and `export-readings`, run as a user runs them (subprocesses), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import pty
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from repository import db
from repository import dsmr as dsmr_repo
from repository import oms as oms_repo
from repository import readings as readings_repo
from tests.support.telegrams import make_telegram

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_606_636_800  # 2020-11-29 08:00 UTC, the JOI seed's first reading


def run_cli(database_url: str, *args: str, stdin: str | None = None, **popen) -> subprocess.CompletedProcess:
    env = {"DATABASE_URL": database_url, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run(
        [sys.executable, "src/cli.py", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=not popen,
        text=True,
        timeout=120,
        **popen,
    )


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return str(path)


def stored_samples(database_url: str, meter: str) -> list[tuple[int, float]]:
    db.open_database(database_url)
    db.connect()
    try:
        return [tuple(sample) for sample in readings_repo.samples_between(meter)]
    finally:
        db.close_all()


def assert_statistics_verified(database_url: str) -> None:
    verified = run_cli(database_url, "verify-statistics")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def csv_rows(meter: str, count: int, start: int = T0, step: int = 60) -> list[str]:
    rng = random.Random(meter)
    return [f"{meter},{start + step * index},{round(rng.uniform(0.01, 5), 4)!r}\n" for index in range(count)]


# --- help ------------------------------------------------------------------------------------------------------


def listed_commands(help_text: str) -> dict[str, str]:
    section = help_text.split("commands:", 1)[1]
    return {
        line.split()[0]: line.split(None, 1)[1] if len(line.split()) > 1 else ""
        for line in section.splitlines()
        if line.startswith("    ") and line.strip()
    }


def test_help_lists_every_command_on_one_line_and_every_command_answers_help():
    top = run_cli("sqlite:///unused.sqlite3", "--help")
    assert top.returncode == 0
    commands = listed_commands(top.stdout)
    for wanted in ("migrate", "demo", "dsmr-key", "create-admin", "import-readings", "export-readings"):
        assert wanted in commands, f"{wanted} is not listed:\n{top.stdout}"
    assert all(commands.values()), f"a command without its line of help:\n{top.stdout}"
    # Each command's own --help, in one process (each subprocess costs a second on a loaded machine).
    script = (
        "import sys; sys.path.insert(0, 'src'); import cli\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        cli.main([name, '--help'])\n"
        "    except SystemExit as end:\n"
        "        assert end.code == 0, name\n"
        "    print('=== ' + name)\n"
    )
    every = subprocess.run(
        [sys.executable, "-c", script, *commands], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert every.returncode == 0, every.stderr
    for name in commands:
        assert f"usage: cli.py {name}" in every.stdout
        assert f"=== {name}" in every.stdout


def test_make_help_lists_the_make_targets_and_the_cli_commands():
    made = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    assert "make run:" in made.stdout and "make test:" in made.stdout and "make help:" in made.stdout
    assert "import-readings" in made.stdout and "export-readings" in made.stdout


# --- CSV -------------------------------------------------------------------------------------------------------


def test_a_csv_of_epoch_and_iso_times_is_imported_with_rollups_equal_to_a_recomputation(tmp_path, database_url):
    rows = ["smartMeterId,time,reading\n", *csv_rows("smart-meter-0", 200), *csv_rows("meter-b", 50, step=900)]
    rows.append("meter-b,2020-12-10T00:00:00Z,1.5\n")  # ISO 8601 with Z, and naive (UTC) below
    rows.append("meter-b,2020-12-10T00:15:00,2.5\n")
    imported = run_cli(database_url, "import-readings", write(tmp_path, "readings.csv", "".join(rows)))
    assert imported.returncode == 0, imported.stderr
    assert "252 rows read: 252 stored, 0 already present, 0 bad" in imported.stdout
    assert "\r" not in imported.stderr and "%" not in imported.stderr  # not a terminal: no progress bar
    samples = stored_samples(database_url, "meter-b")
    assert len(samples) == 52
    assert samples[-2:] == [(1_607_558_400, 1.5), (1_607_559_300, 2.5)]
    assert stored_samples(database_url, "smart-meter-0")[0] == (T0, float(rows[1].split(",")[2]))
    assert_statistics_verified(database_url)


def test_bad_rows_are_named_by_line_and_the_good_rows_are_kept(tmp_path, database_url):
    text = (
        "smart-meter-0,1606636800,0.5\n"
        "smart-meter-0,1606636860\n"  # line 2: a field missing
        "smart-meter-0,yesterday,0.5\n"  # line 3
        "smart meter,1606636920,0.5\n"  # line 4: a space in the id
        "smart-meter-0,1606636980,-1\n"  # line 5: negative kW
        "smart-meter-0,1606637040,0.7\n"
        "smart-meter-0,1606636800,0.9\n"  # line 7: another reading at line 1's time
        "smart-meter-0,9999999999,0.5\n"  # line 8: after 2100
    )
    imported = run_cli(database_url, "import-readings", write(tmp_path, "bad.csv", text))
    assert imported.returncode == 1
    lines = [line for line in imported.stderr.splitlines() if line.startswith("line ")]
    assert [line.split(":")[0] for line in lines] == [f"line {n}" for n in (2, 3, 4, 5, 7, 8)]
    assert "expected 3 fields" in lines[0] and "another reading at time 1606636800 on line 1" in lines[4]
    assert "8 rows read: 2 stored, 0 already present, 6 bad" in imported.stdout
    assert stored_samples(database_url, "smart-meter-0") == [(1_606_636_800, 0.5), (1_606_637_040, 0.7)]
    assert_statistics_verified(database_url)


def test_all_or_nothing_stores_nothing_when_a_row_is_bad(tmp_path, database_url):
    path = write(tmp_path, "bad.csv", "".join(csv_rows("smart-meter-0", 5)) + "smart-meter-0,1606636800,abc\n")
    imported = run_cli(database_url, "import-readings", "--all-or-nothing", path)
    assert imported.returncode == 1
    assert "line 6: reading 'abc'" in imported.stderr
    assert "nothing was stored" in imported.stdout
    assert stored_samples(database_url, "smart-meter-0") == []


def test_an_interrupted_import_run_again_adds_only_what_is_missing(tmp_path, database_url):
    rows = csv_rows("smart-meter-0", 300)
    first = run_cli(database_url, "import-readings", write(tmp_path, "part.csv", "".join(rows[100:180])))
    assert "80 stored" in first.stdout
    again = run_cli(database_url, "import-readings", write(tmp_path, "all.csv", "".join(rows)))
    assert again.returncode == 0, again.stderr
    assert "300 rows read: 220 stored, 80 already present, 0 bad" in again.stdout
    third = run_cli(database_url, "import-readings", write(tmp_path, "all.csv", "".join(rows)))
    assert "300 rows read: 0 stored, 300 already present, 0 bad" in third.stdout
    assert len(stored_samples(database_url, "smart-meter-0")) == 300
    assert_statistics_verified(database_url)


def test_an_imported_reading_never_replaces_a_stored_one(tmp_path, database_url):
    run_cli(database_url, "import-readings", write(tmp_path, "a.csv", "m1,1606636800,0.5\nm1,1606636860,0.6\n"))
    again = run_cli(database_url, "import-readings", write(tmp_path, "b.csv", "m1,1606636860,0.9\nm1,1606636920,1\n"))
    assert "1 stored, 1 already present" in again.stdout
    assert "1 of those already present had another reading in the file" in again.stdout
    assert stored_samples(database_url, "m1") == [(1606636800, 0.5), (1606636860, 0.6), (1606636920, 1.0)]
    assert_statistics_verified(database_url)


def test_export_writes_what_import_reads_back_with_its_filters(tmp_path, database_url):
    rows = [*csv_rows("meter-a", 120), *csv_rows("meter-b", 30, step=3600)]
    run_cli(database_url, "import-readings", write(tmp_path, "in.csv", "".join(rows)))
    exported = run_cli(database_url, "export-readings")
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout == "smartMeterId,time,reading\n" + "".join(rows)
    # Round trip: the export imported into an empty database gives the same export.
    other = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    output = tmp_path / "out.csv"
    run_cli(database_url, "export-readings", "--output", str(output))
    assert "150 rows read: 150 stored" in run_cli(other, "import-readings", str(output)).stdout
    assert run_cli(other, "export-readings").stdout == exported.stdout
    window = run_cli(
        database_url, "export-readings", "--meter", "meter-a", "--from", str(T0 + 60), "--to", "2020-11-29T08:03:00Z"
    )
    assert window.stdout.splitlines()[1:] == [row.rstrip("\n") for row in rows[1:4]]


def test_the_progress_bar_is_drawn_on_a_terminal_only(tmp_path):
    url = f"sqlite:///{tmp_path / 'tty.sqlite3'}"
    path = write(tmp_path, "in.csv", "".join(csv_rows("smart-meter-0", 50)))
    controller, terminal = pty.openpty()
    try:
        finished = run_cli(url, "import-readings", path, stdout=subprocess.PIPE, stderr=terminal)
        os.close(terminal)
        terminal = None
        drawn = os.read(controller, 65_536).decode()
    finally:
        if terminal is not None:
            os.close(terminal)
        os.close(controller)
    assert finished.returncode == 0
    assert "\r" in drawn and "%" in drawn


# --- P1 telegrams ----------------------------------------------------------------------------------------------


def telegram_file(count: int) -> tuple[str, list[datetime]]:
    rng = random.Random(7)
    start = datetime(2024, 3, 1, 12, tzinfo=UTC)
    times = [start + timedelta(minutes=5 * n) for n in range(count)]
    telegrams = [
        make_telegram(
            "v5",
            rng,
            timestamp=moment,
            equipment_id="E0001234567890",
            electricity_delivered_1=Decimal("100.000") + n,
            electricity_delivered_2=Decimal("200.000") + 2 * n,
            electricity_returned_1=Decimal("1.000"),
            electricity_returned_2=Decimal("2.000"),
        )
        for n, moment in enumerate(times)
    ]
    return "".join(telegrams), times


def dsmr_readings(database_url: str) -> int:
    db.open_database(database_url)
    db.connect()
    try:
        return sum(summary.readings for summary in dsmr_repo.installations())
    finally:
        db.close_all()


def test_a_file_of_p1_telegrams_is_imported_once_with_statistics_verified(tmp_path, database_url):
    text, _ = telegram_file(6)
    good = text.count("\n!")
    broken = text.replace("1-0:1.8.1(000103.000*kWh)", "1-0:1.8.1(000103.001*kWh)")  # the CRC no longer matches
    assert broken != text
    path = write(tmp_path, "p1.txt", broken + "stray line\n")
    imported = run_cli(database_url, "import-readings", path)
    assert imported.returncode == 1
    header_line = broken[: broken.index("1-0:1.8.1(000103.001*kWh)")].rsplit("\n/", 1)[0].count("\n") + 2
    assert f"line {header_line}: " in imported.stderr and "CRC" in imported.stderr
    assert "not part of a telegram" in imported.stderr
    assert f"{good + 1} telegrams read: {good - 1} stored, 0 already present, 2 bad" in imported.stdout
    again = run_cli(database_url, "import-readings", write(tmp_path, "p1-good.txt", text))
    assert f"{good} telegrams read: 1 stored, {good - 1} already present, 0 bad" in again.stdout
    assert dsmr_readings(database_url) == good
    assert_statistics_verified(database_url)


# --- OMS JSON lines --------------------------------------------------------------------------------------------


def oms_line(identnr: int, moment: str, energy: int) -> str:
    return json.dumps(
        {
            "data": [
                {"value": moment, "tariff": 0, "subunit": 0, "dimension": "Time Point (time & date)", "storagenr": 0},
                {"value": energy, "tariff": 0, "subunit": 0, "dimension": "Energy (kWh)", "storagenr": 0},
            ],
            "device": {"type": 4, "status": 0, "identnr": identnr, "version": 0, "accessnr": 156, "manufacturer": 5317},
        }
    )


def test_oms_json_lines_are_checked_like_the_api_and_stored_once(tmp_path, database_url):
    lines = [
        oms_line(83251076, "2020-06-26T06:49:00", 29690),
        "",
        oms_line(83251077, "2020-06-26T06:50:00", 100),
        "{not json",
        oms_line(123456789, "2020-06-26T06:50:00", 100),  # identnr above the API's maximum
        oms_line(83251076, "2020-06-27T06:49:00", 29700),
    ]
    imported = run_cli(database_url, "import-readings", write(tmp_path, "oms.jsonl", "\n".join(lines) + "\n"))
    assert imported.returncode == 1
    assert "line 4: not JSON" in imported.stderr
    assert "line 5: device.identnr: must be at most 99999999" in imported.stderr
    assert "5 messages read: 3 stored, 0 already present, 2 bad" in imported.stdout
    again = run_cli(database_url, "import-readings", "--format", "oms", write(tmp_path, "again.txt", lines[0] + "\n"))
    assert "1 messages read: 0 stored, 1 already present, 0 bad" in again.stdout
    db.open_database(database_url)
    db.connect()
    try:
        assert oms_repo.counts()["messages"] == 3
    finally:
        db.close_all()


def test_a_telegram_at_a_stored_instant_with_other_values_is_bad_and_all_or_nothing_rolls_the_file_back(
    tmp_path, database_url
):
    text, times = telegram_file(3)
    rng = random.Random(8)
    clash = make_telegram(
        "v5",
        rng,
        timestamp=times[1],
        equipment_id="E0001234567890",
        electricity_delivered_1=Decimal("999.000"),
        electricity_delivered_2=Decimal("200.000"),
        electricity_returned_1=Decimal("1.000"),
        electricity_returned_2=Decimal("2.000"),
    )
    path = write(tmp_path, "clash.txt", text + clash)
    clash_line = text.count("\n") + 1
    refused = run_cli(database_url, "import-readings", "--all-or-nothing", path)
    assert refused.returncode == 1
    assert f"line {clash_line}: " in refused.stderr and "already has another reading" in refused.stderr
    assert "nothing was stored" in refused.stdout
    assert dsmr_readings(database_url) == 0
    kept = run_cli(database_url, "import-readings", path)
    assert "4 telegrams read: 3 stored, 0 already present, 1 bad" in kept.stdout
    assert dsmr_readings(database_url) == 3
    assert_statistics_verified(database_url)
