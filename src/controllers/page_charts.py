"""Chart specs for the pages: plain dicts that templates embed as JSON ({{ chart(id, title, spec) }} in
macros.html) and static/js/charts.js draws with Chart.js. Times go out as epoch milliseconds, drawn with UTC ticks.

A spec: {"kind": "line"|"bar", "series": [{"name", "x", "y", ...}], "x_title", "y_title", "y_unit",
"x_type", "zoomable", "stacked", "annotations", "empty_text"}. A bar series may carry per-bar "colors",
"outlines" and "text" (e.g. to mark the recommended and the current plan).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

MAX_POINTS_PER_LINE = 2000


@dataclass
class Series:
    name: str
    x: Sequence
    y: Sequence
    extra: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        if len(self.x) != len(self.y):
            raise ValueError(f"series {self.name!r}: {len(self.x)} x values but {len(self.y)} y values")
        return {"name": self.name, "x": list(self.x), "y": list(self.y), **self.extra}


def line_chart(
    series: Sequence[Series],
    *,
    y_title: str,
    y_unit: str = "",
    x_title: str = "time (UTC)",
    zoomable: bool = False,
    step: bool = False,
    empty_text: str = "No data in this window.",
) -> dict:
    lines = [s.as_json() for s in series]
    for line in lines:
        if len(line["x"]) > MAX_POINTS_PER_LINE:
            raise ValueError(f"series {line['name']!r} has {len(line['x'])} points; reduce it on the server first")
        if step:
            line["shape"] = "hv"
    return {
        "kind": "line",
        "series": lines,
        "x_title": x_title,
        "x_type": "date",
        "y_title": y_title,
        "y_unit": y_unit,
        "zoomable": zoomable,
        "empty_text": empty_text,
    }


def bar_chart(
    series: Sequence[Series],
    *,
    y_title: str,
    y_unit: str = "",
    x_title: str = "",
    x_type: str = "category",
    stacked: bool = False,
    empty_text: str = "No data in this window.",
) -> dict:
    return {
        "kind": "bar",
        "series": [s.as_json() for s in series],
        "x_title": x_title,
        "x_type": x_type,
        "y_title": y_title,
        "y_unit": y_unit,
        "stacked": stacked,
        "zoomable": False,
        "empty_text": empty_text,
    }


def epoch_ms(seconds: int | float) -> int:
    return int(seconds * 1000)
