"""The three assignment paths agree on real data: bulk (in process), API, and SQL.

LA: 10,000 real 311 request points against the 99 neighbourhood councils (as grids).
Macau: 1,707 real grid cells, with points on their shared edges and vertices.
Both run on SpatiaLite and PostGIS.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from data.assignment import assign_in_database, load_assigner
from data.bulk_assign import assign_dask, assign_local, read_points
from data.db import session_factory
from data.importer import FieldMap, ImportOptions, import_layer
from data.settings import Settings
from geo.assign import COLUMNS, records
from tests.conftest import realdata

ON = dt.date(2026, 6, 1)
EFFECTIVE = dt.date(2026, 1, 1)
SNAP = 50.0


def load_grids(engine: Engine, relative: str, code: str) -> gpd.GeoDataFrame:
    path = realdata(relative)
    with session_factory(engine)() as session:
        import_layer(session, ImportOptions("grids", path, FieldMap(code=code), effective=EFFECTIVE))
    frame = gpd.read_file(path)
    frame["code"] = frame[code].astype(str) if code != ":row" else [f"{i + 1:04d}" for i in range(len(frame))]
    return frame


def shared_vertices(grids: gpd.GeoDataFrame, limit: int) -> np.ndarray:
    """Vertices used by two or more grids: points on which the tie-break decides."""
    coords, owner = shapely.get_coordinates(grids.geometry.values, return_index=True)
    frame = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "owner": owner}).drop_duplicates()
    shared = frame.groupby(["x", "y"]).owner.nunique()
    points = np.array(shared[shared > 1].index.tolist())
    return points[np.random.default_rng(0).choice(len(points), min(limit, len(points)), replace=False)]


def reference(grids: gpd.GeoDataFrame, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Independent answer for covered points: geopandas sjoin 'intersects', smallest code."""
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs=4326)
    joined = gpd.sjoin(points, grids[["code", "geometry"]].set_crs(4326, allow_override=True), predicate="intersects", how="left")
    return joined.groupby(level=0)["code"].min().reindex(range(len(lon))).to_numpy()


