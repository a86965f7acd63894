"""Browser tests: the real service (uvicorn, as `make run` serves it) on a temporary database, driven by
Playwright for Python in Debian's headless Chromium (/usr/bin/chromium; CI installs it, `.ci/run`). Playwright's
own browser downloads are never used.

Fixtures:
- `live_server` (one per test module): `.url`, `.database_url`, `.user(name, admin=False)` makes an account
  (through /auth/register; an admin as `make admin` would) and returns a `WebUser` (username, password, token).
- `browser` (one per test module): the Chromium instance; every test module is skipped when it is absent.
  Playwright is started and stopped with each module because while its sync API runs, the asyncio loop it
  drives stays marked running in the main thread: a session-long Playwright made every later test's
  asyncio.run() fail ("cannot be called from a running event loop").
- `page` (per test): a fresh browser context at desktop width. Every console error, uncaught page error,
  failed request and answer >= 400 is recorded; the test fails at teardown if any was seen, unless it is in
  `page.problems.allowed` (substrings of the recorded line). `phone_page` is the same at a phone's width.
- `shoot(page, name)`: a full-page screenshot `<name>.png` in the test's tmp folder (returned as a Path); with
  SCREENSHOT_DIR set, also copied there (how docs/screenshots/ were made).
- `log_in(page, live_server, user)`: logs in through the login form and waits for the page it leads to.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "browser-test-password"

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - requirements-dev.txt installs it
    sync_playwright = None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class WebUser:
    id: int
    username: str
    password: str
    token: str
    is_admin: bool


@dataclass
class LiveServer:
    url: str
    database_url: str
    process: subprocess.Popen
    log_path: Path

    def api(self, method: str, path: str, json_body=None, headers: dict | None = None) -> tuple[int, bytes]:
        import json

        data = None if json_body is None else json.dumps(json_body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers or {})
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def user(self, username: str, *, admin: bool = False) -> WebUser:
        import json

        body = {"username": username, "email": f"{username}@example.com", "password": PASSWORD}
        status, answer = self.api("POST", "/auth/register", body)
        assert status == 201, answer
        registered = json.loads(answer)
        if admin:
            self.with_database(lambda: _make_admin(registered["user"]["id"]))
        return WebUser(registered["user"]["id"], username, PASSWORD, registered["token"], admin)

    def with_database(self, work):
        """Runs `work()` with the repository layer opened on the server's database (to seed what no API makes)."""
        from repository import db

        db.open_database(self.database_url)
        db.connect()
        try:
            return work()
        finally:
            db.close_all()


