"""Section 7: the read path of a small meter, against a plain Flask app answering a body of the same size.

    results = measure(seconds=5)

A meter with 1,000 readings (one a minute) and one with two days of them are loaded through the repository;
our app (uvicorn, workers = cores) then answers compare-all, recommend and readings/read of one day under 8
connections and under one (the day first from its rows, then after the queue worker's paging pass, as `make
run` serves it within a minute: see repository/sample_pages.py); the reference is bench/echo_app.py served
by gunicorn (sync workers, one per core) answering our very answer from a file, so the ratio measures what
computing it costs us.
"""

from __future__ import annotations

import tempfile
import urllib.request
from pathlib import Path

import loadgen
import readings_bench as rb
import servers

CONNECTIONS = 8
SMALL = "read-1000"
DAY = "read-day"
UNPAGED = "readings/read of a day, before paging (rows)"


def _body(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def measure(seconds: float, max_requests: int = 200_000) -> list[dict]:
    end = rb.hour_aligned(0)
    day_samples = rb.compare_samples(2 * 1440, end)
    meters = {SMALL: rb.compare_samples(1_000, end), DAY: day_samples}
    day_start = day_samples[0][0] + 43_200
    day = f"/readings/read/{DAY}?from={day_start}&to={day_start + 86_399}"
    paths = {
        # Before the worker's paging pass: the day's rows (a context line, not a target).
        UNPAGED: day,
        "compare-all": f"/price-plans/compare-all/{SMALL}",
        "recommend": f"/price-plans/recommend/{SMALL}",
        "readings/read of a day": day,
    }
    results = []
    with tempfile.TemporaryDirectory(prefix="joi-read-") as directory, servers.scratch_database("sqlite") as url:
        rb.load_meters(url, meters)
        bodies = {}
        paged = 0
        with servers.app_server(url) as server:
            for name, path in paths.items():
                if name != UNPAGED and not paged:
                    paged = rb.page_hours(url)
                bodies[name] = _body(server.url + path)
                work = loadgen.Workload(kind="fixed", method="GET", path=path)
                rb.warm_up(server, work, CONNECTIONS)
                many = rb.loaded(server, work, conns=CONNECTIONS, seconds=seconds, max_requests=max_requests)
                one = rb.loaded(server, work, conns=1, seconds=seconds, max_requests=max_requests)
                if name == "compare-all":
                    many.checked = rb.check_compare(server.url, SMALL, meters[SMALL])
                result = {"what": name, "path": path, "bytes": len(bodies[name]), "ours": many, "ours_1": one}
                results.append({**result, "target": name != UNPAGED})
        if bodies[UNPAGED] != bodies["readings/read of a day"]:
            raise rb.CheckFailed("readings/read of the day answered otherwise once its hours were paged")
        for result in results:
            body_file = Path(directory) / f"{len(result['path'])}.json"
            body_file.write_bytes(bodies[result["what"]])
            with servers.echo_server(ECHO_FIXED_BODY=str(body_file)) as echo:
                if _body(echo.url + "/fixed") != bodies[result["what"]]:
                    raise rb.CheckFailed("the fixed-body reference does not answer our body")
                work = loadgen.Workload(kind="fixed", method="GET", path="/fixed")
                rb.warm_up(echo, work, CONNECTIONS)
                result["echo"] = rb.loaded(echo, work, conns=CONNECTIONS, seconds=seconds, max_requests=max_requests)
                result["echo_1"] = rb.loaded(echo, work, conns=1, seconds=seconds, max_requests=max_requests)
    return results
