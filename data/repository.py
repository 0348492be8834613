"""Reading and writing spatial rows. One SQL implementation for both backends.

SpatiaLite and PostGIS differ only in how a query reaches the spatial index, which is
kept in ``SpatialDialect``; everything else is shared SQLAlchemy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from geoalchemy2.shape import from_shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import (
    ColumnElement,
    LargeBinary,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.orm import Session

from data.models import SRID, Area, Base, LayerVersion


@dataclass(frozen=True)
class AreaRow:
    code: str
    name: str
    parent_code: str | None
    level: str
    geom: BaseGeometry
    layer_version_id: int


class SpatialDialect:
    """How a bounding-box filter reaches the spatial index on each backend."""

    def __init__(self, name: str) -> None:
        self.name = name

    def bbox_filter(self, table: Table, bbox: tuple[float, float, float, float]) -> Any:
        """A WHERE clause keeping rows whose geometry's box meets ``bbox``, via the index."""
        minx, miny, maxx, maxy = (float(v) for v in bbox)
        if self.name == "spatialite":
            # SpatiaLite's spatial functions never consult the R*Tree on their own; the
            # SpatialIndex virtual table is the documented way to make them.
            return text(
                f"{table.name}.ROWID IN (SELECT ROWID FROM SpatialIndex WHERE "
                f"f_table_name = '{table.name}' AND f_geometry_column = 'geom' AND "
                "search_frame = BuildMbr(:_minx, :_miny, :_maxx, :_maxy, 4326))"
            ).bindparams(_minx=minx, _miny=miny, _maxx=maxx, _maxy=maxy)
        return table.c.geom.op("&&")(func.ST_MakeEnvelope(minx, miny, maxx, maxy, SRID))


def dialect_for(session: Session) -> SpatialDialect:
    return SpatialDialect("spatialite" if session.get_bind().dialect.name == "sqlite" else "postgis")


def to_db_geom(geom: BaseGeometry | None) -> Any:
    """A bind value GeoAlchemy2 writes as a geometry in EPSG:4326."""
    return None if geom is None else from_shape(geom, srid=SRID)


def geom_column(table: Table) -> ColumnElement[bytes]:
    """The geometry as WKB: SpatiaLite's own blob format is not WKB."""
    return func.ST_AsBinary(table.c.geom)


def load_geom(value: bytes | memoryview | None) -> BaseGeometry | None:
    return None if value is None else shapely.from_wkb(bytes(value))


# --- layer versions -------------------------------------------------------------------


def version_in_force(session: Session, level: str, on: dt.date) -> LayerVersion | None:
    """The layer version of ``level`` in force on ``on``: the latest effective by then."""
    return session.scalars(
        select(LayerVersion)
        .where(LayerVersion.level == level, LayerVersion.effective_from <= on)
        .order_by(LayerVersion.effective_from.desc())
        .limit(1)
    ).first()


def latest_version(session: Session, level: str) -> LayerVersion | None:
    return session.scalars(
        select(LayerVersion)
        .where(LayerVersion.level == level)
        .order_by(LayerVersion.effective_from.desc())
        .limit(1)
    ).first()


def version_on(session: Session, level: str, effective_from: dt.date) -> LayerVersion | None:
    return session.scalars(
        select(LayerVersion).where(
            LayerVersion.level == level, LayerVersion.effective_from == effective_from
        )
    ).first()


def add_version(session: Session, level: str, effective_from: dt.date, source: str) -> LayerVersion:
    version = LayerVersion(level=level, effective_from=effective_from, source=source)
    session.add(version)
    session.flush()
    return version


def clear_version(session: Session, version: LayerVersion) -> None:
    """Remove a version's areas, for a replacing import."""
    session.execute(delete(Area).where(Area.layer_version_id == version.id))


