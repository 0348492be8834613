"""Assignment backed by the database: building the in-process index, and the SQL path.

``load_assigner`` builds a ``geo.assign.Assigner`` from the layer versions in force on a
date; ``assign_in_database`` answers the same question with SQL alone, following the same
rules (geo/assign.py), so that the two can be checked against each other.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import pickle
from pathlib import Path
from typing import Any

from sqlalchemy import and_, case, func, literal, select
from sqlalchemy.orm import Session

from data import repository as repo
from data.models import SRID, Area, Compound
from data.stamps import database_key, generation, version_stamp
from geo.area_index import metres_per_degree
from geo.assign import BOUNDARY, CHAIN, COLUMNS, INSIDE, OUTSIDE, SNAPPED, Assigner, Layer

# Bump when the pickled index's layout or meaning changes, so old files are not loaded.
# 2: keyed on database identity and content stamps; the overlap flag.
INDEX_FORMAT = 2


def _layer(rows: list[repo.AreaRow]) -> Layer:
    return Layer([r.code for r in rows], [r.name for r in rows], [r.geom for r in rows],
                 [r.parent_code for r in rows])


def layer_versions(session: Session, on: dt.date) -> dict[str, Any]:
    """The version of each level in force on ``on`` (None where no layer is loaded)."""
    return {level: repo.version_in_force(session, level, on) for level in CHAIN}


def version_label(versions: dict[str, Any]) -> str:
    """The grid layer version an answer used: its effective date."""
    grid = versions.get("grid")
    return grid.effective_from.isoformat() if grid is not None else ""


def load_assigner(
    session: Session, on: dt.date, snap_metres: float, cache_dir: Path | None = None
) -> Assigner:
    """An in-process assigner over the layers in force on ``on``.

    With ``cache_dir``, the built index is persisted there, in a folder per database,
    under a name made of everything it depends on (``assigner_key``), so that later runs
    load it in a fraction of the build time. The files are written and read only by this
    service, in its own data directory.
    """
    if cache_dir is None:
        return _build_assigner(session, on, snap_metres)
    key = assigner_key(session, on, snap_metres)
    path = cache_dir / key[0] / f"assigner-{_digest(key)}.pickle"
    if path.exists():
        with path.open("rb") as handle:
            return pickle.load(handle)
    assigner = _build_assigner(session, on, snap_metres)
    if assigner_key(session, on, snap_metres) != key:
        return assigner  # an import committed while building: this index may mix both states
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    with partial.open("wb") as handle:
        pickle.dump(assigner, handle, protocol=pickle.HIGHEST_PROTOCOL)
    partial.replace(path)  # atomic: a concurrent reader never sees half a file
    return assigner


def _digest(key: tuple[Any, ...]) -> str:
    return hashlib.sha256(repr(key).encode()).hexdigest()[:24]


def _build_assigner(session: Session, on: dt.date, snap_metres: float) -> Assigner:
    versions = layer_versions(session, on)
    layers = {
        level: _layer(repo.areas(session, version.id))
        for level, version in versions.items()
        if version is not None
    }
    compounds = repo.table_frame(session, Compound.__table__, ["code", "name"])
    compound_layer = Layer(list(compounds["code"]), list(compounds["name"]), list(compounds.geometry))
    return Assigner(layers, compound_layer, snap_metres, version_label(versions))


def assigner_key(session: Session, on: dt.date, snap_metres: float) -> tuple[Any, ...]:
    """Everything an assigner depends on, read with a few single-row indexed queries.

    The database (identity and address), each version in force with its content stamp
    (``--replace`` keeps the version id but changes the stamp), the compounds' generation
    (bumped by a trigger on any change), the snap distance and the index format. Never
    an aggregate over a layer, so the API checks it on every request.
    """
    versions = layer_versions(session, on)
    return (
        database_key(session),
        *((v.id, version_stamp(session, v)) if v is not None else None for v in versions.values()),
        generation(session, "compounds"),
        float(snap_metres),
        INDEX_FORMAT,
    )


# --- the SQL path ---------------------------------------------------------------------


def _point(lon: float, lat: float) -> Any:
    return func.ST_GeomFromText(literal(f"POINT({float(lon)!r} {float(lat)!r})"), SRID)


def _covering(
    session: Session, table: Any, lon: float, lat: float, version_id: int | None = None
) -> tuple[str, bool] | None:
    """Smallest code covering the point, and whether the point is on its boundary."""
    point = _point(lon, lat)
    conditions = [
        repo.dialect_for(session).bbox_filter(table, (lon, lat, lon, lat)),
        func.ST_Covers(table.c.geom, point) == True,
    ]
    if version_id is not None:
        conditions.append(table.c.layer_version_id == version_id)
    row = session.execute(
        select(table.c.code, func.ST_Contains(table.c.geom, point))
        .where(and_(*conditions))
        .order_by(table.c.code)
        .limit(1)
    ).first()
    return None if row is None else (row[0], not bool(row[1]))


def _in_overlap(session: Session, lon: float, lat: float, version_id: int) -> bool:
    """Whether the point lies where grids overlap: covered by two or more grids, inside at
    least one of them (a point on an edge that grids merely share is no overlap)."""
    table = Area.__table__
    point = _point(lon, lat)
    inside = case((func.ST_Contains(table.c.geom, point) == True, 1), else_=0)
    covering, interior = session.execute(
        select(func.count(), func.coalesce(func.sum(inside), 0)).where(
            table.c.layer_version_id == version_id,
            repo.dialect_for(session).bbox_filter(table, (lon, lat, lon, lat)),
            func.ST_Covers(table.c.geom, point) == True,
        )
    ).one()
    return int(covering) >= 2 and int(interior) >= 1


def _distance_m(session: Session, geom: Any, lon: float, lat: float) -> Any:
    """Metres from a geometry to the point, on the WGS84 ellipsoid's tangent plane at the point.

    Both backends' own geodesic distances exist, but SpatiaLite's point-to-polygon one is
    off by about 2 % at snapping range, which would move the 50 m limit. So the database
    measures in the same local plane as geo.area_index: shift to the point, scale each
    axis by the metres per degree there, and take the planar distance.
    """
    kx, ky = (float(v[0]) for v in metres_per_degree([lat]))  # type: ignore[arg-type]
    if repo.dialect_for(session).name == "spatialite":
        local = func.ScaleCoords(func.ST_Translate(geom, -lon, -lat, 0), kx, ky)
        return func.ST_Distance(local, func.MakePoint(0.0, 0.0, SRID))
    local = func.ST_Scale(func.ST_Translate(geom, -lon, -lat), kx, ky)
    return func.ST_Distance(local, func.ST_SetSRID(func.ST_MakePoint(0.0, 0.0), SRID))


def _nearest(session: Session, lon: float, lat: float, version_id: int, metres: float) -> tuple[str, float] | None:
    table = Area.__table__
    kx, ky = (float(v[0]) for v in metres_per_degree([lat]))  # type: ignore[arg-type]
    box = (lon - metres / kx, lat - metres / ky, lon + metres / kx, lat + metres / ky)
    distance = _distance_m(session, table.c.geom, lon, lat)
    row = session.execute(
        select(table.c.code, distance)
        .where(table.c.layer_version_id == version_id, repo.dialect_for(session).bbox_filter(table, box))
        .order_by(distance, table.c.code)
        .limit(1)
    ).first()
    if row is None or row[1] is None or row[1] > metres:
        return None
    return row[0], float(row[1])


def assign_in_database(session: Session, lon: float, lat: float, on: dt.date, snap_metres: float) -> dict[str, Any]:
    """The assignment of one point computed by the database, with the same rules and columns."""
    versions = layer_versions(session, on)
    table = Area.__table__
    result: dict[str, Any] = dict.fromkeys(COLUMNS)
    result.update(match=OUTSIDE, overlap=False, layer_version=version_label(versions))
    start: tuple[str, str] | None = None
    grid = versions["grid"]
    if grid is not None:
        covered = _covering(session, table, lon, lat, grid.id)
        if covered:
            start, result["match"] = ("grid", covered[0]), BOUNDARY if covered[1] else INSIDE
            result["overlap"] = _in_overlap(session, lon, lat, grid.id)
        else:
            near = _nearest(session, lon, lat, grid.id, snap_metres) if snap_metres > 0 else None
            if near:
                start, result["match"], result["distance_m"] = ("grid", near[0]), SNAPPED, near[1]
    for level in CHAIN[1:]:
        if start is None and versions[level] is not None:
            covered = _covering(session, table, lon, lat, versions[level].id)
            start = (level, covered[0]) if covered else None
    if start is not None:
        _walk_up(session, versions, *start, result)
    compound = _covering(session, Compound.__table__, lon, lat)
    if compound:
        result["compound_code"] = compound[0]
        result["compound_name"] = session.scalar(select(Compound.name).where(Compound.code == compound[0]))
    return result


def _walk_up(session: Session, versions: dict[str, Any], level: str, code: str, out: dict[str, Any]) -> None:
    for lvl in CHAIN[CHAIN.index(level):]:
        version = versions[lvl]
        if code is None or version is None:
            return
        row = session.execute(
            select(Area.name, Area.parent_code).where(Area.layer_version_id == version.id, Area.code == code)
        ).first()
        if row is None:
            return
        out[f"{lvl}_code"], out[f"{lvl}_name"] = code, row[0]
        code = row[1]
