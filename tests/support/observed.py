"""Reading what the service exposes: metric values from a /metrics page, JSON log lines."""

from __future__ import annotations

import json

from prometheus_client.parser import text_string_to_metric_families


def samples(page: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page, by (name, sorted labels); parsed by prometheus_client."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
    }


def value(page: str, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist yet (a counter that never moved)."""
    return samples(page).get((name, tuple(sorted(labels.items()))), 0.0)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]
