"""Sections 1, 2, 3 and 6: POST /readings/store and GET /price-plans/compare-all under load.

Every data set is generated here; every load run is bounded in time and in request count and goes only
to 127.0.0.1; after every run a sample of what the server stored is read back over HTTP and compared
with what was sent, so a fast wrong answer fails the run.

    store_run("sqlite", "batch", seconds=10, sqlite_synchronous="FULL")   # our app on a scratch DB
    echo_run("batch", seconds=10)                                         # the plain Flask echo
    compare_all_run("sqlite", sizes=(1_000, 100_000, 1_000_000), seconds=5)
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for _path in (str(BENCH), str(ROOT / "src")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import loadgen  # noqa: E402
import servers  # noqa: E402

BATCH_READINGS = 1_000
BATCH_SETS = 8  # distinct reading arrays; request n sends set n % 8 for its own meter
BATCH_CONNECTIONS = 8
SINGLE_METERS = 64
SINGLE_CONNECTIONS = 16
STEP = 60  # seconds between a meter's samples in sections 1 and 2
COMPARE_STEP = 60  # section 3: one sample a minute, so 1,000,000 samples span 694 days of rollups
LOAD_BATCH = 10_000  # section 3 loads through repository.readings.store in batches this big
MAX_GAP = 3600  # the service's default MAX_READING_GAP_SECONDS
SAMPLE_CHECKS = 12


class CheckFailed(AssertionError):
    pass


@dataclass
class Measured:
    load: loadgen.LoadResult
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    peak_rss_mib: float = 0.0
    checked: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def server_cores(self) -> float:
        return self.server_cpu_s / self.load.duration_s if self.load.duration_s else 0.0

    @property
    def client_cores(self) -> float:
        return self.client_cpu_s / self.load.duration_s if self.load.duration_s else 0.0


def hour_aligned(days_ago: float) -> int:
    moment = int(time.time() - days_ago * 86_400)
    return moment - moment % 3600


# ------------------------------------------------------------------------------------------ workloads


def reading_value(n: int, i: int) -> float:
    """The i-th reading of set n: three decimals, so JSON text and float agree exactly."""
    return ((n * 7919 + i * 104_729) % 100_000) / 1000


def batch_sets(base: int) -> list[list[dict]]:
    return [
        [{"time": base + i * STEP, "reading": reading_value(n, i)} for i in range(BATCH_READINGS)]
        for n in range(BATCH_SETS)
    ]


def batch_workload(prefix: str, base: int) -> loadgen.Workload:
    sets = [json.dumps(s, separators=(",", ":")) for s in batch_sets(base)]
    return loadgen.Workload(
        kind="batch",
        method="POST",
        path="/readings/store",
        content_type="application/json",
        prefix=prefix,
        sets=sets,
    )


def single_workload(prefix: str, base: int) -> loadgen.Workload:
    return loadgen.Workload(
        kind="single",
        method="POST",
        path="/readings/store",
        content_type="application/json",
        prefix=prefix,
        meters=SINGLE_METERS,
        base=base,
        step=STEP,
    )


def workload(mode: str, prefix: str, base: int) -> loadgen.Workload:
    return batch_workload(prefix, base) if mode == "batch" else single_workload(prefix, base)


def connections(mode: str) -> int:
    return BATCH_CONNECTIONS if mode == "batch" else SINGLE_CONNECTIONS


# ------------------------------------------------------------------------------------------ HTTP


def http_json(url: str, *, body: bytes | None = None, headers: dict | None = None, timeout: float = 30) -> object:
    request = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body else "GET")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def read_back(server_url: str, meter: str) -> list[dict]:
    try:
        return http_json(f"{server_url}/readings/read/{urllib.parse.quote(meter)}")
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return []
        raise


# ------------------------------------------------------------------------------------------ checks


def _sample(count: int, k: int = SAMPLE_CHECKS) -> list[int]:
    if count <= 0:
        return []
    if count <= k:
        return list(range(count))
    return sorted({round(i * (count - 1) / (k - 1)) for i in range(k)})


def check_batch(server_url: str, work: loadgen.Workload, result: loadgen.LoadResult) -> str:
    """Meters of a sample of requests that were certainly answered hold exactly the set they were sent."""
    sets = [json.loads(s) for s in work.sets]
    sample = _sample(result.certainly_answered())
    for n in sample:
        stored = read_back(server_url, f"{work.prefix}{n}")
        expected = sets[n % len(sets)]
        if stored != expected:
            raise CheckFailed(f"meter {work.prefix}{n}: stored {len(stored)} readings != the {len(expected)} sent")
    beyond = read_back(server_url, f"{work.prefix}{result.requests + result.connections + 5}")
    if beyond:
        raise CheckFailed("a meter that was never sent has readings")
    return f"{len(sample)} meters read back, {len(sample) * BATCH_READINGS:,} readings equal to those sent"


def check_echo(server_url: str, work: loadgen.Workload) -> str:
    body = work.body(0)
    answer = http_json(f"{server_url}/readings/store", body=body, headers={"Content-Type": "application/json"})
    if answer != json.loads(body):
        raise CheckFailed("the echo did not answer the body it was sent")
    return "echo answers the body it was sent"


def check_single(server_url: str, work: loadgen.Workload, result: loadgen.LoadResult) -> str:
    """Every meter read back: every stored value is the one sent for its request, none is missing."""
    certain = result.certainly_answered()
    upper = result.requests + result.connections  # requests sent at most
    seen = 0
    for meter_index in range(work.meters):
        for item in read_back(server_url, f"{work.prefix}{meter_index}"):
            step = (item["time"] - work.base) // work.step
            n = step * work.meters + meter_index
            if (item["time"] - work.base) % work.step or not 0 <= n < upper:
                raise CheckFailed(f"meter {work.prefix}{meter_index} has a reading at {item['time']} never sent")
            if item["reading"] != float(loadgen.single_reading_text(n)):
                raise CheckFailed(f"request {n}: stored {item['reading']}, sent {loadgen.single_reading_text(n)}")
            seen += 1
    if seen < certain:
        raise CheckFailed(f"{seen} readings stored, but {certain} requests were certainly answered 2xx")
    return f"all {work.meters} meters read back: {seen:,} readings, each equal to the one sent"


# ------------------------------------------------------------------------------------------ runs


def _cpu_of(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def loaded(
    server: servers.Server, work: loadgen.Workload, *, conns: int, seconds: float, max_requests: int
) -> Measured:
    """One bounded load run against a started server, with the CPU both sides used."""
    pids = server.pids()
    server_before, client_before = _cpu_of(pids), _children_cpu()
    result = loadgen.run(server.url, work, connections=conns, duration_s=seconds, max_requests=max_requests)
    server_cpu, client_cpu = _cpu_of(pids) - server_before, _children_cpu() - client_before
    if not result.ok:
        raise CheckFailed(
            f"{result.bad_status} answers outside 2xx (first {result.first_bad_status}), "
            f"{result.socket_errors} socket errors; server log:\n{server.log_tail()}"
        )
    if result.requests == 0:
        raise CheckFailed("no request was answered")
    return Measured(result, server_cpu, client_cpu, server.peak_rss_kib() / 1024)


def warm_up(server: servers.Server, work: loadgen.Workload, conns: int) -> None:
    """A short run first (its own meters): imports, caches and pools are warm when the clock starts."""
    loadgen.run(server.url, work, connections=conns, duration_s=1, max_requests=200)


def max_requests_for(mode: str, seconds: float) -> int:
    # Far above what 2 cores can answer in `seconds`: the time bound binds; the count keeps the run finite.
    return int(seconds * (3_000 if mode == "batch" else 30_000))


def echo_run(mode: str, seconds: float, *, log_dir: Path | None = None, served_by: str = "gunicorn") -> Measured:
    base = hour_aligned(20)
    with servers.echo_server(log_dir=log_dir, served_by=served_by) as server:
        warm_up(server, workload(mode, "warm-", base), connections(mode))
        work = workload(mode, "echo-", base)
        measured = loaded(
            server, work, conns=connections(mode), seconds=seconds, max_requests=max_requests_for(mode, seconds)
        )
        measured.checked = check_echo(server.url, work)
    return measured


def store_run(
    kind: str, mode: str, seconds: float, *, sqlite_synchronous: str = "FULL", log_dir: Path | None = None
) -> Measured:
    """POST /readings/store on a fresh database (SQLite file or the bench PostgreSQL database)."""
    base = hour_aligned(20)
    with (
        servers.scratch_database(kind) as url,
        servers.app_server(url, log_dir=log_dir, SQLITE_SYNCHRONOUS=sqlite_synchronous) as server,
    ):
        warm_up(server, workload(mode, "warm-", base - 5 * 86_400), connections(mode))
        reniced = servers.match_postgres_priority(url) if kind == "postgresql" else 0
        work = workload(mode, f"{mode}-", base)
        measured = loaded(
            server, work, conns=connections(mode), seconds=seconds, max_requests=max_requests_for(mode, seconds)
        )
        measured.extra["postgres_backends_reniced"] = reniced
        check = check_batch if mode == "batch" else check_single
        measured.checked = check(server.url, work, measured.load)
    return measured


# ------------------------------------------------------------------------------------------ section 3


def compare_samples(count: int, end: int) -> list[tuple[int, float]]:
    """`count` samples a minute apart ending an hour before `end`, values 0-5 kW."""
    start = end - 3600 - count * COMPARE_STEP
    return [(start + i * COMPARE_STEP, ((i * 7919) % 5000) / 1000) for i in range(count)]


def independent_kwh(samples: list[tuple[int, float]], max_gap: int = MAX_GAP) -> float:
    """(p1 + p2) / 2 x dt / 3600 kWh per pair of consecutive samples, nothing across a gap longer than
    max_gap: the service's rule, written here without the service's code."""
    kwh = 0.0
    for (t1, p1), (t2, p2) in zip(samples, samples[1:], strict=False):
        if 0 < t2 - t1 <= max_gap:
            kwh += (p1 + p2) / 2 * (t2 - t1) / 3600
    return kwh


def load_meters(database_url: str, meters: dict[str, list[tuple[int, float]]]) -> float:
    """Store the samples through the repository (10,000 a transaction, rollups kept as the API keeps
    them) in this process, before the server starts. Returns the seconds it took."""
    from app import prepare_database
    from config import Config
    from repository import db
    from repository import readings as readings_repo

    config = Config.from_env(database_url=database_url)
    prepare_database(config)
    db.open_database(database_url, sqlite_synchronous="NORMAL")  # loading only; the server runs with its own
    db.connect()
    started = time.perf_counter()
    try:
        for meter_id, samples in meters.items():
            for offset in range(0, len(samples), LOAD_BATCH):
                readings_repo.store(meter_id, samples[offset : offset + LOAD_BATCH], config.max_reading_gap_seconds)
    finally:
        db.close_all()
    return time.perf_counter() - started


def page_hours(database_url: str) -> int:
    """The pass of the queue worker's page_sealed_hours task (`make run` runs it every minute): pack the
    samples of past hours into hour pages. The bench's server runs without a worker. Returns samples paged."""
    from repository import db, sample_pages

    db.open_database(database_url)
    db.connect()
    try:
        return sample_pages.page_sealed_hours(int(time.time()))
    finally:
        db.close_all()


