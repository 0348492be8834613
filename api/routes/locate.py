"""``GET /api/v1/locate``: which grid, community, sub-district and district hold a point."""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from api.deps import SessionDep, SettingsDep
from api.errors import BadRequest
from data.assignment import assigner_key, load_assigner
from data.importer import today
from geo.assign import Assigner
from geo.crs import UnknownCRS, parse_crs, to_wgs84_xy

router = APIRouter(prefix="/api/v1", tags=["locate"])
API_CRS = ("wgs84", "cgcs2000", "gcj02", "bd09")
_lock = threading.Lock()


KEY_TTL_SECONDS = 2.0


def cached_assigner(request: Request, session: Any, on: dt.date, snap_metres: float) -> Assigner:
    """The assigner for the layers in force on ``on``, rebuilt only when they change.

    What the layers in force are is itself re-read at most every KEY_TTL_SECONDS, so a
    burst of reports costs no extra queries; a new import shows within that time.
    """
    state = request.app.state.__dict__
    cache: dict[tuple[Any, ...], Assigner] = state.setdefault("assigners", {})
    keys: dict[tuple[dt.date, float], tuple[float, tuple[Any, ...]]] = state.setdefault("assigner_keys", {})
    with _lock:
        seen = keys.get((on, snap_metres))
        if seen is None or time.monotonic() - seen[0] > KEY_TTL_SECONDS:
            seen = (time.monotonic(), (*assigner_key(session, on), snap_metres))
            keys[(on, snap_metres)] = seen
        key = seen[1]
        if key not in cache:
            if len(cache) > 8:  # a few dates in use at once is plenty
                cache.clear()
            cache[key] = load_assigner(session, on, snap_metres)
        return cache[key]


def check_range(lon: float, lat: float) -> None:
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise BadRequest("lon and lat must be finite numbers")
    if abs(lat) > 90 and abs(lon) <= 90 and abs(lat) <= 180:
        raise BadRequest(
            f"lat={lat} is out of range [-90, 90]; lon and lat look swapped — "
            f"try lon={lat}&lat={lon}"
        )
    if abs(lon) > 180:
        raise BadRequest(f"lon={lon} is out of range [-180, 180]")
    if abs(lat) > 90:
        raise BadRequest(f"lat={lat} is out of range [-90, 90]")


@router.get("/locate")
def locate(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    lon: Annotated[float, Query(description="Longitude in the given CRS")],
    lat: Annotated[float, Query(description="Latitude in the given CRS")],
    crs: Annotated[str, Query(description="wgs84, cgcs2000, gcj02 or bd09")] = "wgs84",
    at: Annotated[dt.date | None, Query(description="Use the layer versions in force on this date")] = None,
) -> dict[str, Any]:
    """The grid and its chain of areas for a point, like MapIt's point lookup."""
    if crs.lower() not in API_CRS:
        raise BadRequest(f"unknown crs {crs!r}: use one of {', '.join(API_CRS)}")
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
    x, y = to_wgs84_xy(lat, lon, parse_crs(crs))
    swapped = assigner.assign_one(float(x), float(y))
    found = next((swapped[f"{lvl}_code"] for lvl in ("grid", "community", "subdistrict", "district") if swapped[f"{lvl}_code"]), None)
    if found is None:
        return None
    return f"no area at this point, but lon={lat}, lat={lon} falls in {found}: were longitude and latitude swapped?"
