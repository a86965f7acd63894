"""Jobs for the worker-process tests: imported by the workers the tests start (`worker.py tests.support.queue_jobs`).

QUEUE_TEST_LOG names a file; `tick` appends "<worker pid> <time>" to it every QUEUE_TEST_SECONDS seconds.
"""

from __future__ import annotations

import os
import time

from tasks import every, huey


@huey.task()
def tick() -> None:
    with open(os.environ["QUEUE_TEST_LOG"], "a") as log:
        log.write(f"{os.getpid()} {time.time():.3f}\n")


@huey.task()
def write_marker(path: str, text: str) -> None:
    with open(path, "w") as marker:
        marker.write(text)


if os.environ.get("QUEUE_TEST_LOG"):
    every(float(os.environ.get("QUEUE_TEST_SECONDS", "1")), tick)
