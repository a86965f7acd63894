"""Hour pages: a read-optimised copy of the JOI kW samples of past hours, on SQLite.

Why: `GET /readings/read` of a day is 1,440 rows, and Python's sqlite3 module spends about 300 ns making
each row's tuple and numbers, several times what SQLite itself spends stepping to it; that fetch was most
of the request. A page holds one meter's samples of one UTC hour as two packed arrays (int64 times and
float64 readings, little-endian), so a day is 24 rows, decoded by C code.

`meter_samples` stays the storage every writer and every other reader uses; pages are only a copy, made
by the queue worker's `page_sealed_hours` (every minute) for hours that ended PAGE_DELAY_SECONDS ago, so
the write path does no packing. Each meter has a mark (`paged_until`), and the copy is exact by one rule:
every hour before the mark that holds samples has a page equal to them, and no hour from the mark on has
one. So a read takes the hours before the mark from their pages alone (an hour without a page there has no
samples) and the rest from `meter_samples`. A writer that changes an hour before the mark moves the mark
back to that hour and drops the pages from it on, in its own transaction (`forget`); the next paging run
pages them again. An append past the mark, the usual store, costs one UPDATE that matches no row.

PostgreSQL has no pages: its server does the per-row work, and reads there take the rows.
"""

from __future__ import annotations

import bisect
import sys
from array import array
from collections.abc import Iterable

from domain.usage import HOUR, hour_of
from repository.db import database, grouped_write, is_sqlite

PAGE_DELAY_SECONDS = 600  # late samples drop a page again, so this only saves paging an hour twice
ROWS_PER_PAGING_TRANSACTION = 10_000  # above 3,600 (an hour's most samples); keeps the write lock short
_NO_MARK = -(2**63)
_BIG_ENDIAN = sys.byteorder == "big"


def in_use() -> bool:
    return is_sqlite()


# --- encoding ---------------------------------------------------------------------------------------------------


def encode(times: Iterable[int], readings: Iterable[float]) -> tuple[bytes, bytes]:
    packed_times, packed_readings = array("q", times), array("d", readings)
    if _BIG_ENDIAN:
        packed_times.byteswap()
        packed_readings.byteswap()
    return packed_times.tobytes(), packed_readings.tobytes()


def decode(times: bytes, readings: bytes) -> tuple[array, array]:
    unpacked_times, unpacked_readings = array("q"), array("d")
    unpacked_times.frombytes(times)
    unpacked_readings.frombytes(readings)
    if _BIG_ENDIAN:
        unpacked_times.byteswap()
        unpacked_readings.byteswap()
    return unpacked_times, unpacked_readings


# --- reading ----------------------------------------------------------------------------------------------------

_WINDOW_SQL = (
    # One statement, so pages and rows come from one snapshot (a write between two would tear the answer);
    # SQLite merges the two index-ordered halves for the ORDER BY, sorting nothing.
    "SELECT hour_start, times, readings, hour_start FROM sample_pages WHERE meter_key = ?1 AND hour_start >= ?2"
    " AND hour_start <= ?4"
    ' UNION ALL SELECT NULL, "time", reading, "time" FROM meter_samples WHERE meter_key = ?1'
    ' AND "time" >= MAX(?3, COALESCE((SELECT paged_until FROM sample_page_marks WHERE meter_key = ?1), ?3))'
    ' AND "time" <= ?4 ORDER BY 4'
)


def window(meter_key: int, start: int, end: int) -> list[tuple[int, float]]:
    """The meter's samples with start <= time <= end, sorted by time, as (time, kW) pairs."""
    pairs: list[tuple[int, float]] = []
    for hour_start, times, readings, _ in database.execute_sql(_WINDOW_SQL, (meter_key, hour_of(start), start, end)):
        if hour_start is None:  # a row of meter_samples, from the mark on: `times` is its time, `readings` its kW
            pairs.append((times, readings))
            continue
        page_times, page_readings = decode(times, readings)
        low = 0 if hour_start >= start else bisect.bisect_left(page_times, start)
        high = len(page_times) if hour_start + HOUR - 1 <= end else bisect.bisect_right(page_times, end)
        pairs.extend(zip(page_times[low:high], page_readings[low:high], strict=True))
    return pairs


# --- keeping pages exact (called by every writer of meter_samples, in its transaction) -------------------------


def forget(meter_key: int, first_time: int) -> None:
    """Samples of the meter from first_time on were written or deleted: move its mark back to their first
    hour if it lies past it, and drop the pages from there on."""
    if not in_use():
        return
    first_hour = hour_of(first_time)
    moved = database.execute_sql(
        "UPDATE sample_page_marks SET paged_until = ? WHERE meter_key = ? AND paged_until > ?",
        (first_hour, meter_key, first_hour),
    ).rowcount
    if moved:
        database.execute_sql(
            "DELETE FROM sample_pages WHERE meter_key = ? AND hour_start >= ?", (meter_key, first_hour)
        )


