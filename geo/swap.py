"""Longitude and latitude given the wrong way round: the one place that recognises it.

Spreadsheets and phone apps often write "lat, lon"; a swapped Chinese point has a
latitude above 90 and fails the range check, while a swapped point elsewhere may be in
range and simply land in the wrong place. Every door (``/locate``, intake, Open311,
``gridmap assign``) gives the same hint, from these two functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from geo.crs import parse_crs, to_wgs84_xy

SWAPPED = "lon and lat look swapped"


def range_problem(lon: float, lat: float) -> str | None:
    """Why a point is out of range (naming a swap when that explains it), or None if it is fine."""
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return "lon and lat must be finite numbers"
    if abs(lat) > 90 and abs(lon) <= 90 and abs(lat) <= 180:
        return f"lat={lat} is out of range [-90, 90]; {SWAPPED} — try lon={lat}&lat={lon}"
    if abs(lon) > 180:
        return f"lon={lon} is out of range [-180, 180]"
    if abs(lat) > 90:
        return f"lat={lat} is out of range [-90, 90]"
    return None


def swap_hint(
    lon: float,
    lat: float,
    crs: str,
    falls_in: Callable[[float, float], str | None],
    lead: str = "no area at this point",
) -> str | None:
    """A hint when the point as given falls in nothing but its swap falls in something.

    ``lon``/``lat`` are as the caller gave them, in ``crs``; ``falls_in(x, y)`` takes WGS84
    and names what the point falls in (an area code, "the service area"), or None.
    ``lead`` says what is wrong with the point as given.
    """
    if abs(lon) > 90:  # swapped, this would be a latitude out of range: no swap possible
        return None
    x, y = to_wgs84_xy(lat, lon, parse_crs(crs))
    found = falls_in(float(x), float(y))
    if found is None:
        return None
    return (
        f"{lead}, but lon={lat}, lat={lon} falls in {found}: were longitude and latitude swapped?"
    )


def swapped_rows(
    lon: npt.ArrayLike,
    lat: npt.ArrayLike,
    crs: str,
    in_nothing: npt.ArrayLike,
    falls_in: Callable[[npt.NDArray[np.float64], npt.NDArray[np.float64]], npt.NDArray[np.bool_]],
) -> npt.NDArray[np.bool_]:
    """``swap_hint`` for many points at once (``gridmap assign``): which rows look swapped.

    ``lon``/``lat`` are as given, in ``crs``; ``in_nothing`` marks the rows that fall in no
    area as given; ``falls_in(x, y)`` takes WGS84 arrays and tells which fall in something.
    """
    lon_a, lat_a = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    # The same test as swap_hint: only a |lon| <= 90 can be a latitude given as longitude.
    candidates = np.flatnonzero(np.asarray(in_nothing, dtype=bool) & (np.abs(lon_a) <= 90))
    found = np.zeros(len(lon_a), dtype=bool)
    if len(candidates):
        x, y = to_wgs84_xy(lat_a[candidates], lon_a[candidates], parse_crs(crs))
        found[candidates] = falls_in(np.atleast_1d(x), np.atleast_1d(y))
    return found
