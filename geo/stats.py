"""The evaluation figures of the standards (综合评价), per area or department."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from geo.issues import OPEN_STATUSES

STAT_LEVELS = ("grid", "community", "subdistrict", "district", "department")


def issue_stats(rows: Iterable[tuple[Any, ...]], now: dt.datetime) -> list[dict[str, Any]]:
    """Rows of (key, status, created_at, closed_at, due_at, satisfaction) -> figures per key.

    received: all reports; open: not closed or rejected; overdue: open past due, or closed
    after due; on_time_rate: closed by their due time / closed with a due time; median
    handling hours: created to closed; mean satisfaction over scored cases.
    """
    groups: dict[Any, list[tuple[Any, ...]]] = defaultdict(list)
    for row in rows:
        groups[row[0]].append(row)
    items = []
    for key in sorted(groups, key=lambda k: (k is None, k)):
        cases = groups[key]
        closed = [c for c in cases if c[1] == "closed" and c[3] is not None]
        timed = [c for c in closed if c[4] is not None]
        scores = [c[5] for c in cases if c[5] is not None]
        overdue = sum(
            1 for c in cases if c[4] is not None and (
                (c[1] in OPEN_STATUSES and c[4] < now) or (c[1] == "closed" and c[3] is not None and c[3] > c[4]))
        )
        items.append({
            "key": key,
            "received": len(cases),
            "open": sum(1 for c in cases if c[1] in OPEN_STATUSES),
            "overdue": overdue,
            "on_time_rate": round(sum(1 for c in timed if c[3] <= c[4]) / len(timed), 4) if timed else None,
            "median_handling_hours": round(statistics.median((c[3] - c[2]).total_seconds() / 3600 for c in closed), 2) if closed else None,
            "mean_satisfaction": round(statistics.fmean(scores), 2) if scores else None,
        })
    return items
