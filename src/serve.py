"""`make run`: the web server and one queue worker as child processes, stopped together.

    python src/serve.py [uvicorn options ...]

Starts `uvicorn --app-dir src --factory app:create_served_app <options>` and, unless WORKER=0, `python
src/worker.py`. SIGINT and SIGTERM are passed on to both; when either child exits, the other is stopped
(SIGTERM, then SIGKILL after STOP_GRACE_SECONDS) and serve exits with the first one's status.

Prometheus counts every process (each uvicorn worker and the queue worker) through one multiprocess
directory: PROMETHEUS_MULTIPROC_DIR when set (emptied at start), otherwise a temporary one made for this
run and removed at its end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The supervisor counts nothing itself: prometheus_client reads the variable at import, so it is taken out
# of this process's environment and handed to the children once the directory exists.
CHOSEN_METRICS_DIR = os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None) or None

import metrics  # noqa: E402

SRC = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
STOP_GRACE_SECONDS = 10
HEADER_TIMEOUT_PROTOCOL = "limits:HeaderTimeoutHttpToolsProtocol"  # README "Limits"
# uvicorn's workers share one listening socket, and the first to wake accepted every connection waiting:
# a client's 8 keep-alive connections all landed on one worker in 2 of 5 runs, and one core served them
# while the other idled (half the throughput). libuv (uvloop's loop) then accepts one connection at a
# time and lets the other workers take theirs.
WEB_ENVIRONMENT = {"UV_TCP_SINGLE_ACCEPT": "1"}


def _children(uvicorn_args: list[str]) -> dict[str, subprocess.Popen]:
    web = [str(BIN / "uvicorn"), "--app-dir", str(SRC), "--factory", "app:create_served_app", *uvicorn_args]
    if not any(arg == "--http" or arg.startswith("--http=") for arg in uvicorn_args):
        web += ["--http", HEADER_TIMEOUT_PROTOCOL]  # uvicorn's own has no bound on trickled headers
    children = {"web": subprocess.Popen(web, env={**WEB_ENVIRONMENT, **os.environ})}
    if os.environ.get("WORKER", "1").strip() not in {"0", "false", "no", "off"}:
        children["worker"] = subprocess.Popen([sys.executable, str(SRC / "worker.py")])
    return children


def _stop(children: dict[str, subprocess.Popen], signum: int = signal.SIGTERM) -> None:
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signum)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main(argv: list[str]) -> int:
    metrics_dir = metrics.prepare_multiprocess_dir(CHOSEN_METRICS_DIR)  # before the children: they inherit it
    try:
        return _supervise(argv)
    finally:
        if CHOSEN_METRICS_DIR is None:
            metrics.remove_multiprocess_dir(metrics_dir)


def _supervise(argv: list[str]) -> int:
    children = _children(argv)
    received: list[int] = []

    def forward(signum, _frame):
        received.append(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    while True:
        if received:
            _stop(children, received[0])
            return 0
        exited = [(name, child.returncode) for name, child in children.items() if child.poll() is not None]
        if exited:
            name, code = exited[0]
            print(f"serve: the {name} process exited with status {code}; stopping the others", file=sys.stderr)
            _stop(children)
            return code or 1
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
