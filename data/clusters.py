"""Issues aggregated on the server, for maps that must stay light at city scale.

Points are grouped into square cells of a size chosen from the map zoom (about 60 screen
pixels), in the database: one GROUP BY returns a few hundred rows instead of 100,000
features. The same SQL runs on both backends.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from data import repository as repo
from data.models import Issue
from geo.issues import OPEN_STATUSES, STATUSES

CELL_PIXELS = 60  # a cluster per ~60 px square on screen


def cell_degrees(zoom: int) -> float:
    """Cell size in degrees of longitude for a Web-Mercator zoom level."""
    return 360.0 / (256 * 2**zoom) * CELL_PIXELS


def issue_clusters(
    session: Session, bbox: tuple[float, float, float, float], zoom: int, now: dt.datetime,
    statuses: list[str] | None = None, categories: list[str] | None = None, department: str | None = None,
    reported_from: dt.datetime | None = None, reported_before: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """Clusters in the box: centre, counts (all, open, overdue, per status), the cell's box,
    and the issue's id when a cluster holds one issue."""
    if not 0 <= zoom <= 22:
        raise ValueError(f"zoom {zoom} is out of range: use 0 to 22")
    unknown = sorted(set(statuses or ()) - set(STATUSES))
    if unknown:
        raise ValueError(f"unknown status {', '.join(unknown)}: use {', '.join(STATUSES)}")
    size = cell_degrees(zoom)
    x, y = func.ST_X(Issue.geom), func.ST_Y(Issue.geom)
    col, row = func.floor(x / size), func.floor(y / size)
    conditions = [Issue.geom.is_not(None), repo.dialect_for(session).bbox_filter(Issue.__table__, bbox)]
    if statuses:
        conditions.append(Issue.status.in_(statuses))
    if categories:
        conditions.append(Issue.category.in_(categories))
    if department:
        conditions.append(Issue.department_code == department)
    if reported_from is not None:
        conditions.append(Issue.created_at >= reported_from)
    if reported_before is not None:
        conditions.append(Issue.created_at < reported_before)
    is_open = Issue.status.in_(sorted(OPEN_STATUSES))
    overdue = and_(is_open, Issue.due_at.is_not(None), Issue.due_at < now)
    query = (
        select(
            func.count(), func.avg(x), func.avg(y),
            func.sum(case((is_open, 1), else_=0)), func.sum(case((overdue, 1), else_=0)),
            func.min(Issue.id), func.min(col), func.min(row),
            *(func.sum(case((Issue.status == status, 1), else_=0)) for status in STATUSES),
        )
        .where(and_(*conditions))
        .group_by(col, row)
    )
    clusters = []
    for count, lon, lat, open_count, overdue_count, first_id, i, j, *by_status in session.execute(query):
        clusters.append({
            "count": int(count), "lon": round(float(lon), 7), "lat": round(float(lat), 7),
            "open": int(open_count or 0), "overdue": int(overdue_count or 0),
            "statuses": {s: int(n) for s, n in zip(STATUSES, by_status, strict=True) if n},
            # The cell, so that a client can list the cluster's issues with the same bbox.
            "bbox": [round(v, 9) for v in (i * size, j * size, (i + 1) * size, (j + 1) * size)],
            "issue_id": int(first_id) if count == 1 else None,  # a single issue links to itself
        })
    clusters.sort(key=lambda c: (-c["count"], c["lon"], c["lat"]))
    return clusters


def zoom_for_box(bbox: tuple[float, float, float, float], width_px: int = 1024) -> int:
    """The zoom at which the box's width fills about ``width_px`` pixels."""
    width = max(bbox[2] - bbox[0], 1e-9)
    return max(0, min(22, int(math.log2(360.0 * width_px / (256 * width)))))