def forget_meter(meter_key: int) -> None:
    if not in_use():
        return
    database.execute_sql("DELETE FROM sample_pages WHERE meter_key = ?", (meter_key,))
    database.execute_sql("DELETE FROM sample_page_marks WHERE meter_key = ?", (meter_key,))


# --- paging (the queue worker, every minute) --------------------------------------------------------------------


def page_sealed_hours(now: int) -> int:
    """Page every meter's hours that ended PAGE_DELAY_SECONDS before `now` and have no page yet. Returns how
    many samples were paged. Each transaction pages at most ROWS_PER_PAGING_TRANSACTION samples."""
    if not in_use():
        return 0
    sealed = hour_of(now - PAGE_DELAY_SECONDS)
    paged = 0
    for (meter_key,) in database.execute_sql(
        "SELECT meters.meter_key FROM meters LEFT JOIN sample_page_marks AS mark USING (meter_key)"
        ' WHERE EXISTS (SELECT 1 FROM meter_samples WHERE meter_samples.meter_key = meters.meter_key AND "time" >= '
        ' COALESCE(mark.paged_until, ?) AND "time" < ?)',
        (_NO_MARK, sealed),
    ).fetchall():
        while True:
            count, done = grouped_write(lambda key=meter_key: _page_some(key, sealed))
            paged += count
            if done:
                break
    return paged


def _page_some(meter_key: int, sealed: int) -> tuple[int, bool]:
    """One transaction's worth of the meter's unpaged hours from its mark (read again under the write lock)
    to `sealed`: (samples paged, whether it reached `sealed`)."""
    row = database.execute_sql("SELECT paged_until FROM sample_page_marks WHERE meter_key = ?", (meter_key,)).fetchone()
    mark = _NO_MARK if row is None else row[0]
    if mark >= sealed:
        return 0, True
    rows = database.execute_sql(
        'SELECT "time", reading FROM meter_samples WHERE meter_key = ? AND "time" >= ? AND "time" < ?'
        ' ORDER BY "time" LIMIT ?',
        (meter_key, mark, sealed, ROWS_PER_PAGING_TRANSACTION + 1),
    ).fetchall()
    reached = sealed
    if len(rows) > ROWS_PER_PAGING_TRANSACTION:
        reached = hour_of(rows[-1][0])  # that hour may go on past the rows read: the next transaction's
        rows = rows[: bisect.bisect_left(rows, (reached,))]
    new_pages = []
    index = 0
    while index < len(rows):
        hour = hour_of(rows[index][0])
        end = bisect.bisect_left(rows, (hour + HOUR,), index)
        times, readings = zip(*rows[index:end], strict=True)
        new_pages.append((meter_key, hour, *encode(times, readings)))
        index = end
    if new_pages:
        # No page lies past the mark; were one left there anyway, this one, made from the rows, is right.
        database.cursor().executemany("INSERT OR REPLACE INTO sample_pages VALUES (?, ?, ?, ?)", new_pages)
    database.execute_sql(
        "INSERT INTO sample_page_marks (meter_key, paged_until) VALUES (?, ?)"
        " ON CONFLICT (meter_key) DO UPDATE SET paged_until = excluded.paged_until",
        (meter_key, reached),
    )
    return sum(len(page[2]) // 8 for page in new_pages), reached == sealed


# --- verifying ---------------------------------------------------------------------------------------------------


def differences(meter_key: int) -> list[str]:
    """How the meter's pages and mark break the rule above (each a line)."""
    if not in_use():
        return []
    found = []
    pages = {
        hour: decode(times, readings)
        for hour, times, readings in database.execute_sql(
            "SELECT hour_start, times, readings FROM sample_pages WHERE meter_key = ?", (meter_key,)
        )
    }
    row = database.execute_sql("SELECT paged_until FROM sample_page_marks WHERE meter_key = ?", (meter_key,)).fetchone()
    mark = _NO_MARK if row is None else row[0]
    by_hour: dict[int, list[tuple[int, float]]] = {}
    for time, reading in database.execute_sql(
        'SELECT "time", reading FROM meter_samples WHERE meter_key = ? ORDER BY "time"', (meter_key,)
    ):
        by_hour.setdefault(hour_of(time), []).append((time, reading))
    for hour in sorted(set(pages) | set(by_hour)):
        stored = by_hour.get(hour, [])
        if hour in pages and hour >= mark:
            found.append(f"hour page {hour} lies at or after the paged mark {mark}")
        elif hour in pages:
            page = list(zip(*pages[hour], strict=True))
            if page != stored:
                found.append(f"hour page {hour}: {len(page)} samples, the hour holds {len(stored)} (or other values)")
        elif hour < mark:
            found.append(f"hour {hour} lies before the paged mark {mark} and has samples but no page")
    return found
