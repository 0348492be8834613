"""What the map pages ask of the database besides tiles: finding a place by code or name,
the versions of a layer, the size of each area, and the coverage faults of the grids.

Each answer is small (tens of rows, or one number per area), so that a page at city
scale never needs the geometries themselves; those come as vector tiles.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import shapely
import shapely.geometry
from sqlalchemy import Table, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from data.importer import coverage_check
from data.models import Area, Compound, LayerVersion
from data.repository import geom_column, load_geom, version_in_force
from geo.areas import LEVELS
from geo.coverage import area_m2

SEARCH_LIMIT = 20
# Places of these kinds are searched; compounds have no versions, areas use the one in force.
PLACE_KINDS = (*LEVELS, "compound")


@dataclass(frozen=True)
class Place:
    kind: str  # an area level or "compound"
    code: str
    name: str
    bbox: tuple[float, float, float, float]

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "code": self.code, "name": self.name, "bbox": list(self.bbox)}


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_places(session: Session, q: str, on: dt.date, limit: int = SEARCH_LIMIT) -> list[Place]:
    """Areas in force on ``on`` and compounds whose code starts with ``q`` or whose name holds it.

    An exact code comes first, then code prefixes, then names; within each, coarser levels
    first (a district before its grids), then by code.
    """
    q = q.strip()
    if not q:
        return []
    prefix, inner = _like_escaped(q) + "%", "%" + _like_escaped(q) + "%"
    found: list[tuple[int, int, Place]] = []
    versions = [v.id for level in LEVELS if (v := version_in_force(session, level, on)) is not None]
    targets: list[tuple[Table, Any, Any]] = [
        (Area.__table__, Area.__table__.c.level, Area.__table__.c.layer_version_id.in_(versions)),
        (Compound.__table__, None, True),
    ]
    for table, level_col, scope in targets:
        if level_col is not None and not versions:
            continue
        rank = case((table.c.code == q, 0), (table.c.code.like(prefix, escape="\\"), 1), else_=2)
        query = (
            select(rank, level_col if level_col is not None else literal("compound"),
                   table.c.code, table.c.name, func.ST_AsBinary(func.ST_Envelope(table.c.geom)))
            .where(and_(scope, or_(table.c.code.like(prefix, escape="\\"), table.c.name.like(inner, escape="\\"))))
            .order_by(rank, table.c.code)
            .limit(limit)
        )
        for r, kind, code, name, envelope in session.execute(query):
            bounds = tuple(float(v) for v in shapely.bounds(load_geom(envelope)))
            found.append((int(r), PLACE_KINDS.index(kind), Place(kind, code, name, bounds)))  # type: ignore[arg-type]
    found.sort(key=lambda t: (t[0], t[1], t[2].code))
    return [place for _r, _k, place in found[:limit]]


def layer_versions(session: Session, level: str) -> list[dict[str, Any]]:
    """Every version of a level, oldest first, with its area count."""
    rows = session.execute(
        select(LayerVersion.id, LayerVersion.effective_from, LayerVersion.source, func.count(Area.id))
        .join(Area, Area.layer_version_id == LayerVersion.id, isouter=True)
        .where(LayerVersion.level == level)
        .group_by(LayerVersion.id, LayerVersion.effective_from, LayerVersion.source)
        .order_by(LayerVersion.effective_from)
    )
    return [{"effective_from": eff.isoformat(), "source": source, "areas": int(n)} for _id, eff, source, n in rows]


def area_sizes_km2(session: Session, level: str, on: dt.date) -> dict[str, float]:
    """Each area's size in km² (local equirectangular, within 0.5 %: plenty for a density)."""
    version = version_in_force(session, level, on)
    if version is None:
        return {}
    table = Area.__table__
    rows = session.execute(select(table.c.code, geom_column(table)).where(table.c.layer_version_id == version.id))
    return {code: area_m2(load_geom(wkb)) / 1e6 for code, wkb in rows}  # type: ignore[arg-type]


def coverage_collection(session: Session, on: dt.date) -> dict[str, Any]:
    """The coverage check as a FeatureCollection of its faults, with a ``coverage`` member
    saying whether every check could be made (no features is no all-clear by itself)."""
    coverage = coverage_check(session, on)
    features = []
    for fault in coverage.faults:
        features.append({
            "type": "Feature",
            "geometry": shapely.geometry.mapping(fault.geom),
            "properties": {
                "kind": fault.kind, "community_code": fault.community_code,
                "grid_codes": list(fault.grid_codes), "area_m2": round(fault.area_m2, 1),
                "description": fault.describe(),
            },
        })
    return {"type": "FeatureCollection", "numberReturned": len(features), "features": features,
            "coverage": coverage.as_dict()}
