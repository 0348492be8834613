"""Request dependencies: the session and the settings; the parameter types routes share."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args

from fastapi import Depends, Path, Query, Request
from pydantic import BeforeValidator
from sqlalchemy.orm import Session

from data.settings import Settings
from geo.areas import LAYER_ALIASES, LEVELS
from geo.issues import STATUSES
from geo.loop import ACTIONS
from geo.stats import STAT_LEVELS

# Requests that may write; their sessions take SpatiaLite's write lock up front (data/db.py).
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def get_session(request: Request) -> Iterator[Session]:
    """One session per request; the transaction is committed or rolled back at its edge."""
    factory = request.app.state.sessions
    if request.method in WRITE_METHODS:
        factory = request.app.state.write_sessions
    with factory() as session:
        yield session


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]


# Dates and times in query strings are ISO 8601 only. Pydantic would also read a number as a
# Unix timestamp, so ``at=0`` quietly meant 1970-01-01: no layer in force, every point
# "outside", and no word about why.
_ISO_DATE = re.compile(r"\s*\d{4}-\d{2}-\d{2}\s*")
_ISO_DATETIME = re.compile(r"\s*\d{4}-\d{2}-\d{2}([T ].*)?")


def _iso_date_only(value: object) -> object:
    if isinstance(value, str) and not _ISO_DATE.fullmatch(value):
        raise ValueError(f"{value!r} is not a date: write it as YYYY-MM-DD")
    return value


def _iso_datetime_only(value: object) -> object:
    if isinstance(value, str) and not _ISO_DATETIME.fullmatch(value):
        raise ValueError(f"{value!r} is not a time: write it as YYYY-MM-DDTHH:MM[:SS][+08:00]")
    return value


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date_only)]
IsoDateTime = Annotated[dt.datetime, BeforeValidator(_iso_datetime_only)]


# --- values checked at the edge, so that the OpenAPI schema lists them ---------------------

# Every id is a 32-bit integer on PostGIS: a larger one names nothing (a 404, not a 500).
MAX_ID = 2**31 - 1
# Offsets past any table's size: a larger one is the client's mistake (422).
MAX_OFFSET = MAX_ID


def id_path(what: str) -> Any:
    """A path id; one out of range is answered 404 (api/errors.py), as no such row exists."""
    return Path(ge=1, le=MAX_ID, description=f"The {what}'s id (1 to {MAX_ID})")


class Crs(StrEnum):
    """Coordinate systems a client may send points in; case does not matter."""

    wgs84 = "wgs84"
    cgcs2000 = "cgcs2000"
    gcj02 = "gcj02"
    bd09 = "bd09"

    @classmethod
    def _missing_(cls, value: object) -> Crs | None:
        return cls.__members__.get(value.lower()) if isinstance(value, str) else None


CrsQuery = Annotated[Crs, Query(description="wgs84, cgcs2000, gcj02 or bd09")]

# Written out so that the schema lists them; the asserts keep them equal to the domain's.
AreaLevel = Literal[
    "district",
    "subdistrict",
    "community",
    "grid",
    "districts",
    "subdistricts",
    "communities",
    "grids",
]
assert set(get_args(AreaLevel)) == {*LEVELS, *LAYER_ALIASES}
StatLevel = Literal["grid", "community", "subdistrict", "district", "department"]
assert get_args(StatLevel) == STAT_LEVELS
IssueStatus = Literal[
    "reported",
    "accepted",
    "rejected",
    "dispatched",
    "in_progress",
    "responded",
    "verified",
    "closed",
]
assert get_args(IssueStatus) == STATUSES
Action = Literal[
    "accept",
    "reject",
    "dispatch",
    "start",
    "respond",
    "verify",
    "fail_verification",
    "close",
    "reopen",
]
assert get_args(Action) == ACTIONS


# --- response content types, for a truthful OpenAPI document ---------------------------------

GEOJSON = "application/geo+json"
FEATURE_COLLECTION: dict[str, Any] = {
    "type": "object",
    "required": ["type", "features"],
    "properties": {
        "type": {"const": "FeatureCollection"},
        "features": {"type": "array", "items": {"type": "object"}},
        "numberReturned": {"type": "integer"},
    },
}


def geojson_responses(description: str) -> dict[int | str, dict[str, Any]]:
    """``responses`` for a route that answers a GeoJSON FeatureCollection (RFC 7946)."""
    return {200: {"description": description, "content": {GEOJSON: {"schema": FEATURE_COLLECTION}}}}
