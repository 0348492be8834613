"""``GET /api/v1/locate``: which grid, community, sub-district and district hold a point."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from api.deps import Crs, CrsQuery, IsoDate, SessionDep, SettingsDep
from api.errors import BadRequest
from data.assignment import assigner_key, load_assigner
from data.importer import today
from geo.assign import Assigner
from geo.crs import UnknownCRS, parse_crs, to_wgs84_xy
from geo.swap import range_problem, swap_hint

router = APIRouter(prefix="/api/v1", tags=["locate"])
API_CRS = ("wgs84", "cgcs2000", "gcj02", "bd09")
_lock = threading.Lock()


def cached_assigner(request: Request, session: Any, on: dt.date, snap_metres: float) -> Assigner:
    """The assigner for the layers in force on ``on``, rebuilt only when they change.

    The key (data.assignment.assigner_key: database, versions and their content stamps,
    compounds generation) is read on every call, a few single-row indexed reads, so the
    first request after an import commits already answers from the new layers.
    """
    cache: dict[tuple[Any, ...], Assigner] = request.app.state.__dict__.setdefault("assigners", {})
    key = assigner_key(session, on, snap_metres)
    with _lock:
        assigner = cache.get(key)
        if assigner is None:
            assigner = load_assigner(session, on, snap_metres)
            # An import that committed while this was built would make it a mix of both
            # states: use it for this request, but keep only what matches its key.
            if assigner_key(session, on, snap_metres) == key:
                if len(cache) > 8:  # a few dates in use at once is plenty
                    cache.clear()
                cache[key] = assigner
        return assigner


def check_range(lon: float, lat: float) -> None:
    problem = range_problem(lon, lat)  # geo/swap.py: the one definition of the swap hint
    if problem:
        raise BadRequest(problem)


@router.get("/locate")
def locate(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    lon: Annotated[float, Query(description="Longitude in the given CRS")],
    lat: Annotated[float, Query(description="Latitude in the given CRS")],
    crs: CrsQuery = Crs.wgs84,
    at: Annotated[IsoDate | None, Query(description="Use the layer versions in force on this date")] = None,
) -> dict[str, Any]:
    """The grid and its chain of areas for a point, like MapIt's point lookup."""
    check_range(lon, lat)
    try:
        x, y = to_wgs84_xy(lon, lat, parse_crs(crs))
    except UnknownCRS as exc:  # pragma: no cover (guarded above)
        raise BadRequest(str(exc)) from exc
    on = at or today()
    assigner = cached_assigner(request, session, on, settings.snap_metres)
    result = assigner.assign_one(float(x), float(y))
    body: dict[str, Any] = {"lon": round(float(x), 7), "lat": round(float(y), 7), "crs": "wgs84", "at": on.isoformat(), **result}
    if result["match"] == "outside" and result["district_code"] is None and abs(lon) <= 90:
        body["note"] = _swap_hint(assigner, lon, lat, crs)
    return body


def _swap_hint(assigner: Assigner, lon: float, lat: float, crs: str) -> str | None:
    """If the point hits nothing but its swap does, the caller probably swapped lon and lat."""

    def falls_in(x: float, y: float) -> str | None:
        swapped = assigner.assign_one(x, y)
        return next((swapped[f"{lvl}_code"] for lvl in ("grid", "community", "subdistrict", "district") if swapped[f"{lvl}_code"]), None)

    return swap_hint(lon, lat, crs, falls_in)
