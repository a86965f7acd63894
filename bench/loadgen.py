"""The load generator: wrk (Debian's package) driven by a generated Lua script, bounded in time AND in
request count, only against 127.0.0.1. Without wrk (and not root to `apt-get install` it) a small
asyncio keep-alive client with the same workloads and bounds stands in.

A `Workload` says what each request is; request number n (0, 1, 2, … in sending order, one wrk
thread) has a body that both Lua and Python derive from n alone, so the harness can recompute what
was sent and check what the server stored:

    batch   {"smartMeterId": "<prefix><n>", "electricityReadings": <sets[n % len(sets)]>}
    single  {"smartMeterId": "<prefix><n % meters>", "electricityReadings":
             [{"time": base + (n // meters) * step, "reading": single_reading(n)}]}
    lines   bodies[n % len(bodies)] (e.g. form-encoded telegrams)
    fixed   no body (GET) or one fixed body

With C connections and R answered requests, requests 0 … R - C - 1 have certainly been answered (at most
C are in flight when the run stops), which is what the correctness checks rely on.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = ("127.0.0.1", "localhost")


@dataclass
class Workload:
    kind: str = "fixed"  # fixed | batch | single | lines
    method: str = "GET"
    path: str = "/"
    content_type: str | None = None
    headers: dict = field(default_factory=dict)
    prefix: str = ""
    sets: list[str] = field(default_factory=list)  # batch: JSON arrays of readings
    meters: int = 1  # single
    base: int = 0  # single
    step: int = 60  # single
    bodies: list[bytes] = field(default_factory=list)  # lines
    body_fixed: bytes | None = None  # fixed

    def body(self, n: int) -> bytes | None:
        if self.kind == "batch":
            return (
                f'{{"smartMeterId":"{self.prefix}{n}","electricityReadings":{self.sets[n % len(self.sets)]}}}'.encode()
            )
        if self.kind == "single":
            meter, time_ = self.single_key(n)
            reading = single_reading_text(n)
            return (
                f'{{"smartMeterId":"{meter}","electricityReadings":[{{"time":{time_},"reading":{reading}}}]}}'.encode()
            )
        if self.kind == "lines":
            return self.bodies[n % len(self.bodies)]
        return self.body_fixed

    def single_key(self, n: int) -> tuple[str, int]:
        return f"{self.prefix}{n % self.meters}", self.base + (n // self.meters) * self.step


def single_reading_text(n: int) -> str:
    k = (n * 7919) % 100_000
    return f"{k // 1000}.{k % 1000:03d}"


@dataclass
class LoadResult:
    tool: str
    requests: int  # answered
    bad_status: int  # answered with a status outside 2xx
    first_bad_status: int | None
    socket_errors: int  # connect/read/write errors and timeouts
    duration_s: float
    latency_ms: dict  # p50, p90, p99, max, mean
    connections: int

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def ok(self) -> bool:
        return self.bad_status == 0 and self.socket_errors == 0

    def certainly_answered(self) -> int:
        """Requests 0 … this - 1 were all answered (see the module docstring)."""
        return max(0, self.requests - self.connections)

    def summary(self) -> str:
        lat = self.latency_ms
        return (
            f"{self.requests} req in {self.duration_s:.1f} s = {self.rps:,.0f} req/s, "
            f"p50 {lat['p50']:.2f} ms p99 {lat['p99']:.2f} ms, bad {self.bad_status}, errors {self.socket_errors}"
        )


def _check_loopback(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname
    if host not in LOOPBACK:
        raise ValueError(f"load is only ever sent to loopback, not {host!r}")


def wrk_path() -> str | None:
    found = shutil.which("wrk")
    if found or os.environ.get("BENCH_NO_APT"):
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        # The harness may install Debian's wrk when it is root; bounded in time, quiet.
        for command in (["apt-get", "install", "-y", "-qq", "wrk"], ["apt-get", "update", "-qq"]):
            try:
                subprocess.run(command, capture_output=True, timeout=180, check=False)
            except subprocess.TimeoutExpired:
                return None
            found = shutil.which("wrk")
            if found:
                return found
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], capture_output=True, timeout=180, check=False)
        return shutil.which("wrk")
    return None


def tool_name() -> str:
    path = wrk_path()
    if not path:
        return "python asyncio client (wrk not found)"
    version = subprocess.run([path, "-v"], capture_output=True, text=True, timeout=10).stdout.splitlines()
    return version[0].split(" [")[0] if version else "wrk"


def run(
    url: str,
    workload: Workload,
    *,
    connections: int,
    duration_s: float,
    max_requests: int,
    timeout_s: float = 10.0,
    force_python: bool = False,
) -> LoadResult:
    """Send the workload to url (the server root) until max_requests are answered or duration_s passes."""
    _check_loopback(url)
    wrk = None if force_python else wrk_path()
    if wrk:
        return _run_wrk(wrk, url, workload, connections, duration_s, max_requests, timeout_s)
    return asyncio.run(_run_python(url, workload, connections, duration_s, max_requests, timeout_s))


# --------------------------------------------------------------------------------------------- wrk

_LUA = r"""
local cfg = {cfg}
wrk.method = cfg.method
wrk.path = cfg.path
if cfg.content_type ~= "" then wrk.headers["Content-Type"] = cfg.content_type end
for k, v in pairs(cfg.headers) do wrk.headers[k] = v end

