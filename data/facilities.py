"""Residents' finder: facilities near a point, open at a time, with live free spaces."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple, cast

import numpy as np
import shapely
from sqlalchemy import CursorResult, and_, func, or_, select, update
from sqlalchemy.orm import Session

from data import repository as repo
from data.cases import CaseError, Conflict, NotFound
from data.models import Facility, utcnow
from geo.area_index import metres_per_degree
from geo.opening import Access, FacilityHours, OpeningHoursInvalid
from geo.worktime import CalendarYearMissing, WorkCalendar

MAX_RADIUS_M = 20_000.0
COLUMNS = ("id", "code", "kind", "name", "operator", "access", "capacity", "shared_spaces", "fee",
           "contact", "opening_hours", "hours_text", "tags", "occupied", "occupied_at")


@dataclass(frozen=True)
class NearbyQuery:
    lon: float  # WGS84
    lat: float
    at: dt.datetime
    radius_m: float = 1000.0
    kinds: tuple[str, ...] = ()
    limit: int = 20
    min_free: int | None = None
    include_closed: bool = False


class CalendarDataMissing(CaseError):
    """The official calendar does not cover the asked date: a deployment must add it."""

    status = 503


@lru_cache(maxsize=4096)
def hours_for(expression: str | None, calendar: WorkCalendar) -> FacilityHours:
    """Parsed hours, shared by every facility with the same expression (most share a few).

    A value stored before validation existed, and that no longer parses, counts as no
    hours at all ("unknown"), never as open.
    """
    try:
        return FacilityHours(expression, calendar)
    except OpeningHoursInvalid:
        return FacilityHours(None, calendar)


@lru_cache(maxsize=4096)
def _access_for(access: str | None, rules: tuple[tuple[str, str], ...], calendar: WorkCalendar) -> Access:
    try:
        return Access.from_tags(access, dict(rules), calendar=calendar)
    except OpeningHoursInvalid:
        return Access("no", calendar=calendar)  # an unreadable gate rule: do not send anyone there


def access_for(access: str | None, tags: dict[str, Any] | None, calendar: WorkCalendar) -> Access:
    """Compiled access rules, cached by their content (many facilities share none)."""
    rules = tuple(sorted((k, str(v)) for k, v in (tags or {}).items() if k.startswith("access")))
    return _access_for(access, rules, calendar)


def distances_m(geoms: np.ndarray, lon: float, lat: float) -> np.ndarray:
    """Metres from the point to each geometry (to a polygon's edge; 0 inside it).

    Measured on the WGS84 ellipsoid's tangent plane at the point, as snapping is: good to
    a fraction of a metre within the search radii used here.
    """
    kx, ky = (float(v[0]) for v in metres_per_degree([lat]))
    local = shapely.transform(geoms, lambda c: np.column_stack(((c[:, 0] - lon) * kx, (c[:, 1] - lat) * ky)))
    return shapely.distance(local, shapely.Point(0, 0))


def free_spaces(row: dict[str, Any], now: dt.datetime, max_age_s: float) -> tuple[int | None, float | None]:
    """Free spaces and the reading's age in seconds; None when unknown or stale."""
    if row["occupied"] is None or row["occupied_at"] is None or row["capacity"] is None:
        return None, None
    age = (now - row["occupied_at"]).total_seconds()
    if age > max_age_s:
        return None, age  # a stale count is worse than none: say unknown
    return row["capacity"] - row["occupied"], age


def nearby(session: Session, query: NearbyQuery, calendar: WorkCalendar, max_age_s: float,
           now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Facilities sorted by true distance, each with its state at ``query.at``.

    The spatial index narrows the search to the radius's box (R*Tree / GiST); distances,
    opening states and the entry rule are then evaluated nearest first, only until
    ``limit`` results are found.
    """
    if not 0 < query.radius_m <= MAX_RADIUS_M:
        raise CaseError(f"radius_m must be between 0 and {MAX_RADIUS_M:.0f}")
    now = now or utcnow()
    kx, ky = (float(v[0]) for v in metres_per_degree([query.lat]))
    box = (query.lon - query.radius_m / kx, query.lat - query.radius_m / ky,
           query.lon + query.radius_m / kx, query.lat + query.radius_m / ky)
    table = Facility.__table__
    conditions = [repo.dialect_for(session).bbox_filter(table, box)]
    if query.kinds:
        conditions.append(table.c.kind.in_(query.kinds))
    rows = session.execute(
        select(*(table.c[c] for c in COLUMNS), repo.geom_column(table)).where(and_(*conditions))
    ).all()
    if not rows:
        return []
    geoms = shapely.from_wkb([bytes(r[-1]) for r in rows])
    dist = distances_m(geoms, query.lon, query.lat)
    found: list[dict[str, Any]] = []
    for i in np.argsort(dist, kind="stable"):
        if dist[i] > query.radius_m or len(found) >= query.limit:
            break
        row = dict(zip(COLUMNS, rows[i][:-1], strict=True))
        item = _describe(row, float(dist[i]), geoms[i], query, calendar, now, max_age_s)
        if item is not None:
            found.append(item)
    return found


def _describe(row: dict[str, Any], distance: float, geom: Any, query: NearbyQuery, calendar: WorkCalendar,
              now: dt.datetime, max_age_s: float) -> dict[str, Any] | None:
    try:
        hours = hours_for(row["opening_hours"], calendar).at(query.at)
    except CalendarYearMissing as exc:
        raise CalendarDataMissing(str(exc)) from exc
    access = access_for(row["access"], row["tags"], calendar)
    enterable = access.can_enter(query.at)
    usable = hours.state == "open" and enterable
    if not usable and not query.include_closed:
        return None  # closed, or (a car park you may only leave) not a place to go now
    free, age = free_spaces(row, now, max_age_s)
    if query.min_free is not None and (free is None or free < query.min_free):
        return None
    point = geom if geom.geom_type == "Point" else geom.representative_point()
    return {
        "id": row["id"], "code": row["code"], "kind": row["kind"], "name": row["name"],
        "operator": row["operator"], "access": row["access"], "fee": row["fee"], "contact": row["contact"],
        "capacity": row["capacity"], "shared_spaces": row["shared_spaces"],
        "distance_m": round(distance, 1), "lon": round(point.x, 7), "lat": round(point.y, 7),
        "opening_hours": row["opening_hours"], "hours_text": row["hours_text"],
        "state": hours.state if enterable or hours.state != "open" else "exit_only",
        "open": usable,
        "closes_at": _iso(hours.closes_at), "opens_next_at": _iso(hours.opens_next_at),
        "next_change": _iso(hours.next_change),
        "free_spaces": free, "occupancy_age_s": None if age is None else round(age),
        "occupancy": "unknown" if free is None else "live",
        "access_note": access.note(query.at),
    }


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


class OccupancyReading(NamedTuple):
    """The facility after a gate's reading, and whether the reading replaced the figure on record."""

    facility: Facility
    applied: bool


def record_occupancy(
    session: Session, facility_id: int, occupied: int, at: dt.datetime | None = None,
) -> OccupancyReading:
    """A gate system's count of occupied spaces; never more than the capacity.

    The newest reading by observation time wins: a gate that sends late (a queued
    reading with an older ``at``) does not replace a newer figure, and says so with
    ``applied`` False. A reading at the same time as the one on record replaces it.
    """
    facility = session.get(Facility, facility_id)
    if facility is None:
        raise NotFound(f"no facility {facility_id}")
    if occupied < 0:
        raise CaseError("occupied must be 0 or more")
    if facility.capacity is None:
        raise Conflict(f"facility {facility.code} has no capacity on record; set it before sending occupancy")
    if occupied > facility.capacity:
        raise CaseError(f"occupied {occupied} exceeds the capacity of {facility.capacity} at {facility.code}")
    at = at or utcnow()
    # Compare-and-set on the observation time in one statement, so that of two gates
    # sending at once the older reading loses even if both passed the checks above.
    result = session.execute(
        update(Facility)
        .where(Facility.id == facility_id, or_(Facility.occupied_at.is_(None), Facility.occupied_at <= at))
        .values(occupied=occupied, occupied_at=at)
        .execution_options(synchronize_session=False)
    )
    applied = cast(CursorResult[Any], result).rowcount == 1
    session.flush()
    session.refresh(facility)
    return OccupancyReading(facility, applied)


def count_facilities(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Facility)) or 0)