def _make_admin(user_id: int) -> None:
    from repository import users as users_repo

    users_repo.make_admin(user_id)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory, request):
    folder = tmp_path_factory.mktemp("live")
    database_url = f"sqlite:///{folder / 'pages.sqlite3'}"
    port = _free_port()
    log_path = folder / "server.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEMO": "0",
        "REDIS_URL": "",
        "METRICS_ENABLED": "0",
        "QUEUE_SQLITE_PATH": str(folder / "huey.sqlite3"),
        **getattr(request.module, "SERVER_ENV", {}),
    }
    env.pop("SECRET_KEY", None)  # the generated-and-kept key is what a first start uses
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(ROOT / "src"), "--factory", "app:create_app",
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = LiveServer(f"http://127.0.0.1:{port}", database_url, process, log_path)
    try:
        _wait_until_up(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_until_up(server: LiveServer) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"the server exited: {server.log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(server.url + "/health", timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"the server did not come up: {server.log_path.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def browser():
    if sync_playwright is None:
        pytest.skip("playwright is not installed (pip install -r requirements-dev.txt)")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium (CI's .ci/run does)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield instance
        instance.close()


@dataclass
class Problems:
    seen: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)

    def unexpected(self) -> list[str]:
        return [line for line in self.seen if not any(allowed in line for allowed in self.allowed)]


def _watched_page(browser, live_server, **context_options):
    context = browser.new_context(base_url=live_server.url, **context_options)
    page = context.new_page()
    problems = Problems()
    page.on("console", lambda message: message.type == "error" and problems.seen.append(f"console: {message.text}"))
    page.on("pageerror", lambda error: problems.seen.append(f"page error: {error}"))
    page.on("requestfailed", lambda req: problems.seen.append(f"failed: {req.method} {req.url} {req.failure}"))
    page.on(
        "response",
        lambda response: (
            response.status >= 400
            and problems.seen.append(f"HTTP {response.status}: {response.request.method} {response.url}")
        ),
    )
    page.problems = problems
    return context, page


def _closing(context, page):
    unexpected = page.problems.unexpected()
    context.close()
    assert unexpected == [], "the page had problems:\n" + "\n".join(unexpected)


@pytest.fixture
def page(browser, live_server):
    context, page = _watched_page(browser, live_server, viewport={"width": 1280, "height": 900})
    yield page
    _closing(context, page)


@pytest.fixture
def phone_page(browser, live_server):
    context, page = _watched_page(
        browser, live_server, viewport={"width": 390, "height": 844}, device_scale_factor=1, is_mobile=True
    )
    yield page
    _closing(context, page)


@pytest.fixture
def shoot(tmp_path):
    def take(page, name: str) -> Path:
        path = tmp_path / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        target = os.environ.get("SCREENSHOT_DIR")
        if target:
            Path(target).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(target) / path.name)
        return path

    return take


def log_in(page, user: WebUser, next_path: str = "/") -> None:
    page.goto(f"/login?next={next_path}")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{next_path}")


@pytest.fixture(name="log_in")
def log_in_fixture():
    return log_in


def wait_for_charts(page, count: int, timeout_ms: int = 15_000) -> dict[str, int]:
    """Waits until `count` charts have drawn; answers {chart id: series drawn} (charts.js sets data-series-drawn)."""
    page.wait_for_function(
        "n => document.querySelectorAll('figure[data-chart][data-series-drawn]').length >= n", arg=count,
        timeout=timeout_ms,
    )  # fmt: skip
    return page.eval_on_selector_all(
        "figure[data-chart]",
        "figures => Object.fromEntries(figures.map(f => [f.dataset.chart, Number(f.dataset.seriesDrawn ?? -1)]))",
    )


PAINTED_DATASETS = """id => {
  const canvas = document.querySelector(`#${id}-area canvas`);
  const chart = canvas && Chart.getChart(canvas);
  if (!chart) return -1;
  const area = chart.chartArea, ratio = chart.currentDevicePixelRatio;
  const left = Math.floor(area.left * ratio), top = Math.floor(area.top * ratio);
  const width = Math.ceil((area.right - area.left) * ratio), height = Math.ceil((area.bottom - area.top) * ratio);
  const pixels = canvas.getContext('2d').getImageData(left, top, width, height).data;
  const rgb = color => { const c = document.createElement('canvas').getContext('2d'); c.fillStyle = color;
    c.fillRect(0, 0, 1, 1); return Array.from(c.getImageData(0, 0, 1, 1).data.slice(0, 3)); };
  return chart.data.datasets.filter((dataset, index) => {
    const colors = [].concat(chart.getDatasetMeta(index).type === 'bar' ? dataset.backgroundColor : dataset.borderColor)
      .map(rgb);
    let seen = 0;
    const near = (c, at) =>
      Math.abs(c[0] - pixels[at]) + Math.abs(c[1] - pixels[at + 1]) + Math.abs(c[2] - pixels[at + 2]) < 12;
    for (let at = 0; at < pixels.length && seen < 20; at += 4) {
      if (pixels[at + 3] >= 250 && colors.some(c => near(c, at))) seen++;
    }
    return seen >= 20;
  }).length;
}"""


def painted_datasets(page, chart_id: str) -> int:
    """How many of a chart's Chart.js datasets (a line, or a group of bars) show on its canvas: at least 20
    pixels of the plot area in that dataset's colour. -1 when the figure has no Chart.js chart."""
    return page.evaluate(PAINTED_DATASETS, chart_id)


def chart_data(page, chart_id: str, expression: str = "chart.data"):
    """`expression` evaluated on the figure's Chart.js instance (named `chart`)."""
    find = "const chart = Chart.getChart(document.querySelector(`#${id}-area canvas`));"
    return page.evaluate(f"id => {{ {find} return {expression}; }}", chart_id)


def drag_across(page, chart_id: str, start: float, end: float) -> None:
    """A mouse drag across a chart's plot area, from one x value to another (in the x axis' units)."""
    pixels = page.evaluate(
        """([id, start, end]) => {
          const canvas = document.querySelector(`#${id}-area canvas`), chart = Chart.getChart(canvas);
          const box = canvas.getBoundingClientRect(), area = chart.chartArea, x = chart.scales.x;
          return {from: box.left + x.getPixelForValue(start), to: box.left + x.getPixelForValue(end),
                  y: box.top + (area.top + area.bottom) / 2};
        }""",
        [chart_id, start, end],
    )
    page.mouse.move(pixels["from"], pixels["y"])
    page.mouse.down()
    page.mouse.move(pixels["to"], pixels["y"], steps=5)
    page.mouse.up()
