"""A queue worker: huey's consumer for `tasks.huey`, with huey's own periodic scheduler off (the lease
scheduler in tasks.py replaces it).

    python src/worker.py [-w THREADS] [-k thread|process] [-v] [MODULE ...]

huey's consumer options work as in `huey_consumer`; threads default to WORKER_THREADS (4) and the idle
polling delay to at most half a second. MODULEs are imported before the consumer starts (modules that
register more tasks or periodic jobs)."""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT.parent))

from huey.consumer_options import ConsumerConfig, OptionParserHandler  # noqa: E402

MAX_IDLE_DELAY_SECONDS = 0.5


def main(argv: list[str] | None = None) -> None:
    import tasks

    options, modules = OptionParserHandler().get_option_parser().parse_args(argv)
    for module in modules:
        importlib.import_module(module)
    values = {key: value for key, value in options.__dict__.items() if value is not None}
    values.setdefault("workers", tasks.settings.worker_threads)
    values.setdefault("max_delay", MAX_IDLE_DELAY_SECONDS)
    values["periodic"] = False
    config = ConsumerConfig(**values)
    config.validate()
    config.setup_logger(logging.getLogger())
    tasks.huey.create_consumer(**config.values).run()


if __name__ == "__main__":
    main()