def check_compare(server_url: str, meter: str, samples: list[tuple[int, float]]) -> str:
    plans = http_json(f"{server_url}/price-plans")
    answer = http_json(f"{server_url}/price-plans/compare-all/{meter}")
    kwh = independent_kwh(samples)
    costs = {next(iter(item)): next(iter(item.values())) for item in answer["pricePlanComparisons"]}
    for plan in plans:
        if set(plan["dayOfWeekMultipliers"].values()) != {1.0} or plan["standingChargePerDay"]:
            return "not checked: a plan has day multipliers or a standing charge (the check assumes flat plans)"
        expected = kwh * plan["unitRate"]
        got = costs.get(plan["pricePlanId"])
        if got is None or not math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-9):
            raise CheckFailed(f"{meter}: {plan['pricePlanId']} costs {got}, the samples say {expected}")
    return f"{meter}: every plan's cost equals kWh x rate from the raw samples ({kwh:,.3f} kWh)"


def compare_all_run(
    kind: str, sizes: tuple[int, ...], seconds: float, max_requests: int, *, log_dir: Path | None = None
) -> dict[int, Measured]:
    end = hour_aligned(0)
    meters = {f"compare-{size}": compare_samples(size, end) for size in sizes}
    results: dict[int, Measured] = {}
    with servers.scratch_database(kind) as url:
        load_seconds = load_meters(url, meters)
        with servers.app_server(url, log_dir=log_dir) as server:
            for size in sizes:
                meter = f"compare-{size}"
                work = loadgen.Workload(kind="fixed", method="GET", path=f"/price-plans/compare-all/{meter}")
                loadgen.run(server.url, work, connections=1, duration_s=1, max_requests=20)  # warm-up
                if kind == "postgresql":
                    servers.match_postgres_priority(url)
                measured = loaded(server, work, conns=1, seconds=seconds, max_requests=max_requests)
                measured.checked = check_compare(server.url, meter, meters[meter])
                measured.extra = {"load_seconds": load_seconds, "days": size * COMPARE_STEP / 86_400}
                results[size] = measured
    return results