# --- areas ----------------------------------------------------------------------------


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert plain dicts; a ``geom`` value may be a shapely geometry."""
    if not rows:
        return
    prepared = [{**row, "geom": to_db_geom(row.get("geom"))} for row in rows]
    session.execute(insert(table), prepared)


def insert_many(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    chunk_rows: int = 20_000,
    progress: Callable[[int], None] | None = None,
) -> None:
    """``insert_rows`` for large loads: same rows stored, in chunks, much faster.

    Geometries go to the database as WKB through ST_GeomFromWKB (both backends have
    it) instead of through GeoAlchemy2's bind processing, which on SpatiaLite turns
    every geometry from WKB back into shapely and then into EWKT text. ``progress``
    hears the number of rows written after each chunk.
    """
    if not rows:
        return
    statement = insert(table)
    with_geom = "geom" in rows[0]
    if with_geom:
        wkb = bindparam("geom_wkb", type_=LargeBinary)
        statement = statement.values(geom=func.ST_GeomFromWKB(wkb, SRID))
    for start in range(0, len(rows), chunk_rows):
        chunk = list(rows[start : start + chunk_rows])
        if with_geom:
            blobs = shapely.to_wkb(np.array([row["geom"] for row in chunk], dtype=object))
            chunk = [
                {**{k: v for k, v in row.items() if k != "geom"}, "geom_wkb": blob}
                for row, blob in zip(chunk, blobs, strict=True)
            ]
        session.execute(statement, chunk)
        if progress is not None:
            progress(start + len(chunk))


def area_codes(session: Session, version_id: int) -> set[str]:
    return set(session.scalars(select(Area.code).where(Area.layer_version_id == version_id)))


def area_geoms(session: Session, version_id: int) -> dict[str, BaseGeometry]:
    table = Area.__table__
    result = session.execute(
        select(table.c.code, geom_column(table)).where(table.c.layer_version_id == version_id)
    )
    return {code: load_geom(wkb) for code, wkb in result}  # type: ignore[misc]


def areas(session: Session, version_id: int) -> list[AreaRow]:
    table = Area.__table__
    result = session.execute(
        select(
            table.c.code, table.c.name, table.c.parent_code, table.c.level,
            geom_column(table), table.c.layer_version_id,
        )
        .where(table.c.layer_version_id == version_id)
        .order_by(table.c.code)
    )
    return [AreaRow(c, n, p, lv, load_geom(g), v) for c, n, p, lv, g, v in result]  # type: ignore[arg-type]


def areas_at(session: Session, lon: float, lat: float, version_id: int) -> list[str]:
    """Codes of the areas of one version that cover a point, found through the index."""
    table = Area.__table__
    point = func.ST_GeomFromText(f"POINT({float(lon)!r} {float(lat)!r})", SRID)
    query = select(table.c.code).where(
        and_(
            table.c.layer_version_id == version_id,
            dialect_for(session).bbox_filter(table, (lon, lat, lon, lat)),
            func.ST_Covers(table.c.geom, point) == True,
        )
    )
    return sorted(session.scalars(query))


def count_rows(session: Session, table: Table | type[Base]) -> int:
    target = table.__table__ if isinstance(table, type) else table  # type: ignore[union-attr]
    return int(session.scalar(select(func.count()).select_from(target)) or 0)


def is_empty(session: Session) -> bool:
    """True when no area has been loaded yet (a fresh database)."""
    return count_rows(session, Area) == 0


def codes_in(session: Session, table: Table, codes: Iterable[str]) -> set[str]:
    """Which of ``codes`` already exist in ``table``."""
    wanted = list(codes)
    found: set[str] = set()
    for start in range(0, len(wanted), 500):  # stay under bind-parameter limits
        chunk = wanted[start : start + 500]
        found.update(session.scalars(select(table.c.code).where(table.c.code.in_(chunk))))
    return found


# --- frames for maps and feeds ----------------------------------------------------------


def _frame(rows: Sequence[Any], columns: list[str]) -> Any:
    import geopandas as gpd

    records = [dict(zip(columns, row[:-1], strict=True)) for row in rows]
    geoms = [load_geom(row[-1]) for row in rows]
    return gpd.GeoDataFrame(records, columns=columns, geometry=geoms, crs=SRID)


def areas_frame(
    session: Session, level: str, on: dt.date, bbox: tuple[float, float, float, float] | None = None
) -> Any:
    """The areas of ``level`` in force on ``on`` as a GeoDataFrame, optionally within a box."""
    columns = ["code", "name", "parent_code", "level"]
    version = version_in_force(session, level, on)
    if version is None:
        return _frame([], columns)
    table = Area.__table__
    query = select(*(table.c[c] for c in columns), geom_column(table)).where(
        table.c.layer_version_id == version.id
    )
    if bbox is not None:
        query = query.where(dialect_for(session).bbox_filter(table, bbox))
    frame = _frame(session.execute(query.order_by(table.c.code)).all(), columns)
    frame.attrs["effective_from"] = version.effective_from.isoformat()
    return frame


def table_frame(session: Session, table: Table, columns: list[str]) -> Any:
    """Every row of a compounds/facilities-like table as a GeoDataFrame."""
    query = select(*(table.c[c] for c in columns), geom_column(table)).order_by(table.c.code)
    return _frame(session.execute(query).all(), columns)
