"""P1 telegram parse rate: our single-pass parser against dsmr-parser's TelegramParser(V5).

Both parse the same generated DSMR v5 telegrams with a gas channel, CRC checked, in one run.

    .venv/bin/python bench/telegram_parse.py [--seconds N] [--telegrams N]

`measure(seconds)` returns the numbers as a dict for other benchmark drivers.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _path in (str(ROOT / "src"), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from domain.telegram import parse_telegram  # noqa: E402
from tests.support.telegrams import make_telegram  # noqa: E402


def v5_telegrams_with_gas(count: int, seed: int = 2024) -> list[str]:
    rng = random.Random(seed)
    return [make_telegram("v5", rng, second_channel=None) for _ in range(count)]


def _rate(parse: Callable[[str], object], telegrams: list[str], seconds: float) -> dict:
    """Parse the batch over and over until `seconds` have passed (at least once); telegrams per second."""
    parsed = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        for telegram in telegrams:
            parse(telegram)
        parsed += len(telegrams)
        now = time.perf_counter()
        if now >= deadline:
            break
    elapsed = now - started
    return {
        "telegrams": parsed,
        "seconds": round(elapsed, 3),
        "telegrams_per_second": round(parsed / elapsed),
        "microseconds_per_telegram": round(elapsed / parsed * 1e6, 2),
    }


def _dsmr_parser() -> Callable[[str], object] | None:
    try:
        from dsmr_parser import telegram_specifications
        from dsmr_parser.parsers import TelegramParser
    except ImportError:
        return None
    return TelegramParser(telegram_specifications.V5).parse


def measure(seconds: float = 4.0, telegrams: int = 200) -> dict:
    """Split `seconds` between the two parsers; dsmr-parser is skipped (None) when not installed."""
    batch = v5_telegrams_with_gas(telegrams)
    reference = _dsmr_parser()
    budget = seconds / 2 if reference else seconds
    for telegram in batch:  # the parsers must agree the telegrams are valid before they are timed
        parse_telegram(telegram)
        if reference:
            reference(telegram)
    ours = _rate(parse_telegram, batch, budget)
    theirs = _rate(reference, batch, budget) if reference else None
    return {
        "benchmark": "telegram_parse",
        "telegram": "DSMR v5 with gas, CRC checked",
        "average_bytes": round(sum(map(len, batch)) / len(batch)),
        "ours": ours,
        "dsmr_parser": theirs,
        "speedup": round(ours["telegrams_per_second"] / theirs["telegrams_per_second"], 1) if theirs else None,
    }


def _report(result: dict) -> str:
    lines = [f"{result['telegram']}, {result['average_bytes']} bytes on average"]
    for name, key in (("domain.telegram", "ours"), ("dsmr-parser V5", "dsmr_parser")):
        numbers = result[key]
        if numbers is None:
            lines.append(f"  {name:16} not installed")
            continue
        lines.append(
            f"  {name:16} {numbers['telegrams_per_second']:>9,} telegrams/s  "
            f"{numbers['microseconds_per_telegram']:>8.1f} µs/telegram  ({numbers['telegrams']:,} parsed)"
        )
    if result["speedup"]:
        lines.append(f"  speedup          {result['speedup']}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--seconds", type=float, default=4.0, help="total time for both parsers (default 4)")
    arguments.add_argument("--telegrams", type=int, default=200, help="distinct telegrams in the batch")
    options = arguments.parse_args(argv)
    print(_report(measure(options.seconds, options.telegrams)))


if __name__ == "__main__":
    main()