def reference_overlap(grids: gpd.GeoDataFrame, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Independent overlap flag: covered by two or more grids and inside at least one."""
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs=4326)
    polygons = grids[["code", "geometry"]].set_crs(4326, allow_override=True)
    covering = gpd.sjoin(points, polygons, predicate="intersects").groupby(level=0).size()
    inside = gpd.sjoin(points, polygons, predicate="within").groupby(level=0).size()
    covering, inside = (s.reindex(range(len(lon)), fill_value=0).to_numpy() for s in (covering, inside))
    return (covering >= 2) & (inside >= 1)


def same(bulk: dict, other: dict) -> list[str]:
    """Fields that differ; distances agree to 0.5 m (each backend measures on the ellipsoid its own way)."""
    diff = []
    for key in COLUMNS:
        a, b = bulk[key], other[key]
        if key == "distance_m":
            a = None if a is None or (isinstance(a, float) and np.isnan(a)) else a
            if (a is None) != (b is None) or (a is not None and abs(a - b) > 0.5):
                diff.append(f"{key}: {a} != {b}")
        elif a != b:
            diff.append(f"{key}: {a!r} != {b!r}")
    return diff


@pytest.fixture
def api(engine: Engine, database_url: str, tmp_path) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(create_app(Settings(database_url=database_url, data_dir=tmp_path, snap_metres=SNAP))) as client:
        yield client


def check_paths(engine: Engine, api: TestClient, grids: gpd.GeoDataFrame, lon: np.ndarray, lat: np.ndarray, sample: np.ndarray) -> pd.DataFrame:
    with session_factory(engine)() as session:
        assigner = load_assigner(session, ON, SNAP)
        bulk = assign_local(assigner, pd.DataFrame({"id": np.arange(len(lon)).astype(str), "lon": lon, "lat": lat}), chunk=3000)
        expected = reference(grids, lon, lat)
        covered = bulk["match"].isin(["inside", "boundary"]).to_numpy()
        assert (bulk["grid_code"].astype(object).to_numpy()[covered] == expected[covered]).all()
        assert pd.isna(expected[~covered]).all()  # nothing covered was missed
        assert (bulk["overlap"].to_numpy() == reference_overlap(grids, lon, lat)).all()
        rows = records(bulk.iloc[sample])
        for i, row in zip(sample, rows, strict=True):
            database = assign_in_database(session, float(lon[i]), float(lat[i]), ON, SNAP)
            assert not same(row, database), (i, lon[i], lat[i], same(row, database))
    for i, row in zip(sample[:80], rows[:80], strict=True):
        body = api.get("/api/v1/locate", params={"lon": repr(float(lon[i])), "lat": repr(float(lat[i])), "at": ON.isoformat()}).json()
        assert not same(row, body), (i, same(row, body))
    return bulk


def test_la_311_points_agree(engine: Engine, api: TestClient) -> None:
    grids = load_grids(engine, "la311_hackforla/la_neighborhood_councils_2019.geojson", "nc_id")
    points = read_points(realdata("la311_hackforla/myla311_2020_seed_10k.csv"), lon_field="longitude", lat_field="latitude", crs="wgs84")
    vertices = shared_vertices(grids, 60)
    lon = np.concatenate([points.lon.to_numpy(), vertices[:, 0]])
    lat = np.concatenate([points.lat.to_numpy(), vertices[:, 1]])
    rng = np.random.default_rng(1)
    usable = np.flatnonzero(np.isfinite(lon))
    bulk_match = None
    with session_factory(engine)() as session:
        bulk_match = assign_local(load_assigner(session, ON, SNAP), pd.DataFrame({"id": "x", "lon": lon, "lat": lat}))["match"].to_numpy()
    unusual = np.flatnonzero(bulk_match[usable] != "inside")
    # LA's councils overlap in places: points there carry the overlap flag on every path.
    overlapping = np.flatnonzero(reference_overlap(grids, lon, lat))[:60]
    sample = np.unique(np.concatenate([usable[unusual][:150], rng.choice(usable, 100, replace=False), overlapping]))
    bulk = check_paths(engine, api, grids, lon, lat, sample)
    assert bulk.iloc[sample]["overlap"].sum() >= 10, "the sample covers the overlap flag"
    on_vertex = bulk.iloc[len(points):]
    assert (on_vertex["match"] == "boundary").all()
    assert set(bulk["match"]) >= {"inside", "boundary", "snapped", "outside"}


def test_macau_grid_edges_and_vertices_agree(engine: Engine, api: TestClient) -> None:
    grids = load_grids(engine, "macau_osm_gemacau/macau-grid.geojson", ":row")
    rng = np.random.default_rng(2)
    minx, miny, maxx, maxy = grids.total_bounds
    random_lon, random_lat = rng.uniform(minx - 0.002, maxx + 0.002, 3000), rng.uniform(miny - 0.002, maxy + 0.002, 3000)
    vertices = shared_vertices(grids, 100)
    # Cells are axis-aligned, so the midpoint of a shared edge lies exactly on it.
    cells = grids.geometry.values[rng.choice(len(grids), 100, replace=False)]
    b = shapely.bounds(cells)
    mid = np.column_stack([(b[:, 0] + b[:, 2]) / 2, b[:, 3]])  # middle of each top edge
    lon = np.concatenate([random_lon, vertices[:, 0], mid[:, 0]])
    lat = np.concatenate([random_lat, vertices[:, 1], mid[:, 1]])
    sample = np.concatenate([rng.choice(3000, 120, replace=False), np.arange(3000, len(lon))])
    bulk = check_paths(engine, api, grids, lon, lat, sample)
    assert (bulk.iloc[3000:]["match"] == "boundary").all()


def test_dask_gives_identical_output(engine: Engine) -> None:
    load_grids(engine, "la311_hackforla/la_neighborhood_councils_2019.geojson", "nc_id")
    points = read_points(realdata("la311_hackforla/myla311_2018_mini_10k.csv"), crs="wgs84")  # Longitude/Latitude found on their own
    with session_factory(engine)() as session:
        assigner = load_assigner(session, ON, SNAP)
    local = assign_local(assigner, points)
    distributed = assign_dask(assigner, points, partitions=4)
    pd.testing.assert_frame_equal(local, distributed, check_dtype=False)
