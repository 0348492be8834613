"""Vector tiles of the polygon layers over the demo city, on SpatiaLite and PostGIS.

The expected feature sets are computed independently: the layer read back with
``areas_frame``/``table_frame``, projected by pyproj (geopandas) and intersected by shapely
with the tile envelope grown by the buffer, which is what a tile must show.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import pytest
import shapely
import shapely.affinity
import shapely.geometry
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, text
from sqlalchemy.engine import make_url

from api.app import create_app
from api.routes import tiles as tile_routes
from data.db import make_engine, session_factory
from data.demo import load_demo_city
from data.importer import today
from data.migrate import upgrade
from data.models import Area, Compound
from data.repository import add_version, areas_frame, clear_version, insert_rows, table_frame
from data.settings import Settings
from data.tiles import LAYERS, Tile, postgis_tile_query, tile_source
from tests.conftest import POSTGIS_URL, _create_database, _drop_database

DAY = dt.date(2026, 3, 1)  # the demo's boundaries are in force from 2026-01-01
AT = {"at": DAY.isoformat()}
EXTENT, BUFFER = 4096, 64
WORLD = 20037508.342789244  # half the Web Mercator world, in metres
LEVEL_OF = {"districts": "district", "subdistricts": "subdistrict", "communities": "community", "grids": "grid"}
ATTRIBUTES = {**{name: {"code", "name", "parent_code"} for name in LEVEL_OF},
              "compounds": {"code", "name", "community_code"}}
# The demo city's box (data/demo_city.py): tiles at its centre and on its edges.
CITY = (111.187, 23.397, 111.383, 23.533)


def tile_at(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    """The slippy-map tile containing a point (OSM wiki formula)."""
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


def city_tiles() -> list[tuple[int, int, int]]:
    minx, miny, maxx, maxy = CITY
    centre = ((minx + maxx) / 2, (miny + maxy) / 2)
    tiles = [tile_at(*centre, z) for z in (12, 13, 14, 15)]
    tiles += [tile_at(minx + 0.002, miny + 0.03, 13), tile_at(maxx - 0.004, (miny + maxy) / 2, 14),
              tile_at(minx + 0.05, maxy - 0.001, 15), tile_at(centre[0] + 0.03, centre[1] - 0.02, 14)]
    return tiles


TILES = city_tiles()


def envelope(z: int, x: int, y: int, margin_units: float) -> shapely.Polygon:
    size = 2 * WORLD / 2**z
    grow = size * margin_units / EXTENT
    minx, maxy = -WORLD + x * size, WORLD - y * size
    return shapely.box(minx - grow, maxy - size - grow, minx + size + grow, maxy + grow)


def decode(content: bytes) -> dict[str, Any]:
    return mapbox_vector_tile.decode(content, default_options={"y_coord_down": True})


def tile_codes(client: TestClient, layer: str, z: int, x: int, y: int, **params: str) -> set[str]:
    response = client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt", params=params)
    if response.status_code == 204:
        return set()
    assert response.status_code == 200, response.text
    layers = decode(response.content)
    assert list(layers) == [layer]
    return {f["properties"]["code"] for f in layers[layer]["features"]}


def layer_frame(app: FastAPI, layer: str) -> Any:
    with app.state.sessions() as session:
        if layer == "compounds":
            return table_frame(session, Compound.__table__, ["code", "name", "community_code"])
        return areas_frame(session, LEVEL_OF[layer], DAY)


def expected_codes(frame: Any, z: int, x: int, y: int) -> tuple[set[str], set[str]]:
    """Codes meeting the buffered tile, and those of them whose part in it is a sliver.

    A part thinner than one tile unit everywhere may vanish when snapped to the unit grid
    (both backends drop what collapses), so a tile may leave those out and nothing else.
    """
    projected = frame.to_crs(3857)
    box = envelope(z, x, y, BUFFER)
    unit = 2 * WORLD / 2**z / EXTENT
    meeting = projected.loc[projected.intersects(box)]
    parts = meeting.intersection(box)
    thin = parts.buffer(-unit / 2).is_empty
    return set(meeting["code"]), set(meeting.loc[thin, "code"])


def with_tiles(app: FastAPI) -> FastAPI:
    """The app, with the tile router included if the app does not include it yet."""
    if not any(getattr(route, "path", "").startswith("/tiles") for route in app.routes):
        app.include_router(tile_routes.router)
    return app


def open_client(url: str, data_dir: Path) -> TestClient:
    settings = Settings(database_url=url, data_dir=data_dir, escalate_every_seconds=0)
    return TestClient(with_tiles(create_app(settings)))


# --- fixtures: the demo city loaded once per backend for the read-only tests ------------------


@pytest.fixture(scope="module")
def spatialite_client(
    spatialite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("tiles_spatialite")
    path = folder / "gridmap.sqlite"
    path.write_bytes(spatialite_template.read_bytes())
    engine = make_engine(f"sqlite:///{path}")
    load_demo_city(engine)
    engine.dispose()
    with open_client(f"sqlite:///{path}", folder) as client:
        yield client


@pytest.fixture(scope="module")
def postgis_client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    # A database of its own: the per-test `engine` fixture truncates the shared one, and
    # this module's demo city must outlive it. (A schema would not do: Alembic and the
    # emptiness check see the public tables through the search path.)
    request.getfixturevalue("postgis_engine")  # skips (or fails in CI) without PostGIS
    parsed = make_url(POSTGIS_URL)
    url = parsed.set(database=f"{parsed.database}_tiles").render_as_string(hide_password=False)
    _drop_database(url)
    _create_database(url)
    engine = make_engine(url)
    upgrade(engine)
    load_demo_city(engine)
    engine.dispose()
    with open_client(url, tmp_path_factory.mktemp("tiles_postgis")) as client:
        yield client
    _drop_database(url)


@pytest.fixture(params=["spatialite", "postgis"])
def client(request: pytest.FixtureRequest) -> TestClient:
    return request.getfixturevalue(f"{request.param}_client")


# --- what a tile shows -------------------------------------------------------------------------


@pytest.mark.parametrize("layer", list(LAYERS))
def test_tile_features_are_the_features_meeting_the_buffered_tile(client: TestClient, layer: str) -> None:
    frame = layer_frame(client.app, layer)  # type: ignore[arg-type]
    seen_any = False
    for z, x, y in TILES:
        meeting, slivers = expected_codes(frame, z, x, y)
        got = tile_codes(client, layer, z, x, y, at=DAY.isoformat())
        assert got <= meeting, (layer, z, x, y, got - meeting)
        assert meeting - slivers <= got, (layer, z, x, y, meeting - slivers - got)
        seen_any = seen_any or bool(got)
    assert seen_any, f"no test tile meets the {layer} layer: the tile list misses the city"


def test_geometry_and_attributes_are_sane(client: TestClient) -> None:
    for layer in LAYERS:
        for z, x, y in TILES:
            response = client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt", params=AT)
            if response.status_code == 204:
                continue
            decoded = decode(response.content)[layer]
            assert decoded["extent"] == EXTENT
            for feature in decoded["features"]:
                properties = set(feature["properties"])
                assert {"code", "name"} <= properties <= ATTRIBUTES[layer], properties
                geom = shapely.geometry.shape(feature["geometry"])
                assert geom.geom_type in ("Polygon", "MultiPolygon") and geom.area > 0
                minx, miny, maxx, maxy = geom.bounds
                assert -BUFFER <= minx and maxx <= EXTENT + BUFFER, (layer, z, x, y, geom.bounds)
                assert -BUFFER <= miny and maxy <= EXTENT + BUFFER, (layer, z, x, y, geom.bounds)
    # Only districts lack a parent: the attribute is left out, not sent as an empty string.
    z, x, y = TILES[0]
    grids = decode(client.get(f"/tiles/grids/{z}/{x}/{y}.mvt", params=AT).content)["grids"]["features"]
    assert all(f["properties"]["parent_code"] for f in grids)


def test_both_backends_give_the_same_tiles(spatialite_client: TestClient, postgis_client: TestClient) -> None:
    for layer in LAYERS:
        for z, x, y in TILES:
            path = f"/tiles/{layer}/{z}/{x}/{y}.mvt"
            lite, pg = spatialite_client.get(path, params=AT), postgis_client.get(path, params=AT)
            assert lite.status_code == pg.status_code
            if lite.status_code == 204:
                continue
            lite_shapes = _shapes(decode(lite.content)[layer])
            pg_shapes = _shapes(decode(pg.content)[layer])
            assert lite_shapes.keys() == pg_shapes.keys(), (layer, z, x, y)
            for code, shape in lite_shapes.items():
                # Snapping to whole units may differ by a unit where a vertex sits halfway.
                difference = shape.symmetric_difference(pg_shapes[code]).area
                assert difference <= max(0.01 * shape.area, 4 * shape.length), (layer, z, x, y, code)


def _shapes(decoded: dict[str, Any]) -> dict[str, Any]:
    return {f["properties"]["code"]: shapely.geometry.shape(f["geometry"]) for f in decoded["features"]}


def test_a_tile_far_away_is_empty_and_the_world_tile_is_not(client: TestClient) -> None:
    far = client.get("/tiles/grids/14/0/0.mvt")  # the Bering Strait corner of the world
    assert far.status_code == 204 and far.content == b""
    assert far.headers["etag"]
    assert tile_codes(client, "districts", 0, 0, 0, **AT) == {"450403", "450405", "450406"}


def test_tiles_carry_media_type_cache_headers_and_revalidate(client: TestClient) -> None:
    z, x, y = TILES[2]
    first = client.get(f"/tiles/compounds/{z}/{x}/{y}.mvt")
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert "max-age" in first.headers["cache-control"]
    etag = first.headers["etag"]
    again = client.get(f"/tiles/compounds/{z}/{x}/{y}.mvt")
    assert again.content == first.content and again.headers["etag"] == etag
    unchanged = client.get(f"/tiles/compounds/{z}/{x}/{y}.mvt", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.headers["etag"] == etag
    stale = client.get(f"/tiles/compounds/{z}/{x}/{y}.mvt", headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200


def test_at_chooses_the_version_and_defaults_to_today(client: TestClient) -> None:
    z, x, y = TILES[0]
    path = f"/tiles/grids/{z}/{x}/{y}.mvt"
    assert client.get(path, params={"at": "2025-12-31"}).status_code == 204  # before the first version
    assert client.get(path).content == client.get(path, params={"at": today().isoformat()}).content


@pytest.mark.parametrize(
    ("path", "status", "fragment"),
    [
        ("/tiles/grids/23/0/0.mvt", 422, "zoom 23 is out of range: use 0 to 22"),
        ("/tiles/grids/2/4/0.mvt", 422, "x=4 is out of range at zoom 2: use 0 to 3"),
        ("/tiles/grids/2/0/-1.mvt", 422, "y=-1 is out of range at zoom 2"),
        ("/tiles/grids/-1/0/0.mvt", 422, "zoom -1 is out of range"),
        ("/tiles/grids/12/abc/0.mvt", 422, "x"),
        ("/tiles/grids/12/0/0.mvt?at=yesterday", 422, "at"),
        ("/tiles/parishes/12/0/0.mvt", 422, "use one of districts, subdistricts, communities, grids, compounds"),
        ("/tiles/parishes.json", 422, "unknown layer 'parishes'"),
    ],
)
def test_bad_requests_get_problem_responses(client: TestClient, path: str, status: int, fragment: str) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert fragment in response.json()["detail"]
    if "parishes" in path:
        assert response.json()["layers"] == response.json()["allowed"] == list(LAYERS)


def test_tilejson_describes_the_layer(client: TestClient) -> None:
    response = client.get("/tiles/grids.json", params={"at": DAY.isoformat()})
    assert response.status_code == 200
    doc = response.json()
    assert doc["tilejson"] == "3.0.0" and doc["minzoom"] == 0 and doc["maxzoom"] == 22
    west, south, east, north = doc["bounds"]
    assert west == pytest.approx(CITY[0], abs=0.01) and north == pytest.approx(CITY[3], abs=0.01)
    assert south == pytest.approx(CITY[1], abs=0.01) and east == pytest.approx(CITY[2], abs=0.01)
    assert doc["vector_layers"][0]["id"] == "grids"
    assert set(doc["vector_layers"][0]["fields"]) == {"code", "name", "parent_code"}
    template = doc["tiles"][0]
    assert template.endswith(f"/tiles/grids/{{z}}/{{x}}/{{y}}.mvt?at={DAY.isoformat()}")
    z, x, y = TILES[1]
    url = template.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))
    assert client.get(url).status_code == 200
    compounds = client.get("/tiles/compounds.json").json()
    assert set(compounds["vector_layers"][0]["fields"]) == {"code", "name", "community_code"}


def test_postgis_tile_query_can_use_the_gist_index(postgis_client: TestClient) -> None:
    with postgis_client.app.state.sessions() as session:  # type: ignore[attr-defined]
        source = tile_source(session, LAYERS["grids"], DAY)
        sql, params = postgis_tile_query(source, Tile.checked(*TILES[2]))
        # Seq scans off: the question is whether the index *can* serve the query, which
        # the planner answers whatever it would prefer for a table this small.
        session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(session.scalars(text(f"EXPLAIN {sql}"), params))
    assert "idx_areas_geom" in plan, plan


# --- new versions and re-imports never leave stale tiles behind ---------------------------------


@pytest.fixture
def fresh_client(engine: Engine, database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    load_demo_city(engine)
    with open_client(database_url, tmp_path) as client:
        yield client


def test_a_new_version_changes_etag_and_content(fresh_client: TestClient, engine: Engine) -> None:
    z, x, y = TILES[2]
    path = f"/tiles/grids/{z}/{x}/{y}.mvt"
    later = dt.date(2026, 6, 1)
    before = fresh_client.get(path, params={"at": "2026-09-01"})
    assert before.headers["etag"] == fresh_client.get(path, params={"at": "2026-03-01"}).headers["etag"]
    old_codes = set(_shapes(decode(before.content)["grids"]))

    # A redrawn grid layer in force from June: same shapes, new codes.
    grids = layer_frame(fresh_client.app, "grids")  # type: ignore[arg-type]
    rows = [{"level": "grid", "code": f"{code}N", "name": name, "parent_code": parent,
             "geom": shapely.MultiPolygon([geom]) if geom.geom_type == "Polygon" else geom}
            for code, name, parent, geom in zip(grids["code"], grids["name"], grids["parent_code"],
                                                grids.geometry, strict=True)]
    with session_factory(engine)() as session, session.begin():
        version = add_version(session, "grid", later, "test redraw")
        insert_rows(session, Area.__table__, [{**row, "layer_version_id": version.id} for row in rows])

    after = fresh_client.get(path, params={"at": "2026-09-01"})
    assert after.headers["etag"] != before.headers["etag"]
    assert set(_shapes(decode(after.content)["grids"])) == {f"{code}N" for code in old_codes}
    still = fresh_client.get(path, params={"at": "2026-03-01"})
    assert still.headers["etag"] == before.headers["etag"] and still.content == before.content

    # --replace reloads the version under the same id (and SQLite reuses the row ids):
    # one grid shrunk must still change the ETag and the tile.
    target = next(iter(sorted(old_codes)))
    shrunk = [{**row, "geom": shapely.affinity.scale(row["geom"], 0.8, 0.8)} if row["code"] == f"{target}N"
              else row for row in rows]
    with session_factory(engine)() as session, session.begin():
        clear_version(session, version)
        insert_rows(session, Area.__table__, [{**row, "layer_version_id": version.id} for row in shrunk])
    replaced = fresh_client.get(path, params={"at": "2026-09-01"})
    assert replaced.headers["etag"] not in (after.headers["etag"], before.headers["etag"])
    assert replaced.content != after.content


def test_reloaded_compounds_change_etag(fresh_client: TestClient, engine: Engine) -> None:
    z, x, y = TILES[2]
    path = f"/tiles/compounds/{z}/{x}/{y}.mvt"
    before = fresh_client.get(path)
    frame = layer_frame(fresh_client.app, "compounds")  # type: ignore[arg-type]
    inside = next(iter(sorted(_shapes(decode(before.content)["compounds"]))))
    rows = [{"code": code, "name": name, "community_code": community,
             "geom": shapely.affinity.scale(geom, 0.5, 0.5) if code == inside else geom}
            for code, name, community, geom in zip(frame["code"], frame["name"], frame["community_code"],
                                                   frame.geometry, strict=True)]
    with session_factory(engine)() as session, session.begin():
        session.execute(delete(Compound))  # what `gridmap import compounds --replace` does
        insert_rows(session, Compound.__table__, rows)
    after = fresh_client.get(path)
    assert after.headers["etag"] != before.headers["etag"]
    assert after.content != before.content


def test_gcj02_tiles_draw_the_shifted_features(client: TestClient) -> None:
    """For AMap/Gaode or Tencent base maps: the same layer, moved into GCJ-02."""
    from geo.crs import geometry_from_wgs84

    frame = layer_frame(client.app, "grids")  # type: ignore[arg-type]
    shifted = frame.set_geometry(list(geometry_from_wgs84(frame.geometry.values, "gcj02")), crs=frame.crs)
    for z, x, y in TILES[1:4]:
        codes = tile_codes(client, "grids", z, x, y, crs="gcj02", **AT)
        wanted, slivers = expected_codes(shifted, z, x, y)
        assert wanted - slivers <= codes <= wanted
    # The shift is some 300-600 m here: the GCJ-02 tile is not the WGS84 one.
    z, x, y = TILES[2]
    plain = client.get(f"/tiles/grids/{z}/{x}/{y}.mvt", params=AT)
    moved = client.get(f"/tiles/grids/{z}/{x}/{y}.mvt", params={**AT, "crs": "gcj02"})
    assert plain.content != moved.content and plain.headers["etag"] != moved.headers["etag"]
    bad = client.get(f"/tiles/grids/{z}/{x}/{y}.mvt", params={"crs": "bd09"})
    assert bad.status_code == 422 and "use one of wgs84, gcj02" in bad.json()["detail"]


def test_seeding_draws_the_first_views_once_and_keeps_them_on_disk(
    engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from data.tiles import SEED_LAYERS, TileCache, TileStore, cache_key, seed_tiles, tiles_covering

    load_demo_city(engine)
    store = TileStore(tmp_path / "tiles")
    with session_factory(engine)() as session:
        drawn = seed_tiles(session, TileCache(store=store), DAY, 10)
        expected = 0
        for name in SEED_LAYERS:
            frame = areas_frame(session, LEVEL_OF[name], DAY)
            expected += sum(len(list(tiles_covering(tuple(frame.total_bounds), z))) for z in range(11))
        assert drawn == expected
        # A new cache over the same folder (a restarted server) draws nothing again.
        assert seed_tiles(session, TileCache(store=store), DAY, 10) == 0
        source = tile_source(session, LAYERS["grids"], DAY)
        z, x, y = next(iter(tiles_covering(tuple(areas_frame(session, "grid", DAY).total_bounds), 10))).__dict__.values()
        on_disk = store.path(cache_key(source, Tile(z, x, y)))
        assert on_disk.is_file() and on_disk.stat().st_size > 0
    # The app answers a seeded tile from the store, without drawing it.
    monkeypatch.setattr(tile_routes, "render_tile", lambda *a, **k: pytest.fail("a seeded tile was drawn again"))
    with open_client(database_url, tmp_path) as client:
        response = client.get(f"/tiles/grids/{z}/{x}/{y}.mvt", params=AT)
    assert response.status_code == 200 and response.content == on_disk.read_bytes()
