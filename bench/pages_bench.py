"""Section 11: the web pages' load time with a week of one-minute readings, in headless Chromium.

    .venv/bin/python bench/pages_bench.py          # prints the figures
    results = measure(runs=5)

The demo week (a reading a minute for each of five meters, `python src/cli.py demo`) on a scratch SQLite
database; our service under uvicorn; Debian's /usr/bin/chromium driven by Playwright. Per page, the median of
`runs` loads of: the server's time for the HTML (Navigation Timing responseEnd - requestStart), the load event,
the first contentful paint (the page's text and tables shown; the chart scripts are deferred), the load event, the
moment every chart has drawn (the "charts-drawn" User Timing mark charts.js sets in the frame after drawing; without
it, the first poll that sees every data-series-drawn, which lags by the poll's round trip) and the page's main-thread
CPU time (Chrome's TaskDuration: what the page costs, apart from waiting for a loaded machine's cores), once with an
empty cache and then warm (the chart library cached, as after a first visit: its URL is immutable). Target: the
first visit under 1 s.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import servers

CHROMIUM = "/usr/bin/chromium"
PAGES = {
    "JOI meter, last week (10,080 readings)": ("/dashboard/meters/smart-meter-0", 3),
    "JOI meters list": ("/dashboard/meters", 0),
    "OMS devices": ("/dashboard/oms", 0),
    "start page": ("/", 0),
}
TIMING = """() => {
  const n = performance.getEntriesByType('navigation')[0];
  const mark = performance.getEntriesByName('charts-drawn')[0];
  return {server: n.responseEnd - n.requestStart, load: n.loadEventEnd,
          drawn: mark ? mark.startTime : window.__chartsDrawnAt ?? null};
}"""
WAIT_DRAWN = """n => {
  const drawn = document.querySelectorAll('figure[data-chart][data-series-drawn]').length >= n;
  if (drawn && window.__chartsDrawnAt === undefined) window.__chartsDrawnAt = performance.now();
  return drawn;
}"""


def _load_demo(database_url: str) -> None:
    env = servers.base_env(DATABASE_URL=database_url, DEMO="1")
    subprocess.run(
        [sys.executable, str(servers.SRC / "cli.py"), "demo"], cwd=servers.ROOT, env=env, check=True, timeout=600
    )


def _one_load(context, url: str, charts: int) -> dict:
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto(url, wait_until="load")
    if charts:
        page.wait_for_function(WAIT_DRAWN, arg=charts, polling=10, timeout=30_000)
    timing = page.evaluate(TIMING)
    metrics = {metric["name"]: metric["value"] for metric in cdp.send("Performance.getMetrics")["metrics"]}
    timing["cpu"] = metrics.get("TaskDuration", 0.0) * 1000  # main-thread busy time, whatever the machine's load
    timing["paint"] = page.evaluate(
        "() => (performance.getEntriesByName('first-contentful-paint')[0] || {startTime: null}).startTime"
    )
    page.close()
    if errors:
        raise RuntimeError(f"{url}: console errors {errors}")
    return timing


def measure(runs: int = 5) -> list[dict]:
    from playwright.sync_api import sync_playwright

    results = []
    with servers.scratch_database() as database_url:
        _load_demo(database_url)
        with servers.app_server(database_url, workers=1) as server, sync_playwright() as playwright:
            for what, (path, charts) in PAGES.items():
                cold, warm = [], []
                for _ in range(runs):
                    # A browser profile on disk, as a person's: the second visit has the library in the HTTP
                    # cache and V8's code cache (which in-memory contexts do not keep).
                    with tempfile.TemporaryDirectory(prefix="joi-pages-profile-") as profile:
                        context = playwright.chromium.launch_persistent_context(
                            profile, executable_path=CHROMIUM, headless=True, args=["--no-sandbox"],
                            viewport={"width": 1280, "height": 900},
                        )  # fmt: skip
                        cold.append(_one_load(context, server.url + path, charts))
                        _one_load(context, server.url + path, charts)  # V8 caches code from the second run on
                        warm.append(_one_load(context, server.url + path, charts))
                        context.close()
                results.append({"what": what, "path": path, "charts": charts, "cold": cold, "warm": warm})
    return results


def median(loads: list[dict], key: str) -> float | None:
    values = [load[key] for load in loads if load[key] is not None]
    return statistics.median(values) if values else None


def _ms(value: float | None) -> str:
    # A page may report no first-contentful-paint entry (Chromium leaves it out when it painted before
    # the entry was buffered), so a missing figure is shown rather than failing the section.
    return "n/a" if value is None else f"{value:.0f} ms"


def summary(result: dict) -> str:
    parts = []
    for name in ("cold", "warm"):
        loads = result[name]
        drawn = median(loads, "drawn")
        text = f"{name}: HTML {_ms(median(loads, 'server'))}, first paint {_ms(median(loads, 'paint'))}"
        text += f", load {_ms(median(loads, 'load'))}"
        text += f", charts drawn {_ms(drawn)}" if drawn is not None else ""
        parts.append(text + f", main-thread CPU {_ms(median(loads, 'cpu'))}")
    return "; ".join(parts)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    for result in measure():
        print(f"{result['what']:<42} {summary(result)}")
