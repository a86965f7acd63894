"""`make run`: the web server and one queue worker as child processes, stopped together.

    python src/serve.py [uvicorn options ...]

Starts `uvicorn --app-dir src --factory app:create_app <options>` and, unless WORKER=0, `python
src/worker.py`. SIGINT and SIGTERM are passed on to both; when either child exits, the other is stopped
(SIGTERM, then SIGKILL after STOP_GRACE_SECONDS) and serve exits with the first one's status.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
STOP_GRACE_SECONDS = 10


def _children(uvicorn_args: list[str]) -> dict[str, subprocess.Popen]:
    web = [str(BIN / "uvicorn"), "--app-dir", str(SRC), "--factory", "app:create_app", *uvicorn_args]
    children = {"web": subprocess.Popen(web)}
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