local threads = {{}}
function setup(thread)
  table.insert(threads, thread)
end

-- wrk's main thread sleeps the whole -d duration even when every thread stopped on the request
-- count, so each thread records when it started and when it stopped (microseconds).
local ffi = require("ffi")
ffi.cdef[[
typedef struct {{ long tv_sec; long tv_usec; }} joi_timeval;
int gettimeofday(joi_timeval *tv, void *tz);
]]
local tv = ffi.new("joi_timeval")
local function now_us()
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) * 1000000 + tonumber(tv.tv_usec)
end

local items = {{}}
-- wrk calls request() once to verify the script before it connects: that call gets n = -1, never sent.
local n = -1
answered = 0
bad = 0
first_bad = 0
started_us = 0
stopped_us = 0

function init(args)
  started_us = now_us()
  if cfg.datafile ~= "" then
    for line in io.lines(cfg.datafile) do items[#items + 1] = line end
  end
end

function request()
  local body = nil
  if cfg.kind == "batch" then
    body = '{{"smartMeterId":"' .. cfg.prefix .. n .. '","electricityReadings":' .. items[(n % #items) + 1] .. '}}'
  elseif cfg.kind == "single" then
    local k = (n * 7919) % 100000
    body = string.format('{{"smartMeterId":"%s%d","electricityReadings":[{{"time":%d,"reading":%d.%03d}}]}}',
      cfg.prefix, n % cfg.meters, cfg.base + math.floor(n / cfg.meters) * cfg.step, math.floor(k / 1000), k % 1000)
  elseif cfg.kind == "lines" then
    body = items[(n % #items) + 1]
  elseif cfg.body ~= "" then
    body = cfg.body
  end
  n = n + 1
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  answered = answered + 1
  if status < 200 or status > 299 then
    bad = bad + 1
    if first_bad == 0 then first_bad = status end
  end
  if answered >= cfg.max_requests and stopped_us == 0 then
    stopped_us = now_us()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local b, fb, duration = 0, 0, summary.duration
  for _, t in ipairs(threads) do
    b = b + t:get("bad")
    if fb == 0 then fb = t:get("first_bad") end
    if t:get("stopped_us") > 0 then duration = t:get("stopped_us") - t:get("started_us") end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {{"requests":%d,"duration_us":%d,"errors":%d,"bad":%d,"first_bad":%d,' ..
    '"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%f}}\n',
    summary.requests, duration, e.connect + e.read + e.write + e.timeout, b, fb,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal for our inputs


def _run_wrk(wrk, url, workload, connections, duration_s, max_requests, timeout_s) -> LoadResult:
    with tempfile.TemporaryDirectory(prefix="joi-wrk-") as tmp:
        datafile = ""
        lines = workload.sets if workload.kind == "batch" else [b.decode() for b in workload.bodies]
        if workload.kind in ("batch", "lines"):
            if any("\n" in line for line in lines):
                raise ValueError("workload lines must not contain newlines")
            datafile = str(Path(tmp) / "items.txt")
            Path(datafile).write_text("\n".join(lines) + "\n")
        headers = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in workload.headers.items())
        cfg = (
            "{"
            f"kind = {_lua_string(workload.kind)}, method = {_lua_string(workload.method)}, "
            f"path = {_lua_string(workload.path)}, content_type = {_lua_string(workload.content_type or '')}, "
            f"headers = {{{headers}}}, prefix = {_lua_string(workload.prefix)}, meters = {workload.meters}, "
            f"base = {workload.base}, step = {workload.step}, max_requests = {max_requests}, "
            f"datafile = {_lua_string(datafile)}, body = {_lua_string((workload.body_fixed or b'').decode())}"
            "}"
        )
        script = Path(tmp) / "load.lua"
        script.write_text(_LUA.format(cfg=cfg))
        command = [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(duration_s))}s",
            f"--timeout={max(1, round(timeout_s))}s",
            "-s",
            str(script),
            url,
        ]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + timeout_s + 60)
    line = next((ln for ln in completed.stdout.splitlines() if ln.startswith("BENCHJSON ")), None)
    if line is None:
        raise RuntimeError(
            f"wrk failed ({completed.returncode}): {completed.stdout[-2000:]} {completed.stderr[-2000:]}"
        )
    data = json.loads(line.split(" ", 1)[1])
    return LoadResult(
        tool="wrk",
        requests=data["requests"],
        bad_status=data["bad"],
        first_bad_status=data["first_bad"] or None,
        socket_errors=data["errors"],
        duration_s=data["duration_us"] / 1e6,
        latency_ms={key: data[key] / 1000 for key in ("p50", "p90", "p99", "max", "mean")},
        connections=connections,
    )


# ---------------------------------------------------------------------------------- python fallback


async def _run_python(url, workload, connections, duration_s, max_requests, timeout_s) -> LoadResult:
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname, parts.port or 80
    head = [f"{workload.method} {workload.path} HTTP/1.1", f"Host: {host}:{port}"]
    if workload.content_type:
        head.append(f"Content-Type: {workload.content_type}")
    head += [f"{k}: {v}" for k, v in workload.headers.items()]
    latencies: list[float] = []
    state = {"next": 0, "answered": 0, "bad": 0, "first_bad": None, "errors": 0}
    start = time.perf_counter()
    deadline = start + duration_s

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while state["answered"] < max_requests and time.perf_counter() < deadline:
                n = state["next"]
                state["next"] += 1
                body = workload.body(n) or b""
                request = "\r\n".join([*head, f"Content-Length: {len(body)}", "", ""]).encode() + body
                sent = time.perf_counter()
                writer.write(request)
                try:
                    status = await asyncio.wait_for(_read_response(reader), timeout_s)
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    state["errors"] += 1
                    return
                latencies.append(time.perf_counter() - sent)
                state["answered"] += 1
                if not 200 <= status <= 299:
                    state["bad"] += 1
                    state["first_bad"] = state["first_bad"] or status
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)), return_exceptions=False)
    duration = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000 if latencies else 0.0

    return LoadResult(
        tool="python",
        requests=state["answered"],
        bad_status=state["bad"],
        first_bad_status=state["first_bad"],
        socket_errors=state["errors"],
        duration_s=duration,
        latency_ms={
            "p50": pct(50),
            "p90": pct(90),
            "p99": pct(99),
            "max": latencies[-1] * 1000 if latencies else 0.0,
            "mean": sum(latencies) / len(latencies) * 1000 if latencies else 0.0,
        },
        connections=connections,
    )


async def _read_response(reader: asyncio.StreamReader) -> int:
    status_line = await reader.readuntil(b"\r\n")
    status = int(status_line.split()[1])
    length, chunked = 0, False
    while True:
        line = await reader.readuntil(b"\r\n")
        if line == b"\r\n":
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status
