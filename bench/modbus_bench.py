"""One Modbus polling round over 1,000 simulated hosts, 4 measurements each: the round's wall time and the
polling process's CPU time; then the same round with one more host that never answers.

    .venv/bin/python bench/modbus_bench.py [--hosts 1000] [--gateways 5]

The hosts are unit ids behind simulated RTU-to-TCP gateways (pymodbus servers on 127.0.0.1, one process
each, up to 200 unit ids each), on a scratch SQLite database. The round is `tasks.poll_round` itself
(targets from the repository, the asyncio reader, one store), run in this process so that its CPU time
is this process's; the simulators' CPU is theirs (reported apart). Targets: a round within a 10-second
interval, and a silent host lengthens it by at most its timeout (MODBUS_TIMEOUT_SECONDS, 3 s).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for _path in (str(ROOT / "src"), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

MEASUREMENTS = ["voltage_ac", "current", "active_power", "active_energy_consumed"]
UNITS_PER_GATEWAY = 200
INTERVAL_SECONDS = 10.0


def serve(port: int, units: int) -> None:
    """A gateway process: `units` simulated SDM630 meters (unit ids 1..units) on 127.0.0.1:port."""
    from tests.support import modbus_simulator as sim

    devices = {
        unit: sim.device(sim.shifted(sim.SDM630_INPUT, unit), sim.SDM630_HOLDING) for unit in range(1, units + 1)
    }
    with sim.ModbusGateway(devices, port=port):
        print("ready", flush=True)
        while True:
            time.sleep(3600)


def _start_gateways(hosts: int, gateways: int) -> list[tuple[subprocess.Popen, int, int]]:
    from tests.support.modbus_simulator import free_port

    per_gateway = -(-hosts // gateways)
    if per_gateway > UNITS_PER_GATEWAY:
        raise SystemExit(
            f"at most {UNITS_PER_GATEWAY} unit ids per gateway: use --gateways {-(-hosts // UNITS_PER_GATEWAY)}"
        )
    started = []
    for _ in range(gateways):
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(port), str(per_gateway)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        started.append((process, port, per_gateway))
    for process, _, _ in started:
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError("a simulator gateway did not start")
    return started


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _round(tasks, modbus_repo) -> dict:
    stored = {}
    store_round = modbus_repo.store_round

    def timed_store(samples, outcomes):
        began = time.perf_counter()
        store_round(samples, outcomes)
        stored.update(samples=len(samples), store_seconds=time.perf_counter() - began)

    modbus_repo.store_round = timed_store
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        tasks.poll_round.call_local()
        return {"wall_seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu, **stored}
    finally:
        modbus_repo.store_round = store_round


def measure(hosts: int = 1000, gateways: int = 5, timeout: float = 3.0) -> dict:
    scratch = Path(tempfile.mkdtemp(prefix="modbus-bench-"))
    os.environ.update(DATABASE_URL=f"sqlite:///{scratch / 'bench.sqlite3'}", QUEUE_SQLITE_PATH=str(scratch / "q.db"))
    os.environ.pop("REDIS_URL", None)
    import tasks
    from app import prepare_database
    from config import Config
    from repository import db
    from repository import modbus as modbus_repo
    from tests.support import modbus_simulator as sim
    from tests.support import silesia_sites

    config = Config.from_env()
    prepare_database(config)
    db.open_database(config.database_url)
    # Polled every 2 s here so that the second round finds the hosts due again.
    tasks.settings = dataclasses.replace(tasks.settings, modbus_poll_seconds=2, modbus_timeout_seconds=timeout)
    running = _start_gateways(hosts, gateways)
    try:
        with db.database.connection_context():
            owner = silesia_sites.account()
            ports = [(port, unit) for _, port, units in running for unit in range(1, units + 1)][:hosts]
            silesia_sites.many_hosts(owner, ports, MEASUREMENTS)
        simulators_before = sum(_cpu_seconds(process.pid) for process, _, _ in running)
        first = _round(tasks, modbus_repo)
        simulators_cpu = sum(_cpu_seconds(process.pid) for process, _, _ in running) - simulators_before
        with db.database.connection_context():
            statuses = [modbus_repo.poll_status(host) for host in range(1, hosts + 1)]
        ok = sum(1 for status in statuses if status and status.last_outcome == "ok")
        time.sleep(2.1)
        with sim.silent_host() as silent:
            with db.database.connection_context():
                silent_host = silesia_sites.host(owner, silent.port, measurements=MEASUREMENTS)
            second = _round(tasks, modbus_repo)
        with db.database.connection_context():
            silent_status = modbus_repo.poll_status(silent_host)
    finally:
        for process, _, _ in running:
            process.kill()
            process.wait()
    return {
        "hosts": hosts,
        "measurements_per_host": len(MEASUREMENTS),
        "gateways": gateways,
        "concurrency": tasks.settings.modbus_concurrency,
        "timeout_seconds": timeout,
        "round": first,
        "hosts_ok": ok,
        "simulators_cpu_seconds": simulators_cpu,
        "round_with_a_silent_host": second,
        "silent_host_error": silent_status.last_error if silent_status else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", nargs=2, type=int, metavar=("PORT", "UNITS"), help=argparse.SUPPRESS)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--gateways", type=int, default=5)
    args = parser.parse_args(argv)
    if args.serve:
        serve(*args.serve)
        return 0
    print(json.dumps(measure(args.hosts, args.gateways), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
