"""GET /api/v1/locate: answers, versions by date, and bad input a person can act on."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping
from sqlalchemy import Engine

from api.app import create_app
from data.db import session_factory
from data.importer import FieldMap, ImportOptions, import_layer
from data.settings import Settings
from geo.crs import wgs84_to_bd09, wgs84_to_gcj02

OLD, NEW = dt.date(2026, 1, 1), dt.date(2026, 7, 1)


def layer(path: Path, features: list[tuple[str, object]]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": c, "name": f"网格{c}"}, "geometry": mapping(g)} for c, g in features]}))
    return path


@pytest.fixture
def client(engine: Engine, database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """Two grid versions near Wuzhou: two grids until July, then redrawn as one."""
    west, east = box(111.30, 23.50, 111.31, 23.51), box(111.31, 23.50, 111.32, 23.51)
    with session_factory(engine)() as session:
        import_layer(session, ImportOptions("grids", layer(tmp_path / "a.geojson", [("W", west), ("E", east)]), FieldMap(), effective=OLD))
    with session_factory(engine)() as session:
        import_layer(session, ImportOptions("grids", layer(tmp_path / "b.geojson", [("WE", west.union(east))]), FieldMap(), effective=NEW))
    with TestClient(create_app(Settings(database_url=database_url, data_dir=tmp_path))) as client:
        yield client


def locate(client: TestClient, **params: object):  # type: ignore[no-untyped-def]
    return client.get("/api/v1/locate", params=params)


def test_answer_depends_on_the_date(client: TestClient) -> None:
    old = locate(client, lon=111.305, lat=23.505, at="2026-03-01").json()
    new = locate(client, lon=111.305, lat=23.505, at="2026-08-01").json()
    assert (old["grid_code"], old["layer_version"]) == ("W", "2026-01-01")
    assert (new["grid_code"], new["layer_version"]) == ("WE", "2026-07-01")
    assert locate(client, lon=111.305, lat=23.505, at="2025-01-01").json()["match"] == "outside"


@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
def test_app_coordinates_are_converted(client: TestClient, crs: str) -> None:
    convert = wgs84_to_gcj02 if crs == "gcj02" else wgs84_to_bd09
    x, y = convert(111.3195, 23.505)  # true position: in E, near its east side
    body = locate(client, lon=float(x), lat=float(y), crs=crs, at="2026-03-01").json()
    assert body["grid_code"] == "E"
    assert abs(body["lon"] - 111.3195) < 1e-7 and body["crs"] == "wgs84"


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"lon": 111.3, "lat": 95}, "out of range"),
        ({"lon": 23.5, "lat": 111.3}, "look swapped — try lon=111.3&lat=23.5"),
        ({"lon": 200, "lat": 23.5}, "lon=200.0 is out of range"),
        ({"lon": "east", "lat": 23.5}, "lon"),
        ({"lat": 23.5}, "lon"),
        ({"lon": 111.3, "lat": 23.5, "crs": "mars"}, "unknown crs 'mars': use one of wgs84, cgcs2000, gcj02, bd09"),
        ({"lon": 111.3, "lat": 23.5, "at": "someday"}, "at"),
    ],
)
def test_bad_input_is_a_422_problem(client: TestClient, params: dict, fragment: str) -> None:
    response = locate(client, **params)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert fragment in response.json()["detail"]


def test_swapped_point_inside_range_gets_a_hint(engine: Engine, database_url: str, tmp_path: Path) -> None:
    """Both orders are valid numbers, but only the swapped one hits an area."""
    with session_factory(engine)() as session:
        import_layer(session, ImportOptions("grids", layer(tmp_path / "c.geojson", [("N", box(60, 20, 61, 21))]), FieldMap(), effective=OLD))
    with TestClient(create_app(Settings(database_url=database_url, data_dir=tmp_path))) as client:
        body = locate(client, lon=20.5, lat=60.5).json()
    assert body["match"] == "outside"
    assert body["note"] == "no area at this point, but lon=60.5, lat=20.5 falls in N: were longitude and latitude swapped?"
