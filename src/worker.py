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
    _configure_logging(config, tasks.settings)
    tasks.huey.create_consumer(**config.values).run()


def _configure_logging(consumer: ConsumerConfig, settings) -> None:
    """The service's log format (LOG_FORMAT, request ids, redaction) instead of huey's; `-v` means DEBUG,
    `-q` WARNING, and `-l FILE` writes the same lines to that file too."""
    import logs

    level = settings.log_level if consumer.verbose is None else logging.getLevelName(consumer.loglevel)
    handler = logs.configure_logging(settings.log_format, level)
    if consumer.logfile:
        to_file = logging.FileHandler(consumer.logfile)
        to_file.setFormatter(handler.formatter)
        logging.getLogger().addHandler(to_file)


if __name__ == "__main__":
    main()
